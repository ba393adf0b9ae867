"""Atomic writes: the destination holds the old file or the whole new one, never a part."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from notewise.atomicio import (atomic_copy, atomic_file, atomic_path, atomic_write_text,
                               remove_leftovers)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "t.npz"
    path.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(path) as fh:
            fh.write(b"half of a new file")
            raise KeyboardInterrupt
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]


def killed_mid_write(path) -> int:
    """Exit status of a process SIGKILLed in the middle of ``atomic_file(path)`` (no cleanup runs)."""
    code = (f"import os, signal\nfrom notewise.atomicio import atomic_file\n"
            f"with atomic_file({str(path)!r}) as fh:\n"
            f"    fh.write(b'x' * 100000); fh.flush()\n"
            f"    os.kill(os.getpid(), signal.SIGKILL)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode


def test_a_killed_writer_leaves_no_file_under_the_final_name(tmp_path):
    """SIGKILL in the middle of a write (no cleanup runs): the final name never appears."""
    path = tmp_path / "targets" / "shard_00000.npz"
    assert killed_mid_write(path) == -9
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


@pytest.fixture(params=[0o022, 0o002], ids=["umask0022", "umask0002"])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_outputs_get_the_mode_a_plain_open_gives_under_the_umask(tmp_path, umask):
    """Not mkstemp's 0600: on a shared file system the group must be able to read the outputs."""
    with open(tmp_path / "plain", "w"):
        pass
    expected = stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    assert expected == 0o666 & ~umask
    atomic_write_text(tmp_path / "a.json", "{}")
    with atomic_file(tmp_path / "b.npz") as fh:
        fh.write(b"x")
    with atomic_path(tmp_path / "c.csv") as tmp:
        tmp.write_text("x\n")
    atomic_copy(tmp_path / "a.json", tmp_path / "sub" / "d.json")
    for name in ("a.json", "b.npz", "c.csv", "sub/d.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected, name


def test_a_rerun_removes_the_temporaries_a_killed_writer_of_the_same_target_left(tmp_path):
    path = tmp_path / "waveforms" / "shard_00000.npy"
    assert killed_mid_write(path) == -9
    (path.parent / ".shard_00000.npy.k3y_ab9z.tmp.npy").write_bytes(b"mkstemp-style leftover")
    others = [path.parent / ".shard_00001.npy.abcd1234.tmp.npy", path.parent / "shard_00000.npy.x"]
    for other in others:
        other.write_bytes(b"not this target's")
    assert len(list(path.parent.iterdir())) == 4
    atomic_write_text(path, "new")
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        ["shard_00000.npy"] + [o.name for o in others])


def test_a_live_writers_temporary_is_not_removed(tmp_path):
    """The lock held while writing tells a live writer from a dead one."""
    path = tmp_path / "t.npz"
    with atomic_file(path) as first:
        first.write(b"first")
        assert remove_leftovers(path) == []
        atomic_write_text(path, "second")
        assert len(list(tmp_path.iterdir())) == 2
    assert path.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]


def test_json_arguments_inline_or_from_a_file_and_bad_ones_named(tmp_path):
    from notewise.atomicio import atomic_write_json, read_json_argument

    atomic_write_json(tmp_path / "s.json", {"b": 1, "a": [2]})
    assert (tmp_path / "s.json").read_text() == '{\n  "a": [\n    2\n  ],\n  "b": 1\n}\n'
    assert read_json_argument(f"@{tmp_path / 's.json'}") == read_json_argument('{"a": [2], "b": 1}')
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match=r"--settings file .*bad.json is not valid JSON"):
        read_json_argument(f"@{tmp_path / 'bad.json'}", "--settings")
    with pytest.raises(ValueError, match="--spec is not valid JSON"):
        read_json_argument("{'a': 1}")
