"""Code hashes by folder: a shard's hash covers exactly the package folders its kind names."""

import shutil

import pytest

from notewise import kinds
from notewise.workflow.codehash import (NOTES_CODE, PACKAGE_DIR, TIMBRE_CODE, kind_code_hash,
                                        notes_code_hash, source_files, source_hash,
                                        timbre_code_hash)


@pytest.fixture
def package(tmp_path):
    """A copy of src/notewise to edit."""
    root = tmp_path / "notewise"
    shutil.copytree(PACKAGE_DIR, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _shard_hashes(root):
    return {name: kind_code_hash(name, root) for name in kinds.KINDS}


def _edit(root, relative):
    path = root / relative
    path.write_text(path.read_text() + "\n# edited\n")


def test_every_file_of_a_hashed_folder_is_covered():
    for folders in [kind.code for kind in kinds.KINDS.values()] + [TIMBRE_CODE, NOTES_CODE]:
        for folder in folders:
            assert set(source_files((folder,))) == set((PACKAGE_DIR / folder).rglob("*.py"))


def test_an_edit_in_each_hashed_folder_changes_the_hash(package):
    before = _shard_hashes(package)
    for name, kind in kinds.KINDS.items():
        for folder in kind.code:
            first = sorted((package / folder).rglob("*.py"))[0]
            _edit(package, first.relative_to(package))
            after = kind_code_hash(name, package)
            assert after != before[name], f"{name}: an edit in {folder}/ left its hash alone"
            before[name] = after


def test_a_new_module_in_a_hashed_folder_changes_the_hash(package):
    before = kind_code_hash("random_polyphony", package)
    (package / "synth" / "brand_new.py").write_text("X = 1\n")
    assert kind_code_hash("random_polyphony", package) != before


@pytest.mark.parametrize("relative", ["loading/reader.py", "pitch/model.py", "midi/model.py",
                                      "cli.py", "workflow/resources.py",
                                      "pitch/matrix_commands.py"])
def test_reader_model_and_cli_edits_change_no_shard_hash(package, relative):
    before = _shard_hashes(package)
    _edit(package, relative)
    assert _shard_hashes(package) == before


def test_music_edits_rebuild_music_shards_only(package):
    before = _shard_hashes(package)
    _edit(package, "music/augment.py")
    after = _shard_hashes(package)
    assert {k for k in kinds.KINDS if after[k] != before[k]} == {
        k for k, kind in kinds.KINDS.items() if "music" in kind.code}


def test_timbre_and_notes_hashes_follow_their_folders(package):
    timbres, notes = timbre_code_hash(package), notes_code_hash(package)
    _edit(package, "midi/reading.py")
    assert notes_code_hash(package) != notes and timbre_code_hash(package) == timbres
    _edit(package, "synth/timbres.py")
    assert timbre_code_hash(package) != timbres
    timbres = timbre_code_hash(package)
    _edit(package, "loading/reader.py")
    assert timbre_code_hash(package) == timbres


def test_the_mixture_trainers_commands_are_in_the_matrix_hash(package):
    """The matrix and release rules rerun when the code that turns their spec into settings
    changes (it lived in music/, which no training hash covered)."""
    from notewise.pitch.stages import CODE

    before = source_hash(CODE["matrix"], package)
    _edit(package, "pitch/matrix_commands.py")
    assert source_hash(CODE["matrix"], package) != before


def pitch_modules_imported(path) -> set[str]:
    """``pitch/NAME.py`` of every ``notewise.pitch`` module ``path`` imports (anywhere in it)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            module = ("notewise.pitch." + node.module) if node.level else node.module
            if module.startswith("notewise.pitch."):
                found.add("pitch/" + module.removeprefix("notewise.pitch.") + ".py")
    return found


def test_the_real_eval_score_hash_covers_what_scoring_imports():
    """An edit to the melody pick (pitch/notes.py) reruns the score that reports it."""
    from notewise.pitch.stages import CODE

    scoring = {"pitch/real_eval.py", "pitch/peers.py"}
    imported = set().union(*(pitch_modules_imported(PACKAGE_DIR / f) for f in scoring))
    assert "pitch/notes.py" in imported
    assert imported <= set(CODE["real_eval_score"])


def test_the_stage_table_is_in_no_training_hash():
    """Adding a file to a stage's list reruns that stage, not every model's training."""
    from notewise.pitch.stages import CODE

    assert all("pitch/stages.py" not in CODE[stage] for stage in ("train", "matrix_train"))


def test_a_missing_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such"):
        source_hash(("no_such",), tmp_path)
