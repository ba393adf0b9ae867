"""Whether a checkpoint directory may be resumed: the run record (``run.json``).

A training command writes the settings that must match to resume (and digests of its input
files) as ``run.json`` next to the harness's checkpoint. On the next run, :func:`check_resume`
compares them: equal -> :func:`notewise.training.fit` resumes; different -> refuse with the
changed keys named, or (``restart=True``) delete the checkpoint and start over.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Iterable

from notewise.atomicio import atomic_write_text

from .checkpoint import recover

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
#: What a restart deletes (the harness's checkpoint files plus the run record).
CHECKPOINT_FILES = ("model.pth", "optimizer.pth", "state.pth", "metrics.json", RUN_FILE)


class ResumeRefused(ValueError):
    """The checkpoint was made with other settings or data and ``restart`` is off."""


def files_digest(paths: Iterable[Path]) -> str:
    """16 hex digits identifying files by name, size and mtime (cheap, for the resume check)."""
    h = hashlib.sha256()
    for path in paths:
        st = Path(path).stat()
        h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def changed_keys(old: dict, new: dict) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def check_resume(ckpt: Path, record: dict, restart: bool, extra_files: Iterable[str] = ()) -> None:
    """Refuse (or with ``restart`` clear) a checkpoint in ``ckpt`` made with another record.

    ``extra_files`` are the command's own files deleted with the checkpoint on a restart.
    """
    run_file = Path(ckpt) / RUN_FILE
    if not run_file.exists():
        return
    changed = changed_keys(json.loads(run_file.read_text()), record)
    if not changed:
        return
    if not restart:
        raise ResumeRefused(f"{ckpt} was trained with other settings ({', '.join(changed)}): "
                            "delete it, use another checkpoint directory, or restart on change "
                            "(midi-train --restart-on-change)")
    log.warning("settings changed (%s): starting %s over", ", ".join(changed), ckpt)
    recover(Path(ckpt))
    for name in (*CHECKPOINT_FILES, *extra_files):
        (Path(ckpt) / name).unlink(missing_ok=True)


def write_record(ckpt: Path, record: dict) -> None:
    atomic_write_text(Path(ckpt) / RUN_FILE, json.dumps(record, indent=1) + "\n")
