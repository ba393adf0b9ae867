"""Atomic writes: the destination holds the old file or the whole new one, never a part."""

from __future__ import annotations

import subprocess
import sys

import pytest

from notewise.atomicio import atomic_copy, atomic_file, atomic_path, atomic_write_text


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "t.npz"
    path.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(path) as fh:
            fh.write(b"half of a new file")
            raise KeyboardInterrupt
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]


def test_a_killed_writer_leaves_no_file_under_the_final_name(tmp_path):
    """SIGKILL in the middle of a write (no cleanup runs): the final name never appears."""
    path = tmp_path / "targets" / "shard_00000.npz"
    code = (f"import os, signal\nfrom notewise.atomicio import atomic_file\n"
            f"with atomic_file({str(path)!r}) as fh:\n"
            f"    fh.write(b'x' * 100000); fh.flush()\n"
            f"    os.kill(os.getpid(), signal.SIGKILL)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert result.returncode == -9
    assert not path.exists()
    leftovers = list(path.parent.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".shard_00000.npz.")


def test_a_writer_that_wants_a_file_name_gets_a_temporary_one_with_the_suffix(tmp_path):
    path = tmp_path / "plots" / "curve.png"
    with atomic_path(path) as tmp:
        assert tmp.parent == path.parent and tmp.suffix == ".png" and tmp.name.startswith(".curve.")
        tmp.write_bytes(b"png")
    assert path.read_bytes() == b"png"
    with pytest.raises(ValueError):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half")
            raise ValueError("the plotting library failed")
    assert path.read_bytes() == b"png"
    assert [p.name for p in path.parent.iterdir()] == ["curve.png"]


def test_copy_and_text(tmp_path):
    atomic_write_text(tmp_path / "a.json", "{\"x\": 1}\n")
    atomic_copy(tmp_path / "a.json", tmp_path / "out" / "b.json")
    assert (tmp_path / "out" / "b.json").read_text() == "{\"x\": 1}\n"
    with pytest.raises(FileNotFoundError):
        atomic_copy(tmp_path / "missing", tmp_path / "out" / "b.json")
    assert (tmp_path / "out" / "b.json").read_text() == "{\"x\": 1}\n"


def test_a_figure_is_saved_whole_and_closed_even_when_saving_fails(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from notewise.atomicio import atomic_save_figure

    fig = plt.figure()
    atomic_save_figure(fig, tmp_path / "a.png", dpi=20)
    assert (tmp_path / "a.png").read_bytes().startswith(b"\x89PNG")
    assert not plt.fignum_exists(fig.number)
    fig = plt.figure()
    with pytest.raises(ValueError):
        atomic_save_figure(fig, tmp_path / "b.png", format="no-such-format")
    assert not plt.fignum_exists(fig.number)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
