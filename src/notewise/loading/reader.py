"""Reading shard datasets into PyTorch: per item (``Dataset``) and, fast, per batch.

``DatasetReader(path, preload=False)`` memory-maps each shard's waveforms and decompresses a
shard's targets the first time one of its samples is read, keeping the last ``cache_shards``
shards' targets (float16) in an LRU cache. ``preload=True`` loads everything (targets stay
float16 in memory; they become float32 per item or batch), on the GPU with ``device='cuda'``.

Speed comes from the batch path, not from ``__getitem__``: ``get_batch(indices)`` sorts the
indices, groups them by shard and gathers each group with one fancy index into preallocated
arrays (a contiguous run is one slice copy), so a batch costs a few large copies instead of
``batch_size`` small ones plus collation. ``ShardBatchSampler`` and ``BatchLoader``
(``notewise.loading.batches``) feed it batches that stay within one shard. Targets are inflated straight from the zip members without zip's CRC pass
(``read_target_arrays``): checking the bytes is validation's job, done when the data is built and
by ``notewise check-dataset``; the reader trusts a validated dataset, unless ``verify=True``:
then the first time a process opens a shard, every target member's CRC-32 and the waveform
bytes' CRC-32 (stored in the targets) are checked, and a mismatch raises ``ValueError`` naming
the file (``bench/bench_verify.py``: the cost against a training epoch, in
``docs/benchmarks.md``).

The reader works in ``torch.utils.data.DataLoader`` workers: open files and caches are not
pickled, each process reopens them lazily. Legacy V1 directories read through the same class.
"""

from __future__ import annotations

import io
import struct
import threading
import warnings
import zipfile
import zlib
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from notewise.store import legacy
from notewise.store.meta import read_meta
from notewise.store.npzfile import member_data, npy_from_buffer
from notewise.store.layout import (BUILD_KEY, CRC_KEY, FORMAT_VERSION, LEGACY_FORMAT_VERSION,
    META_NAME, TARGET_KEYS, legacy_shard_path, list_legacy_indices, list_shard_indices,
    targets_path, waveform_path)
from notewise.store.shards import npy_shape, read_waveforms, waveform_crc32

ITEM_KEYS = ("waveform", "target_confidence", "target_energy")


# --------------------------------------------------------------------------- fast target reads


def read_target_arrays(path: str | Path, keys: tuple[str, ...] = TARGET_KEYS,
                       verify: bool = False) -> dict[str, np.ndarray]:
    """The ``keys`` members of a targets ``.npz``, read-only, for training readers: raw inflate
    (zlib releases the GIL, so a prefetch thread overlaps it) and no CRC pass, which is
    validation's job (``read_targets`` and ``notewise check-dataset`` verify every CRC), unless
    ``verify``: then each member's CRC-32 is checked, and the waveforms' CRC member
    (``CRC_KEY``), where the shard has one, is returned too. So is the build id (``BUILD_KEY``)
    of a shard that records one."""
    raw = memoryview(Path(path).read_bytes())
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            infos = {info.filename: info for info in archive.infolist()}
        missing = [k for k in keys if f"{k}.npy" not in infos]
        if missing:
            raise ValueError(f"missing members {missing}")
        if verify and f"{CRC_KEY}.npy" in infos:
            keys = (*keys, CRC_KEY)
        if f"{BUILD_KEY}.npy" in infos:
            keys = (*keys, BUILD_KEY)
        return {k: npy_from_buffer(member_data(raw, infos[f"{k}.npy"], verify)) for k in keys}
    except (zipfile.BadZipFile, zlib.error, struct.error, ValueError) as exc:
        raise ValueError(f"{path}: unreadable targets ({type(exc).__name__}: {exc});"
                         " `notewise check-dataset` tells what is damaged") from exc


# --------------------------------------------------------------------------- dataset layout


@dataclass(frozen=True)
class ShardSource:
    """Where shard ``index`` lives; ``targets`` is None for a V1 shard (all in ``waveforms``)."""

    index: int
    start: int
    samples: int
    waveforms: Path
    targets: Path | None


@dataclass(frozen=True)
class DatasetLayout:
    root: Path
    version: int
    shards: tuple[ShardSource, ...]
    build: str | None = None  # meta.json's build id: every shard read must record the same

    @property
    def num_samples(self) -> int:
        return sum(s.samples for s in self.shards)

    @property
    def legacy(self) -> bool:
        return self.version == LEGACY_FORMAT_VERSION


def _sources(counts: list[tuple[int, int]], paths) -> tuple[ShardSource, ...]:
    sources, start = [], 0
    for index, samples in counts:
        sources.append(ShardSource(index, start, samples, *paths(index)))
        start += samples
    return tuple(sources)


def _check_shards_against_meta(shards: tuple[ShardSource, ...], meta_path: Path) -> None:
    """Each shard ``meta.json`` lists exists and holds the samples it records (its ``.npy``
    header): shards of another build beside an old ``meta.json`` are refused, named."""
    for shard in shards:
        if not shard.waveforms.exists() or not shard.targets.exists():
            missing = shard.waveforms if not shard.waveforms.exists() else shard.targets
            raise FileNotFoundError(f"{missing}: listed in {meta_path} but missing (deleted, or a"
                                    " rebuild is running); `notewise check-dataset` tells more")
        samples = npy_shape(shard.waveforms)[0]
        if samples != shard.samples:
            raise ValueError(f"{shard.waveforms}: {samples} samples, {meta_path} records "
                             f"{shard.samples}: the shard and meta.json are of different builds")


def open_layout(path: str | Path) -> DatasetLayout:
    """The shards of a dataset directory: from ``meta.json`` if it has a current-format one,
    otherwise by scanning for current shards, then for V1 ``shard_NNNNN.npz`` files."""
    root = Path(path)
    meta_path = root / META_NAME
    meta = read_meta(meta_path) if meta_path.exists() else {}
    if meta.get("format", {}).get("version") == FORMAT_VERSION:
        counts = [(e["index"], e["samples"]) for e in meta["shards"]]
        by_index = {e["index"]: e for e in meta["shards"]}
        shards = _sources(counts, lambda i: (root / by_index[i]["waveforms"], root / by_index[i]["targets"]))
        _check_shards_against_meta(shards, meta_path)
        return DatasetLayout(root, FORMAT_VERSION, shards, meta.get(BUILD_KEY))
    if legacy.is_legacy_dataset(root):
        counts = [(i, legacy.legacy_shard_length(legacy_shard_path(root, i)))
                  for i in list_legacy_indices(root)]
        return DatasetLayout(root, LEGACY_FORMAT_VERSION,
                             _sources(counts, lambda i: (legacy_shard_path(root, i), None)))
    indices = list_shard_indices(root)
    if not indices:
        raise FileNotFoundError(f"{root}: no shards (neither waveforms/shard_*.npy nor V1 shard_*.npz)")
    warnings.warn(f"{root} has no {META_NAME}: reading {len(indices)} shards found by scanning,"
                  " which no finished build describes (a failed or interrupted build?)",
                  stacklevel=2)
    counts = [(i, npy_shape(waveform_path(root, i))[0]) for i in indices]
    return DatasetLayout(root, FORMAT_VERSION,
                         _sources(counts, lambda i: (waveform_path(root, i), targets_path(root, i))))


# --------------------------------------------------------------------------- gathering


def _gather(source: np.ndarray, rows: np.ndarray, out: np.ndarray, dest) -> None:
    """``out[dest] = source[rows]`` with the fewest copies: a slice for a contiguous run."""
    if isinstance(dest, slice):
        if rows[-1] - rows[0] + 1 == len(rows):
            out[dest] = source[rows[0]: rows[-1] + 1]
        else:
            np.take(source, rows, axis=0, out=out[dest], mode="clip")  # rows already checked
    else:
        out[dest] = source[rows]


def _is_sorted(indices: np.ndarray) -> bool:
    return bool(len(indices) < 2 or (indices[1:] >= indices[:-1]).all())


def check_indices(indices, num_samples: int) -> np.ndarray:
    """``indices`` (a sequence, array or tensor) as int64 NumPy, each in ``[0, num_samples)``."""
    if isinstance(indices, torch.Tensor):
        indices = indices.cpu().numpy()
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if len(indices) and (indices.min() < 0 or indices.max() >= num_samples):
        raise IndexError(f"batch indices must lie in [0, {num_samples}),"
                         f" got {indices.min()}..{indices.max()}")
    return indices


class DatasetReader(torch.utils.data.Dataset):
    """A shard dataset as a PyTorch ``Dataset`` (the design document's API) plus a batch path.

    Items are ``{'waveform': [1, window], 'target_confidence': [n_bins],
    'target_energy': [n_bins]}`` float32 tensors; ``get_batch`` returns the same keys batched.
    ``device`` places the preloaded tensors (so needs ``preload=True``).
    """

    def __init__(self, path: str | Path, preload: bool = False, device=None, cache_shards: int = 8,
                 verify: bool = False):
        if device is not None and not preload:
            raise ValueError("device= places preloaded data: use preload=True"
                             " (or BatchLoader(..., device=) to move batches)")
        self.layout = open_layout(path)
        self.path = self.layout.root
        self.preload = preload
        self.device = torch.device(device) if device is not None else None
        self.cache_shards = max(1, int(cache_shards))
        self.verify = bool(verify)
        self._starts = np.array([s.start for s in self.layout.shards] + [self.layout.num_samples])
        self._reset_handles()
        self.window, self.n_bins, self._target_dtype = self._probe_shapes()
        self._data: dict[str, torch.Tensor] | None = self._load_all() if preload else None

    # ------------------------------------------------------------ process-local state

    def _reset_handles(self) -> None:
        self._waveform_maps: dict[int, np.ndarray] = {}
        self._cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._loading: dict[int, Future] = {}  # shards being decompressed, by any thread
        self._lock = threading.Lock()
        self._verified: set[int] = set()  # shards whose checksums this process has checked

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for key in ("_waveform_maps", "_cache", "_loading", "_lock", "_verified"):
            state.pop(key)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset_handles()

    # ------------------------------------------------------------ layout

    def __len__(self) -> int:
        return self.layout.num_samples

    @property
    def shard_bounds(self) -> list[tuple[int, int]]:
        """``(start, samples)`` of every shard, in order (what ``ShardBatchSampler`` groups by)."""
        return [(s.start, s.samples) for s in self.layout.shards]

    def _probe_shapes(self) -> tuple[int, int, np.dtype]:
        first = self.layout.shards[0]
        if self.layout.legacy:
            shard = self._shard_arrays(0)
            return shard["waveforms"].shape[1], shard["confs"].shape[1], shard["confs"].dtype
        window = read_waveforms(first.waveforms).shape[1]
        confs = self._shard_arrays(0)["confs"]
        return window, confs.shape[1], confs.dtype

    def _position(self, index: int) -> tuple[int, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        index %= len(self)
        shard = int(np.searchsorted(self._starts, index, side="right")) - 1
        return shard, index - int(self._starts[shard])

    # ------------------------------------------------------------ lazy storage

    def _waveforms(self, shard: int) -> np.ndarray:
        if self.layout.legacy:
            return self._shard_arrays(shard)["waveforms"]
        array = self._waveform_maps.get(shard)
        if array is None:
            array = read_waveforms(self.layout.shards[shard].waveforms, mmap=True)
            self._waveform_maps[shard] = array
        return array

    def _load_shard(self, shard: int) -> dict[str, np.ndarray]:
        source = self.layout.shards[shard]
        if self.layout.legacy:
            data = legacy.read_legacy_shard(source.waveforms)
            return {"waveforms": data.waveforms, "confs": data.confs, "energies": data.energies}
        verify = self.verify and shard not in self._verified
        targets = read_target_arrays(source.targets, verify=verify)
        self._check_build(source, targets.get(BUILD_KEY))
        if verify:
            self._verify_waveforms(shard, targets.get(CRC_KEY))
        return {"confs": targets["confs"], "energies": targets["energies"]}

    def _check_build(self, source: ShardSource, recorded) -> None:
        """A shard of another build than meta.json's (a rebuild running, or one that failed
        half-way) is refused, so that no epoch mixes two builds."""
        expected = self.layout.build
        if expected is not None and str(recorded) != expected:
            raise ValueError(f"{source.targets}: a shard of build {recorded}, but "
                             f"{self.layout.root / META_NAME} describes build {expected} (a "
                             "rebuild is running or failed): rerun the build, then read again")

    def _verify_waveforms(self, shard: int, stored) -> None:
        """The shard's waveform bytes against the CRC-32 its targets recorded (``verify``)."""
        if stored is not None:
            actual = waveform_crc32(self._waveforms(shard))
            if actual != int(stored):
                path = self.layout.shards[shard].waveforms
                raise ValueError(f"{path}: waveform bytes have CRC-32 {actual:08x}, "
                                 f"{self.layout.shards[shard].targets.name} recorded "
                                 f"{int(stored):08x} (damaged after it was written); "
                                 "`notewise check-dataset` tells what is damaged")
        with self._lock:
            self._verified.add(shard)

    def _shard_arrays(self, shard: int) -> dict[str, np.ndarray]:
        """The shard's decompressed arrays from the LRU cache, loaded on a miss; a shard that
        another thread (the prefetcher) is loading is waited for, not loaded twice."""
        with self._lock:
            entry = self._cache.get(shard)
            if entry is not None:
                self._cache.move_to_end(shard)
                return entry
            pending = self._loading.get(shard)
            owner = pending is None
            if owner:
                pending = self._loading[shard] = Future()
        if not owner:
            return pending.result()
        try:
            entry = self._load_shard(shard)  # outside the lock: other shards load meanwhile
        except BaseException as exc:
            with self._lock:
                self._loading.pop(shard)
            pending.set_exception(exc)
            raise
        with self._lock:
            self._loading.pop(shard)
            self._cache[shard] = entry
            while len(self._cache) > self.cache_shards:
                self._cache.popitem(last=False)
        pending.set_result(entry)
        return entry

    def prefetch_shard(self, shard: int) -> None:
        """Decompress shard ``shard``'s targets into the cache ahead of use (no-op preloaded)."""
        if self._data is None:
            self._shard_arrays(shard)

    def shards_of(self, indices) -> np.ndarray:
        """The shard of each sample index (ascending unique), for prefetching."""
        indices = check_indices(indices, len(self))
        return np.unique(np.searchsorted(self._starts, indices, side="right") - 1)

    def _load_all(self) -> dict[str, torch.Tensor]:
        n = len(self)
        waveforms = np.empty((n, self.window), np.float32)
        confs = np.empty((n, self.n_bins), self._target_dtype)
        energies = np.empty((n, self.n_bins), self._target_dtype)
        for shard, source in enumerate(self.layout.shards):
            rows = slice(source.start, source.start + source.samples)
            waveforms[rows] = self._waveforms(shard)
            arrays = self._shard_arrays(shard)
            confs[rows], energies[rows] = arrays["confs"], arrays["energies"]
        self._reset_handles()  # the copies below are all that is kept
        data = {"waveform": waveforms, "target_confidence": confs, "target_energy": energies}
        return {k: torch.from_numpy(v).to(self.device or "cpu") for k, v in data.items()}

    # ------------------------------------------------------------ items and batches

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        shard, row = self._position(index)
        if self._data is not None:
            i = int(self._starts[shard]) + row
            return {"waveform": self._data["waveform"][i].unsqueeze(0),
                    "target_confidence": self._data["target_confidence"][i].float(),
                    "target_energy": self._data["target_energy"][i].float()}
        arrays = self._shard_arrays(shard)
        return {"waveform": torch.from_numpy(np.array(self._waveforms(shard)[row])).unsqueeze(0),
                "target_confidence": torch.from_numpy(arrays["confs"][row].astype(np.float32)),
                "target_energy": torch.from_numpy(arrays["energies"][row].astype(np.float32))}

    def get_batch(self, indices) -> dict[str, torch.Tensor]:
        """Samples ``indices`` as batched float32 tensors (``waveform`` [B, 1, window], targets
        [B, n_bins]), row k holding sample ``indices[k]``. Sorted indices are the fast case."""
        indices = check_indices(indices, len(self))
        if self._data is not None:
            positions = torch.from_numpy(indices).to(self._data["waveform"].device)
            return {"waveform": self._data["waveform"].index_select(0, positions).unsqueeze(1),
                    "target_confidence": self._data["target_confidence"].index_select(0, positions).float(),
                    "target_energy": self._data["target_energy"].index_select(0, positions).float()}
        return self._gather_batch(indices)

    def _gather_batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        batch = len(indices)
        waveforms = np.empty((batch, self.window), np.float32)
        confs = np.empty((batch, self.n_bins), self._target_dtype)
        energies = np.empty((batch, self.n_bins), self._target_dtype)
        in_order = _is_sorted(indices)
        order = np.arange(batch) if in_order else np.argsort(indices, kind="stable")
        ordered = indices[order]
        shards = np.searchsorted(self._starts, ordered, side="right") - 1
        edges = [0, *(np.flatnonzero(np.diff(shards)) + 1).tolist(), batch]
        for a, b in zip(edges[:-1], edges[1:]):
            if a == b:
                continue
            shard = int(shards[a])
            rows = ordered[a:b] - self._starts[shard]
            dest = slice(a, b) if in_order else order[a:b]
            arrays = self._shard_arrays(shard)
            _gather(self._waveforms(shard), rows, waveforms, dest)
            _gather(arrays["confs"], rows, confs, dest)
            _gather(arrays["energies"], rows, energies, dest)
        return {"waveform": torch.from_numpy(waveforms).unsqueeze(1),
                "target_confidence": torch.from_numpy(confs).float(),
                "target_energy": torch.from_numpy(energies).float()}
