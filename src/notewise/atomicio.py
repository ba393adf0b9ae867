"""Atomic file writes: a reader never sees half a file, and an interrupted job leaves none.

Every helper writes a temporary file next to the destination (same directory, so the rename
cannot cross file systems), flushes and fsyncs it, ``os.replace``s it onto the final name and
fsyncs the directory. On an exception the temporary file is removed and the destination is left
as it was. A SIGKILL can leave a hidden ``.NAME.*.tmp`` file behind, never a partial file under
the final name; the next write of the same ``NAME`` (a rerun of the job) removes such leftovers.

* **Mode.** The temporary file is created with ``os.open(..., 0o666)``, so the published file gets
  the mode (and default ACL) a plain ``open(path, "w")`` would give under the process umask
  (0644 under umask 0022, 0664 under 0002), not ``tempfile.mkstemp``'s 0600.
* **Leftovers.** A writer holds an exclusive ``flock`` on its temporary file until it is renamed;
  before writing ``NAME``, every ``.NAME.*.tmp*`` whose lock can be taken (its writer is dead) is
  deleted. One writer per target is assumed (Snakemake's guarantee); the lock keeps a second, live
  writer's file (on file systems without ``flock``, such a file would be deleted too).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import re
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path next to ``path`` (``.NAME.*.tmp`` plus the same suffix, for writers that
    infer the format from it) for a writer that wants a file name; on success it is fsynced and
    renamed onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    fd, tmp = _create_temporary(path)
    try:
        try:
            yield tmp
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    finally:
        os.close(fd)  # releases the lock
    fsync_directory(path.parent)


def _temporary_pattern(path: Path) -> re.Pattern:
    return re.compile(rf"\.{re.escape(path.name)}\.[^.]+\.tmp{re.escape(path.suffix)}")


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new ``.NAME.<random>.tmp<suffix>`` next to ``path``, created as ``open()`` would create
    it (mode 0o666 less the umask) and locked; returns its descriptor (closing it unlocks)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}"
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        _try_lock(fd)
        return fd, tmp
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(tmp))


def _try_lock(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting: False if another writer holds one; True
    if taken or if the file system has no locks (then nothing tells a live writer from a dead
    one)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        pass
    return True


def remove_leftovers(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that killed writers of ``path`` left next to it (those whose
    lock is free); returns them."""
    path = Path(path)
    pattern = _temporary_pattern(path)
    try:
        names = [entry.name for entry in os.scandir(path.parent) if pattern.fullmatch(entry.name)]
    except FileNotFoundError:
        return []
    removed = []
    for name in sorted(names):
        leftover = path.parent / name
        try:
            fd = os.open(leftover, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            if _try_lock(fd):
                leftover.unlink(missing_ok=True)
                removed.append(leftover)
        finally:
            os.close(fd)
    return removed


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[io.BufferedWriter]:
    """A binary file object on a temporary file next to ``path`` (``atomic_path``); on success
    it is closed, fsynced and renamed onto ``path``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        yield fh


def fsync_directory(directory: str | os.PathLike) -> None:
    """Make a rename in ``directory`` durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> str:
    """Write ``data`` to ``path`` atomically; returns its sha256 (hex)."""
    with atomic_file(path) as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | os.PathLike, value, *, indent: int = 2,
                      sort_keys: bool = True) -> None:
    """``value`` as JSON text plus a newline, atomically."""
    atomic_write_text(path, json.dumps(value, indent=indent, sort_keys=sort_keys) + "\n")


def read_json_argument(text: str, name: str = "--spec"):
    """A command-line JSON value: the JSON text itself, or ``@path`` to a JSON file; a
    ``ValueError`` naming ``name`` (and the file) if it does not parse."""
    source = f"{name} file {text[1:]}" if text.startswith("@") else name
    try:
        return json.loads(Path(text[1:]).read_text() if text.startswith("@") else text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{source} is not valid JSON: {err}") from None


def atomic_copy(source: str | os.PathLike, path: str | os.PathLike) -> None:
    """Copy the file ``source`` to ``path`` atomically."""
    with open(source, "rb") as src, atomic_file(path) as fh:
        shutil.copyfileobj(src, fh, 1 << 22)


def atomic_save_figure(fig, path: str | os.PathLike, **savefig) -> None:
    """A matplotlib figure saved to ``path`` atomically, then closed (on an error too)."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, **savefig)
    finally:
        plt.close(fig)


def atomic_write_csv(table, path: str | os.PathLike, **to_csv) -> None:
    """A pandas ``DataFrame`` as CSV (no index column), atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, **to_csv)
