"""Hashes of the source that decides a rule's outputs: the rules' ``code`` params.

A rule whose output depends on package code takes the hash of the folders (or files) holding that
code, so Snakemake's params rerun trigger rebuilds it when that code changes, and nothing when any
other code (the reader, the model, the CLI) changes. A shard's code is what its kind's entry in
``notewise.kinds`` names (``kind_code_hash``); the timbre library's is ``synth/``; a corpus'
``notes.npz``'s is the corpus and MIDI-reading code (``NOTES_CODE``). Folders, not module lists:
a new module in a hashed folder is covered without anyone remembering to list it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from notewise import kinds

#: ``src/notewise``: what the paths of this module are relative to.
PACKAGE_DIR = Path(__file__).resolve().parents[1]

#: Folders whose code decides the bytes of the timbre library (``notewise build-timbres``): the
#: library (``synth``) and its ``.npz`` writer (``store``).
TIMBRE_CODE = ("synth", "store")
#: Folders whose code decides a corpus' ``notes.npz`` (``notewise music-notes``): the corpus
#: listing and note file (``music``), the MIDI reader (``midi``), the ``.npz`` writer (``store``).
NOTES_CODE = ("music", "midi", "store")


def source_files(paths: tuple[str, ...], root: Path = PACKAGE_DIR) -> list[Path]:
    """The ``.py`` files of ``paths`` (folders, recursively, or single files) under ``root``,
    in a fixed order (folders sorted by relative path)."""
    files = []
    for name in paths:
        path = root / name
        if path.is_dir():
            files.extend(sorted(path.rglob("*.py"), key=lambda p: p.relative_to(root).as_posix()))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such package folder or module to hash")
    return files


def source_hash(paths: tuple[str, ...], root: Path = PACKAGE_DIR) -> str:
    """sha256 over the source of ``paths`` (see ``source_files``), each file's relative path
    and text, 16 hex digits."""
    digest = hashlib.sha256()
    for path in source_files(paths, root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def kind_code_hash(kind: str, root: Path = PACKAGE_DIR) -> str:
    """The hash of the folders dataset kind ``kind``'s entry names (``notewise.kinds``)."""
    return source_hash(kinds.kind(kind).code, root)


def timbre_code_hash(root: Path = PACKAGE_DIR) -> str:
    return source_hash(TIMBRE_CODE, root)


def notes_code_hash(root: Path = PACKAGE_DIR) -> str:
    return source_hash(NOTES_CODE, root)
