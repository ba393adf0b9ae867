"""The shard layout: directory and file names, target members, the note table's dtypes (defined
once, here), shard sizes and build ids. Plain Python and NumPy (readers, validation, the rules).

Layout of a dataset directory (format version 2)::

    meta.json
    waveforms/shard_00000.npy   float32 [N, window], plain .npy so readers can memory-map it
    targets/shard_00000.npz     confs, energies float16 [N, n_bins] + the shard's note table
                                + waveforms_crc32 (uint32, CRC-32 of the waveform array's bytes)
                                + build_id (the build it belongs to, as in meta.json)
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Mapping

import numpy as np

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
#: The note classes ``note_class`` holds (SPEC section 3: 4 sounds throughout, 2 starts inside,
#: 1 ends inside, 3 both).
CLASSES = (1, 2, 3, 4)
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
