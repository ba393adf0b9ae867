"""Atomic file writes: a reader never sees half a file, and an interrupted job leaves none.

Every helper writes a temporary file next to the destination (same directory, so the rename
cannot cross file systems), flushes and fsyncs it, ``os.replace``s it onto the final name and
fsyncs the directory. On an exception the temporary file is removed and the destination is left
as it was. A SIGKILL can leave a hidden ``.NAME.*.tmp`` file behind, never a partial file under
the final name.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
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
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


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
