"""``DatasetWriter``: the design document's sample-at-a-time API, writing current-format shards and
``meta.json`` (``notewise.store.shards`` writes each shard, ``notewise.store.meta`` the metadata).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

import numpy as np

from notewise.store.layout import META_NAME, NOTE_DTYPES, samples_per_shard, targets_path, waveform_path
from notewise.store.meta import write_meta, writer_meta
from notewise.store.npzfile import DEFAULT_COMPRESSLEVEL
from notewise.store.shards import to_float16, write_shard

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
    """Write a dataset sample by sample (the design document's API), in current-format shards.

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
