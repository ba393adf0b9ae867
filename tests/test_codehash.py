"""The generator code hash changes exactly when generator source changes."""

from notewise.workflow.codehash import GENERATOR_MODULES, source_hash


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


def test_notes_hash_covers_every_module_music_notes_loads(tmp_path):
    """Rule music_notes reruns when the code that reads the corpus changes (its code param)."""
    import json
    import subprocess
    import sys

    from notewise.workflow.codehash import NOTES_MODULES
    from test_music_render import _midi_file

    root = tmp_path / "corpus"
    (root / "train").mkdir(parents=True)
    _midi_file(root / "train" / "a.mid", 500_000, [[(0, 480, 60, 100)]])
    code = ("import sys, json\nfrom notewise.music.render import build_corpus_file\n"
            f"build_corpus_file({str(root)!r}, 'train', {str(tmp_path / 'notes.npz')!r})\n"
            "print(json.dumps(sorted(sys.modules)))\n")
    run = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = {m.removeprefix("notewise.").replace(".", "/")
              for m in json.loads(run.stdout.splitlines()[-1]) if m.startswith("notewise.")}
    packages = {"data", "midi"}
    generator = {f"data/{m}" for m in GENERATOR_MODULES}  # the renderer's imports, hashed per shard
    assert "midi/reading" in loaded
    assert loaded - set(NOTES_MODULES) - packages - generator <= {"data/augment"}


def test_notes_hash_follows_the_midi_reading_code(tmp_path):
    from notewise.workflow.codehash import NOTES_MODULES

    for name in NOTES_MODULES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f"{name}.py").write_text(f"# {name}\n")
    before = source_hash(NOTES_MODULES, tmp_path)
    (tmp_path / "midi" / "model.py").write_text("# the LM\n")
    assert source_hash(NOTES_MODULES, tmp_path) == before
    for name in NOTES_MODULES:
        (tmp_path / f"{name}.py").write_text(f"# {name}, changed\n")
        assert source_hash(NOTES_MODULES, tmp_path) != before
        before = source_hash(NOTES_MODULES, tmp_path)
