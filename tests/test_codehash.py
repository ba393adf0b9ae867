"""The generator code hash changes exactly when generator source changes."""

from notewise.data.codehash import GENERATOR_MODULES, source_hash


def write_modules(directory, texts):
    for name, text in texts.items():
        (directory / f"{name}.py").write_text(text)


def test_hash_follows_the_named_sources_only(tmp_path):
    texts = {name: f"# {name}\n" for name in GENERATOR_MODULES}
    write_modules(tmp_path, {**texts, "reader": "import torch\n"})
    before = source_hash(GENERATOR_MODULES, tmp_path)

    (tmp_path / "reader.py").write_text("import torch  # changed\n")
    assert source_hash(GENERATOR_MODULES, tmp_path) == before

    (tmp_path / "synth.py").write_text("# synth, changed\n")
    assert source_hash(GENERATOR_MODULES, tmp_path) != before
