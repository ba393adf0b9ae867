"""The shard format: one waveform ``.npy`` and one target ``.npz`` per shard, and how to write them.

Layout of a dataset directory (format version 2)::

    meta.json
    waveforms/shard_00000.npy   float32 [N, window], plain .npy so readers can memory-map it
    targets/shard_00000.npz     confs, energies float16 [N, n_bins] + the shard's note table
                                + waveforms_crc32 (uint32, CRC-32 of the waveform array's bytes)
                                + build_id (the build it belongs to, as in meta.json)

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

``DatasetWriter`` is the seed's sample-at-a-time API on top of the same functions.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from notewise.atomicio import atomic_file, atomic_write_bytes

from notewise.store.npzfile import (DEFAULT_COMPRESSLEVEL, check_compresslevel, crc32, npy_header, npz_bytes,
                      npz_members, read_npy_header)

FORMAT_NAME = "notewise-shards"
FORMAT_VERSION = 2
LEGACY_FORMAT_VERSION = 1

WAVEFORM_DIR = "waveforms"
TARGET_DIR = "targets"
META_NAME = "meta.json"
SHARD_PREFIX = "shard_"

#: The note table stored with each shard's targets: member name -> dtype, in member order.
NOTE_DTYPES: dict[str, np.dtype] = {
    "note_sample": np.dtype(np.int32),
    "note_freq": np.dtype(np.float32),
    "note_velocity": np.dtype(np.float32),
    "note_timbre": np.dtype(np.int16),
    "note_onset": np.dtype(np.int32),
    "note_offset": np.dtype(np.int32),
    "note_class": np.dtype(np.int8),
    "note_weight": np.dtype(np.float32),
    "note_energy_share": np.dtype(np.float32),
}
#: Optional note-table columns (written after the others when a generator provides them):
#: the music-driven sets' deviation from the MIDI pitch and vibrato depth (notewise.music.render).
OPTIONAL_NOTE_DTYPES: dict[str, np.dtype] = {
    "note_detune_cents": np.dtype(np.float32),
    "note_vibrato_cents": np.dtype(np.float32),
}
TARGET_KEYS = ("confs", "energies")
CRC_KEY = "waveforms_crc32"
#: The targets member (and ``meta.json`` key) naming the build a shard belongs to: a hash of the
#: generation spec and the code that made it, so shards of two builds in one directory (a
#: rebuild running or failed beside an older ``meta.json``) are told apart without hashing them.
BUILD_KEY = "build_id"

GB = 1e9  # shard_size_gb counts decimal gigabytes


# --------------------------------------------------------------------------- names and paths


def shard_name(index: int) -> str:
    """``shard_00042`` for index 42 (the stem every shard file shares)."""
    if index < 0:
        raise ValueError(f"shard index must be >= 0, got {index}")
    return f"{SHARD_PREFIX}{index:05d}"


def shard_index(path: str | Path) -> int:
    """Index of a shard file from its name (``.../shard_00042.npy`` -> 42)."""
    stem = Path(path).name.split(".")[0]
    if not stem.startswith(SHARD_PREFIX) or not stem[len(SHARD_PREFIX):].isdigit():
        raise ValueError(f"{path}: not a shard file name (expected {SHARD_PREFIX}NNNNN.*)")
    return int(stem[len(SHARD_PREFIX):])


def waveform_path(dataset_dir: str | Path, index: int) -> Path:
    return Path(dataset_dir) / WAVEFORM_DIR / f"{shard_name(index)}.npy"


def targets_path(dataset_dir: str | Path, index: int) -> Path:
    return Path(dataset_dir) / TARGET_DIR / f"{shard_name(index)}.npz"


def legacy_shard_path(dataset_dir: str | Path, index: int) -> Path:
    """V1 layout: one ``shard_NNNNN.npz`` per shard directly in the dataset directory."""
    return Path(dataset_dir) / f"{shard_name(index)}.npz"


def relative_shard_paths(index: int) -> tuple[str, str]:
    """Waveform and targets paths of shard ``index`` relative to the dataset directory."""
    return (f"{WAVEFORM_DIR}/{shard_name(index)}.npy", f"{TARGET_DIR}/{shard_name(index)}.npz")


def _indices_in(directory: Path, suffix: str) -> list[int]:
    if not directory.is_dir():
        return []
    names = (p.name for p in directory.iterdir() if p.name.endswith(suffix))
    return sorted(shard_index(n) for n in names if n.startswith(SHARD_PREFIX))


def list_shard_indices(dataset_dir: str | Path) -> list[int]:
    """Indices of the current-format shards present (both files), ascending."""
    dataset_dir = Path(dataset_dir)
    waves = _indices_in(dataset_dir / WAVEFORM_DIR, ".npy")
    targets = set(_indices_in(dataset_dir / TARGET_DIR, ".npz"))
    missing = [i for i in waves if i not in targets]
    if missing:
        raise FileNotFoundError(f"{dataset_dir}: waveforms without targets for shards {missing}")
    return waves


def list_legacy_indices(dataset_dir: str | Path) -> list[int]:
    """Indices of V1 ``shard_NNNNN.npz`` files directly in ``dataset_dir``, ascending."""
    return _indices_in(Path(dataset_dir), ".npz")


# --------------------------------------------------------------------------- shard size


def bytes_per_sample(window: int = 4096, n_bins: int = 2048) -> int:
    """Uncompressed bytes of one sample: float32 waveform + float16 confs and energies."""
    return window * 4 + 2 * n_bins * 2


def samples_per_shard(shard_size: int | None = None, shard_size_gb: float | None = None,
                      window: int = 4096, n_bins: int = 2048) -> int:
    """Samples per shard from a count (``shard_size``) or a size in decimal GB (``shard_size_gb``).

    A size is converted with ``bytes_per_sample`` (waveform + float16 targets, uncompressed,
    24,576 bytes at the default 4096/2048), so 1.0 GB is 40,690 samples. Exactly one must be given.
    """
    if (shard_size is None) == (shard_size_gb is None):
        raise ValueError("give exactly one of shard_size and shard_size_gb")
    if shard_size is not None:
        if int(shard_size) < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        return int(shard_size)
    if not shard_size_gb > 0:
        raise ValueError(f"shard_size_gb must be > 0, got {shard_size_gb}")
    return max(1, math.floor(shard_size_gb * GB / bytes_per_sample(window, n_bins)))


# --------------------------------------------------------------------------- hashes


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def build_id(generation: Mapping, code_hashes: tuple[str, ...] = ()) -> str:
    """The id of the build of one generation spec (no sample range) by code of ``code_hashes``.

    Same spec and code give the same bytes, so the id only has to differ between builds that
    differ; it is 16 hex digits of a sha256 of canonical JSON."""
    text = json.dumps({"generation": generation, "code": list(code_hashes)}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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


# --------------------------------------------------------------------------- DatasetWriter


class _ShardBuffer:
    """Samples waiting to be written as one shard."""

    def __init__(self):
        self.waveforms, self.confs, self.energies, self.notes = [], [], [], []

    def __len__(self) -> int:
        return len(self.waveforms)

    def add(self, waveform, confs, energies, notes) -> None:
        self.waveforms.append(np.asarray(waveform, dtype=np.float32).reshape(-1))
        self.confs.append(to_float16(np.asarray(confs).reshape(-1)))
        self.energies.append(to_float16(np.asarray(energies).reshape(-1)))
        self.notes.append(notes)

    def note_table(self) -> dict[str, np.ndarray] | None:
        if self.notes[0] is None:
            return None
        columns = {k: [] for k in NOTE_DTYPES}
        for row, notes in enumerate(self.notes):
            count = len(np.atleast_1d(notes.get("note_freq", [])))
            for key, dtype in NOTE_DTYPES.items():
                values = np.full(count, row) if key == "note_sample" else notes.get(key, [])
                columns[key].append(np.asarray(values, dtype=dtype).reshape(-1))
        return {k: np.concatenate(v) for k, v in columns.items()}


class DatasetWriter:
    """Write a dataset sample by sample (the seed's API), in current-format shards.

    ::

        with DatasetWriter("out", shard_size_gb=1.0) as writer:
            for bin_idx in range(2048):
                s = generate_single_note(bin_idx=bin_idx)
                writer.add_sample(waveform=s["waveform"], confs=s["confs"], energies=s["energies"])

    Samples are buffered and written a full shard at a time. Leaving the ``with`` block normally
    writes the last partial shard and ``meta.json`` (``finalize``); leaving it through an exception
    writes neither. ``notes`` (a dict of note-table columns without ``note_sample``) is either given
    with every sample (``{}`` for a silent one) or with none, in which case the shards have no note
    table and ``meta.json`` says so.
    """

    def __init__(self, path: str | Path, shard_size: int | None = None,
                 shard_size_gb: float | None = None, *,
                 compresslevel: int = DEFAULT_COMPRESSLEVEL):
        if shard_size is None and shard_size_gb is None:
            shard_size_gb = 1.0
        self.path = Path(path)
        self._size_args = (shard_size, shard_size_gb)
        self.shard_size: int | None = None  # known once the first sample gives window and n_bins
        self.compresslevel = compresslevel
        self.shards: list[dict] = []
        self._buffer = _ShardBuffer()
        self._with_notes: bool | None = None
        self._shape: tuple[int, int] | None = None
        self.finalized = False

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and not self.finalized:
            self.finalize()

    @property
    def num_samples(self) -> int:
        return sum(s["samples"] for s in self.shards) + len(self._buffer)

    def add_sample(self, waveform, confs, energies, notes: Mapping | None = None) -> None:
        if self.finalized:
            raise RuntimeError(f"{self.path}: add_sample after finalize")
        self._check_sample(np.shape(waveform), np.shape(confs), np.shape(energies), notes)
        self._buffer.add(waveform, confs, energies, notes)
        if len(self._buffer) >= self.shard_size:
            self._flush()

    def _check_sample(self, wave_shape, conf_shape, energy_shape, notes) -> None:
        shape = (math.prod(wave_shape), math.prod(conf_shape))
        if math.prod(energy_shape) != shape[1]:
            raise ValueError(f"confs has {shape[1]} values but energies {math.prod(energy_shape)}")
        if self._shape is None:
            self._shape, self._with_notes = shape, notes is not None
            self.shard_size = samples_per_shard(*self._size_args, window=shape[0], n_bins=shape[1])
        elif shape != self._shape:
            raise ValueError(f"sample of window/n_bins {shape}, earlier samples {self._shape}")
        if (notes is not None) != self._with_notes:
            raise ValueError("give notes with every sample or with none ({} for a silent window)")

    def _flush(self) -> None:
        if not len(self._buffer):
            return
        index = len(self.shards)
        buffer, self._buffer = self._buffer, _ShardBuffer()
        data = _Arrays(np.stack(buffer.waveforms), np.stack(buffer.confs),
                       np.stack(buffer.energies), buffer.note_table())
        written = write_shard(waveform_path(self.path, index), targets_path(self.path, index), data,
                              compresslevel=self.compresslevel)
        self.shards.append({"index": index, **written})

    def finalize(self, meta: Mapping | None = None) -> dict:
        """Write the last partial shard and ``meta.json`` (user ``meta`` keys at its top level)."""
        from notewise.store.meta import writer_meta, write_meta

        self._flush()
        window, n_bins = self._shape or (None, None)
        result = writer_meta(self.shards, dict(meta or {}), window=window, n_bins=n_bins,
                             note_table=bool(self._with_notes))
        write_meta(self.path / META_NAME, result)
        self.finalized = True
        return result


class _Arrays:
    """Minimal ``ShardData`` stand-in for ``write_shard`` (duck-typed: the same four fields)."""

    __slots__ = ("waveforms", "confs", "energies", "notes")

    def __init__(self, waveforms, confs, energies, notes):
        self.waveforms, self.confs, self.energies, self.notes = waveforms, confs, energies, notes
