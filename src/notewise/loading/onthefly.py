"""Training data with no shards on disk: samples generated on demand, byte-equal to the stored ones.

A dataset's sample ``i`` is a pure function of ``(seed, dataset name, i)`` and the generation spec
(``docs/architecture.md``), so ``OnTheFlyDataset`` regenerates exactly what
``results/datasets/<name>/`` holds: the same float32 waveform bytes, and the targets rounded
through float16 as the shards store them (``round_targets=False`` keeps the float32 labels).

It has ``DatasetReader``'s interface: items ``{'waveform': [1, window], 'target_confidence':
[n_bins], 'target_energy': [n_bins]}`` (float32 tensors), ``get_batch(indices)`` for the batch
path (one Numba call per batch, any index order), ``shard_bounds`` for ``ShardBatchSampler``, so
``BatchLoader`` and ``torch.utils.data.DataLoader`` (workers too) take it unchanged::

    data = OnTheFlyDataset.from_config(config, "train")        # config.yaml as a dict
    data = OnTheFlyDataset.from_meta("results/datasets/train")   # what a built dataset holds
    loader = BatchLoader(data, ShardBatchSampler(data, batch_size=64, seed=0))

The timbre library is built from the config's ``timbres`` section (deterministic, a fraction of a
second) unless a ``TimbreLibrary`` or the path of ``results/timbres/timbres.npz`` is given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from notewise.synth.generate import ShardData, generate_samples
from notewise.loading.reader import check_indices
from notewise.store.layout import META_NAME
from notewise.store.shards import to_float16
from notewise.synth.timbres import TimbreLibrary, build_timbre_library


def _library(timbres, timbre_config: Mapping | None) -> TimbreLibrary:
    if isinstance(timbres, TimbreLibrary):
        return timbres
    if timbres is not None:
        return TimbreLibrary.load(timbres)
    return build_timbre_library(**dict(timbre_config or {}))


def _stored(values: np.ndarray) -> np.ndarray:
    """Targets as a reader returns them from a shard: float32 of the stored float16."""
    return to_float16(values).astype(np.float32)


class OnTheFlyDataset(torch.utils.data.Dataset):
    """Samples ``0 .. num_samples-1`` of the dataset that ``spec`` (a generation spec) describes."""

    def __init__(self, spec: Mapping, num_samples: int, timbres: TimbreLibrary | str | Path | None = None,
                 *, timbre_config: Mapping | None = None, round_targets: bool = True):
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.spec = dict(spec)
        self.num_samples = int(num_samples)
        self.timbres = _library(timbres, timbre_config)
        self.round_targets = round_targets
        self.window = int(spec["audio"]["window"])
        self.n_bins = int(spec["bins"]["n_bins"])
        generate_samples(self.spec, [self.num_samples - 1], self.timbres)  # bad spec: fail now

    @classmethod
    def from_config(cls, config: Mapping, dataset: str, timbres=None, **kwargs) -> "OnTheFlyDataset":
        """Dataset ``dataset`` of a workflow config (``config.yaml`` plus overrides, as a dict)."""
        from notewise.workflow.specs import check_config, generation_spec, num_samples

        full = check_config(dict(config))
        if dataset not in full["datasets"]:
            raise KeyError(f"config has no dataset {dataset!r}; it has {sorted(full['datasets'])}")
        return cls(generation_spec(full, dataset), num_samples(full, dataset), timbres,
                   timbre_config=full["timbres"], **kwargs)

    @classmethod
    def from_meta(cls, path: str | Path, timbres=None, **kwargs) -> "OnTheFlyDataset":
        """The dataset a built directory's ``meta.json`` describes (its generation spec and
        size), without reading any shard. ``timbres``: the library it was built with (default:
        ``results/timbres/timbres.npz`` beside ``results/datasets/``)."""
        meta_path = Path(path) / META_NAME
        meta = json.loads(meta_path.read_text())
        if "generation" not in meta:
            raise ValueError(f"{meta_path}: no 'generation' spec (not built by the workflow)")
        if timbres is None:
            timbres = Path(path).resolve().parents[1] / "timbres" / "timbres.npz"
            if not timbres.exists():
                raise FileNotFoundError(f"{timbres}: no timbre library beside {meta_path};"
                                        " pass timbres= (the library the dataset was built with)")
        return cls(meta["generation"], meta["num_samples"], timbres, **kwargs)

    def __len__(self) -> int:
        return self.num_samples

    @property
    def shard_bounds(self) -> list[tuple[int, int]]:
        """One span: any batch is one generator call (``ShardBatchSampler`` shuffles it all)."""
        return [(0, self.num_samples)]

    def arrays(self, indices) -> ShardData:
        """Samples ``indices`` as NumPy arrays with their note table (targets as stored)."""
        data = generate_samples(self.spec, check_indices(indices, self.num_samples), self.timbres)
        if not self.round_targets:
            return data
        return data._replace(confs=_stored(data.confs), energies=_stored(data.energies))

    def get_batch(self, indices) -> dict[str, torch.Tensor]:
        """Same contract as ``DatasetReader.get_batch``: ``waveform`` [B, 1, window], targets
        [B, n_bins], float32, row k = sample ``indices[k]``."""
        data = self.arrays(indices)
        return {"waveform": torch.from_numpy(data.waveforms).unsqueeze(1),
                "target_confidence": torch.from_numpy(data.confs),
                "target_energy": torch.from_numpy(data.energies)}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -self.num_samples <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} samples")
        batch = self.get_batch([index % self.num_samples])
        return {"waveform": batch["waveform"][0], "target_confidence": batch["target_confidence"][0],
                "target_energy": batch["target_energy"][0]}
