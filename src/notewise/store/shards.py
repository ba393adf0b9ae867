"""Writing and reading shards: one waveform ``.npy`` and one target ``.npz`` per shard (the
layout of a dataset directory: ``notewise.store.layout``).

Why it is written the way it is:

* **Atomic.** Every file is written to a temporary file in the destination directory, flushed,
  fsync'ed and then ``os.replace``d onto its final name, so an interrupted job leaves either no file
  or the old one under the final name, never half of one.
* **Deterministic.** Identical arrays give byte-identical files (and sha256). ``np.savez`` stamps
  each zip member with the current time; here the zip is written member by member with a fixed
  ``ZipInfo`` (date 1980-01-01, fixed attributes, fixed member order). It stays a standard ``.npz``
  that ``np.load`` reads.
* **Fast.** ``np.savez_compressed`` deflates at level 6; the targets are mostly zeros and level 1
  compresses them almost as well at about twice the speed (``bench/bench_writes.py`` has the
  figures), so level 1 is the default.
* **Self-checking.** The waveform ``.npy`` has no checksum of its own; the CRC-32 of its array bytes
  is stored in the targets ``.npz`` (whose members are CRC-checked by zip) so validation can tell a
  flipped bit in the waveforms from a clean shard.

The layout (names, paths, dtypes, sizes) is ``notewise.store.layout``; ``DatasetWriter``
(``notewise.store.writer``) is the design document's sample-at-a-time API on top of these
functions.
"""

from __future__ import annotations

import hashlib
import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from notewise.atomicio import atomic_file, atomic_write_bytes

from notewise.store.layout import BUILD_KEY, CRC_KEY, NOTE_DTYPES, OPTIONAL_NOTE_DTYPES
from notewise.store.npzfile import (DEFAULT_COMPRESSLEVEL, check_compresslevel, crc32, npy_header,
                                    npz_bytes, npz_members, read_npy_header)


# --------------------------------------------------------------------------- writing shards


def to_float16(values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Targets as stored: float16, round to nearest even (already float16: unchanged); the
    same bits as ``astype(np.float16)``, computed faster for float32 (``notewise.store.f16``).
    ``out``: a float16 array of the same shape to write into."""
    values = np.asarray(values)
    if values.dtype != np.float32:
        converted = values.astype(np.float16, copy=False)
        if out is None:
            return converted
        out[...] = converted
        return out
    from notewise.store.f16 import float32_to_float16  # Numba: not imported by readers

    return float32_to_float16(values, out)


def note_table(notes: Mapping[str, np.ndarray] | None, n_samples: int) -> dict[str, np.ndarray]:
    """The note table in canonical key order and dtypes; checks keys, lengths and rows."""
    if notes is None:
        return {}
    missing = [k for k in NOTE_DTYPES if k not in notes]
    extra = [k for k in notes if k not in NOTE_DTYPES and k not in OPTIONAL_NOTE_DTYPES]
    if missing or extra:
        raise ValueError(f"note table keys: missing {missing}, unexpected {extra}")
    dtypes = {**NOTE_DTYPES, **{k: dt for k, dt in OPTIONAL_NOTE_DTYPES.items() if k in notes}}
    table = {k: np.ascontiguousarray(notes[k], dtype=dt).reshape(-1) for k, dt in dtypes.items()}
    lengths = {len(v) for v in table.values()}
    if len(lengths) != 1:
        raise ValueError(f"note table columns differ in length: { {k: len(v) for k, v in table.items()} }")
    rows = table["note_sample"]
    if len(rows) and (rows.min() < 0 or rows.max() >= n_samples):
        raise ValueError(f"note_sample outside [0, {n_samples})")
    return table


class ShardWriter:
    """Write one shard a chunk of rows at a time: ``append`` the rows in order, then leave the
    ``with`` block.

    The waveforms stream into the shard's temporary ``.npy`` as they come (the shard is never
    held in memory as float32), their CRC-32 is updated chunk by chunk, and the targets are kept
    as float16 until the end, when the ``.npz`` is written; both files then appear under their
    final names (atomically). Leaving the block through an exception leaves neither. With
    ``sha256=True`` both files are hashed as they are written (``DatasetWriter`` records the
    hashes; a shard job does not need them: validation hashes what it reads anyway).
    ``build``: the build id stored with the targets (``BUILD_KEY``), if any.
    """

    def __init__(self, waveform_path: str | Path, targets_path: str | Path, rows: int,
                 window: int, n_bins: int, *, compresslevel: int = DEFAULT_COMPRESSLEVEL,
                 sha256: bool = False, build: str | None = None):
        check_compresslevel(compresslevel)
        self.rows, self.window, self.compresslevel = rows, window, compresslevel
        self.targets_path = Path(targets_path)
        self.confs = np.empty((rows, n_bins), np.float16)
        self.energies = np.empty((rows, n_bins), np.float16)
        self.waveform_path = Path(waveform_path)
        self.written = 0
        self.build = build
        self.sha256: dict[str, str] = {}
        self._notes: list[dict] | None = None
        self._crc = 0
        self._digest = hashlib.sha256() if sha256 else None
        self._context = self._open()

    def __enter__(self) -> "ShardWriter":
        return self._context.__enter__()

    def __exit__(self, *exc) -> bool | None:
        return self._context.__exit__(*exc)

    @contextmanager
    def _open(self) -> Iterator["ShardWriter"]:
        """The waveform file is committed only if the block and the targets both succeed."""
        with atomic_file(self.waveform_path) as self._waveforms:
            self._write(npy_header((self.rows, self.window), np.float32))
            yield self
            self._write_targets()

    def _write(self, data) -> None:
        self._waveforms.write(data)
        if self._digest is not None:
            self._digest.update(data)

    def append(self, waveforms: np.ndarray, confs: np.ndarray, energies: np.ndarray,
               notes: Mapping[str, np.ndarray] | None = None) -> None:
        """The next ``len(waveforms)`` rows; ``notes``' ``note_sample`` counts from this chunk's
        first row. Give notes with every chunk or with none."""
        waveforms = np.ascontiguousarray(waveforms, dtype=np.float32)
        count, at = len(waveforms), self.written
        if waveforms.shape[1:] != (self.window,) or np.shape(confs) != (count, self.confs.shape[1]):
            raise ValueError(f"chunk of waveforms {waveforms.shape} and targets {np.shape(confs)}:"
                             f" expected [N, {self.window}] and [N, {self.confs.shape[1]}]")
        if at + count > self.rows:
            raise ValueError(f"{at + count} rows for a shard of {self.rows}")
        if (notes is not None) != (self._notes is not None) and at > 0:
            raise ValueError("give notes with every chunk or with none")
        data = memoryview(waveforms.reshape(-1)).cast("B")
        self._write(data)
        self._crc = crc32(data, self._crc)
        to_float16(confs, self.confs[at:at + count])
        to_float16(energies, self.energies[at:at + count])
        if notes is not None:
            table = note_table(notes, count)
            table["note_sample"] = table["note_sample"] + np.int32(at)
            self._notes = self._notes or []
            self._notes.append(table)
        self.written += count

    def _write_targets(self) -> None:
        if self.written != self.rows:
            raise ValueError(f"{self.targets_path}: {self.written} rows appended, shard has {self.rows}")
        notes = {}
        if self._notes:
            notes = {key: np.concatenate([t[key] for t in self._notes]) for key in self._notes[0]}
        members = {"confs": self.confs, "energies": self.energies, **notes,
                   CRC_KEY: np.array(self._crc, dtype=np.uint32)}
        if self.build is not None:
            members[BUILD_KEY] = np.array(self.build)
        targets_sha = atomic_write_bytes(self.targets_path, npz_bytes(members, self.compresslevel))
        if self._digest is not None:
            self.sha256 = {"waveforms_sha256": self._digest.hexdigest(), "targets_sha256": targets_sha}


def write_shard(waveform_path: str | Path, targets_path: str | Path, data,
                compresslevel: int = DEFAULT_COMPRESSLEVEL, build: str | None = None) -> dict:
    """Write one shard from a ``ShardData`` (waveforms, confs, energies, notes; notes may be None),
    recording ``build`` (``BUILD_KEY``) if given.

    Returns ``{'samples', 'waveforms_sha256', 'targets_sha256'}``.
    """
    waveforms = np.asarray(data.waveforms)
    if waveforms.ndim != 2 or len(waveforms) != len(data.confs):
        raise ValueError(f"waveforms {waveforms.shape} must be [N, window] with N = {len(data.confs)}"
                         " target rows")
    with ShardWriter(waveform_path, targets_path, len(waveforms), waveforms.shape[1],
                     np.shape(data.confs)[1], compresslevel=compresslevel, sha256=True,
                     build=build) as writer:
        writer.append(waveforms, data.confs, data.energies, data.notes)
    return {"samples": len(waveforms), **writer.sha256}


# --------------------------------------------------------------------------- reading shards


def read_waveforms(path: str | Path, mmap: bool = True) -> np.ndarray:
    """The ``[N, window]`` float32 waveforms; memory-mapped read-only unless ``mmap=False``.

    A file shorter or longer than its header says (a truncated copy, a partial write by another
    tool) raises ``ValueError`` naming it, not NumPy's nameless ``mmap length`` error."""
    try:
        with open(path, "rb") as fh:
            shape, _, dtype = read_npy_header(fh)
            expected = fh.tell() + math.prod(shape) * dtype.itemsize
            size = os.fstat(fh.fileno()).st_size
        if size != expected:
            raise ValueError(f"{size:,} bytes, its header {shape} {dtype} needs {expected:,} "
                             f"({'truncated' if size < expected else 'trailing bytes'})")
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path}: unreadable waveforms ({exc}); `notewise check-dataset` tells "
                         "what is damaged") from exc


def waveform_crc32(waveforms: np.ndarray) -> int:
    """CRC-32 of a waveform array's bytes, as the writer stores it under ``CRC_KEY``."""
    return crc32(memoryview(np.ascontiguousarray(waveforms).reshape(-1)).cast("B"))


def read_targets(path: str | Path) -> dict[str, np.ndarray]:
    """Every member of a targets ``.npz`` (confs/energies float16, note table, CRC), read-only."""
    return npz_members(Path(path).read_bytes(), str(path))


def npy_shape(path: str | Path) -> tuple[int, ...]:
    """Shape stored in a ``.npy`` header (reads the header only)."""
    with open(path, "rb") as fh:
        return read_npy_header(fh)[0]
