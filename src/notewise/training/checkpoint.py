"""Crash-safe checkpoint directories.

A checkpoint is several files side by side (``model.pth``, ``optimizer.pth``, ``state.pth``,
``metrics.json``). Renaming each file atomically is not enough: a kill between two renames would
pair a new model with an old optimizer. So a commit is journalled:

1. every file is written into ``<dir>/.staging/`` (each flushed and fsync'ed);
2. ``.staging/COMMITTED`` is created by an atomic rename: from now on the new checkpoint exists;
3. each staged file is moved over its published name with ``os.replace``;
4. ``.staging`` is removed.

:func:`recover` (run before every read) rolls a committed staging directory forward and discards
an uncommitted one, so a reader always sees exactly one complete checkpoint: the previous one if
the kill came before step 2, the new one otherwise.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import torch

from notewise.atomicio import fsync_directory
STAGING = ".staging"
COMMITTED = "COMMITTED"


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def torch_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode()


def _publish(ckpt_dir: Path, staging: Path) -> None:
    for item in sorted(staging.iterdir()):
        if item.name != COMMITTED:
            os.replace(item, ckpt_dir / item.name)
    fsync_directory(ckpt_dir)
    shutil.rmtree(staging)


def recover(ckpt_dir: str | os.PathLike) -> None:
    """Finish or discard an interrupted commit (idempotent)."""
    ckpt_dir = Path(ckpt_dir)
    staging = ckpt_dir / STAGING
    if not staging.is_dir():
        return
    if (staging / COMMITTED).exists():
        _publish(ckpt_dir, staging)
    else:
        shutil.rmtree(staging)


def commit(ckpt_dir: str | os.PathLike, files: dict[str, bytes | Callable[[], bytes]]) -> None:
    """Atomically replace the checkpoint in ``ckpt_dir`` by ``files`` (name -> bytes or thunk)."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    recover(ckpt_dir)
    staging = ckpt_dir / STAGING
    staging.mkdir()
    for name, payload in files.items():
        _fsync_write(staging / name, payload() if callable(payload) else payload)
    marker_tmp = staging / (COMMITTED + ".tmp")
    _fsync_write(marker_tmp, b"")
    os.replace(marker_tmp, staging / COMMITTED)
    fsync_directory(staging)
    _publish(ckpt_dir, staging)
