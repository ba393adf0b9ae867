"""Training the pitch model with the shared harness (:mod:`notewise.training.harness`).

:class:`PitchTrainTask` is the harness task: batches come from the data pipeline's
``ShardBatchSampler`` (a pure function of seed, epoch, rank and world size, so resume is exact)
through ``BatchLoader``, which reads them with ``DatasetReader.get_batch`` in a background thread.
Every batch carries how long the loop waited for it and how long the previous step kept the loop
busy, so each epoch records the **share of step time spent waiting for data**
(``train_data_wait_share``; wall-clock, like ``seconds``).

:func:`train_pitch` is what ``notewise train-pitch`` runs: it builds the model from the settings,
trains into ``<out>/checkpoint/`` (resumable; wiped when the settings change) and publishes
``<out>/model.pth``, ``<out>/metrics.json`` and ``<out>/model_config.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol

import numpy as np
import torch

from notewise.atomicio import atomic_copy
from notewise.training import StepResult, TrainSettings, fit

from .loss import pitch_loss
from .model import CONFIG_FILE, PitchModel
from .settings import model_config

log = logging.getLogger(__name__)

#: Metric keys that are wall-clock measurements (not reproducible across runs).
WALL_CLOCK_METRICS = ("train_data_wait_share", "val_data_wait_share")


class BatchSource(Protocol):
    """What the task reads: ``DatasetReader``'s batch path, or anything shaped like it."""

    def __len__(self) -> int: ...

    def get_batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]: ...


class ArraySource:
    """In-memory arrays behind the same batch path (tests, small experiments)."""

    def __init__(self, waveforms: np.ndarray, confs: np.ndarray, energies: np.ndarray):
        self.waveforms = torch.as_tensor(np.asarray(waveforms, np.float32))
        self.confs = torch.as_tensor(np.asarray(confs, np.float32))
        self.energies = torch.as_tensor(np.asarray(energies, np.float32))

    def __len__(self) -> int:
        return len(self.waveforms)

    def get_batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        return {"waveform": self.waveforms[index].unsqueeze(1),
                "target_confidence": self.confs[index],
                "target_energy": self.energies[index]}


@dataclass
class TimedBatch:
    data: dict[str, torch.Tensor]
    wait_s: float  # the loop waited this long for this batch
    busy_s: float  # the loop was busy this long with the previous batch (0 for the first)


class TimedBatches:
    """Wraps an iterable of batches; each comes out as a :class:`TimedBatch`."""

    def __init__(self, batches: Iterable[dict[str, torch.Tensor]]):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[TimedBatch]:
        batches = iter(self.batches)
        handed_out = None  # when the previous batch went to the loop
        while True:
            asked = time.perf_counter()
            busy = asked - handed_out if handed_out is not None else 0.0
            try:
                data = next(batches)
            except StopIteration:
                return
            handed_out = time.perf_counter()
            yield TimedBatch(data, handed_out - asked, busy)


def loader(source: BatchSource, batch_size: int, epoch: int, rank: int, world_size: int,
           shuffle: bool, seed: int, prefetch: int = 2) -> TimedBatches:
    """This rank's batches for ``epoch`` through the data pipeline's sampler and loader
    (shard-local sorted batches, read ``prefetch`` ahead in a background thread)."""
    from notewise.loading.batches import BatchLoader, ShardBatchSampler

    bounds = source if hasattr(source, "shard_bounds") else len(source)
    sampler = ShardBatchSampler(bounds, batch_size, shuffle=shuffle, seed=seed, rank=rank,
                                world_size=world_size)
    sampler.set_epoch(epoch)
    return TimedBatches(BatchLoader(source, sampler, prefetch=prefetch))


def add_noise(waveform: torch.Tensor, prob: float, snr_db: tuple[float, float]) -> torch.Tensor:
    """White noise on a random ``prob`` share of windows at a random SNR (uniform in dB).

    Uses torch's global generator, which the harness reseeds every epoch (reproducible).
    """
    if prob <= 0:
        return waveform
    batch = waveform.shape[0]
    shape = (batch,) + (1,) * (waveform.dim() - 1)
    chosen = (torch.rand(shape, device=waveform.device) < prob).to(waveform.dtype)
    low, high = snr_db
    snr = low + (high - low) * torch.rand(shape, device=waveform.device)
    rms = waveform.pow(2).mean(dim=tuple(range(1, waveform.dim())), keepdim=True).sqrt()
    scale = chosen * rms * torch.pow(10.0, -snr / 20.0)
    return waveform + scale * torch.randn_like(waveform)


@dataclass(frozen=True)
class SineMix:
    """Replaces a random ``prob`` share of training windows by a steady pure sine (log-uniform
    frequency over the bin range, random phase and level), labelled by the data pipeline's own
    label writer as a note sounding through the window (confidence 1.0, all the energy).

    The polyphonic sets draw from 100 timbres, one of them the pure sine, so without this the
    model rarely sees a lone partial and hedges on it (it could be the 2nd harmonic of a tone
    with a missing fundamental); the single-note and window-position evaluations are sines.
    Uses torch's global generator, which the harness reseeds every epoch (reproducible).
    """

    prob: float
    bins: dict
    sample_rate: int
    window: int
    sigma: float

    def targets(self, freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from notewise.synth.bins import Bins
        from notewise.synth.labels import write_targets

        centres = Bins.from_dict(self.bins).freq_to_bin(freqs).astype(np.float64)
        confs = np.zeros((len(freqs), self.bins["n_bins"]), np.float32)
        energies = np.zeros_like(confs)
        one = np.ones(1)
        for row, centre in enumerate(centres):
            write_targets(confs[row], energies[row], 1, centre[None], one, one,
                          np.ones(1, np.bool_), 1.0, self.sigma)
        return confs, energies

    def apply(self, data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.prob <= 0:
            return data
        chosen = torch.nonzero(torch.rand(len(data["waveform"])) < self.prob).flatten()
        if not len(chosen):
            return data
        draws = torch.rand(len(chosen), 3, dtype=torch.float64)
        f_min, f_max = self.bins["f_min"], self.bins["f_max"]
        freqs = f_min * (f_max / f_min) ** draws[:, 0]
        t = torch.arange(self.window, dtype=torch.float64) / self.sample_rate
        waves = (0.1 + 0.9 * draws[:, 2:3]) * torch.sin(
            2 * torch.pi * freqs[:, None] * t + 2 * torch.pi * draws[:, 1:2])
        confs, energies = self.targets(freqs.numpy())
        out = {key: value.clone() for key, value in data.items()}  # never write into a dataset
        for key, rows in (("waveform", waves.unsqueeze(1)),
                          ("target_confidence", torch.from_numpy(confs)),
                          ("target_energy", torch.from_numpy(energies))):
            target = out[key]
            target[chosen.to(target.device)] = rows.to(target.device, target.dtype)
        return out


class PitchTrainTask:
    """The harness task for the pitch model."""

    weight_unit = "samples"

    def __init__(self, train: BatchSource, val: BatchSource | None, batch_size: int,
                 seed: int = 0, energy_weight: float = 1.0, noise_prob: float = 0.0,
                 noise_snr_db: tuple[float, float] = (20.0, 50.0), prefetch: int = 2,
                 sines: SineMix | None = None):
        self.train, self.val, self.prefetch, self.sines = train, val, prefetch, sines
        self.batch_size, self.seed = batch_size, seed
        self.energy_weight = energy_weight
        self.noise_prob, self.noise_snr_db = noise_prob, tuple(noise_snr_db)

    def train_batches(self, epoch: int, rank: int, world_size: int) -> TimedBatches:
        return loader(self.train, self.batch_size, epoch, rank, world_size, True, self.seed,
                      self.prefetch)

    def val_batches(self, epoch: int, rank: int, world_size: int) -> TimedBatches | None:
        if self.val is None:
            return None
        return loader(self.val, self.batch_size, 0, rank, world_size, False, self.seed,
                      self.prefetch)

    def step(self, model: torch.nn.Module, batch: TimedBatch, device: torch.device) -> StepResult:
        data = batch.data
        if model.training and self.sines is not None:
            data = self.sines.apply(data)
        data = {k: v.to(device, non_blocking=True) for k, v in data.items()}
        waveform = data["waveform"]
        if model.training:
            waveform = add_noise(waveform, self.noise_prob, self.noise_snr_db)
        conf_logits, energy_logits = model(waveform)
        parts = pitch_loss(conf_logits, energy_logits, data["target_confidence"],
                           data["target_energy"], self.energy_weight)
        n, voiced = len(waveform), float(parts.voiced)
        return StepResult(parts.total, weight=n, sums={
            "confidence_sum": float(parts.confidence.detach()) * n,
            "energy_sum": float(parts.energy.detach()) * voiced,
            "voiced": voiced,
            "wait_s": batch.wait_s,
            "busy_s": batch.busy_s,
        })

    def epoch_metrics(self, split: str, totals: dict[str, float]) -> dict[str, float]:
        busy_and_wait = totals["wait_s"] + totals["busy_s"]
        return {
            "confidence_bce": totals["confidence_sum"] / max(totals["weight"], 1.0),
            "energy_kl": totals["energy_sum"] / max(totals["voiced"], 1.0),
            "data_wait_share": totals["wait_s"] / busy_and_wait if busy_and_wait else 0.0,
        }


# --------------------------------------------------------------------------- the command


def open_dataset(path: str | Path, preload: bool, device: str | None = None,
                 verify: bool = False) -> BatchSource:
    """A dataset directory's batch reader (``DatasetReader``; ``verify``: check each shard's
    checksums the first time it is read)."""
    from notewise.loading.reader import DatasetReader

    return DatasetReader(Path(path), preload=preload, device=device, verify=verify)


def dataset_identity(path: str | Path) -> list:
    """What a checkpoint depends on in a dataset: the checksums of its shards (``meta.json``;
    without one, the shard files' names and sizes), so that a dataset rebuilt in the same
    directory restarts training instead of resuming a model of the old data."""
    path = Path(path)
    meta = path / "meta.json"
    if meta.exists():
        shards = json.loads(meta.read_text())["shards"]
        return [[shard["targets_sha256"], shard["waveforms_sha256"]] for shard in shards]
    return sorted([str(f.relative_to(path)), f.stat().st_size]
                  for f in path.rglob("*") if f.suffix in (".npy", ".npz"))


def settings_fingerprint(settings: dict, **inputs) -> str:
    """What the checkpoint depends on (the training settings, ``inputs`` such as the datasets,
    and the training code); a change restarts training from scratch."""
    from .settings import training_settings
    from .stages import code_hash

    text = json.dumps({"settings": training_settings(settings), "inputs": inputs,
                       "code": code_hash("train")}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _prepare_checkpoint(ckpt_dir: Path, fingerprint: str) -> None:
    """Keep a resumable checkpoint only if it was made with the same settings."""
    stamp = ckpt_dir / "settings.sha"
    if ckpt_dir.exists() and (not stamp.exists() or stamp.read_text() != fingerprint):
        log.info("settings changed: discarding the checkpoint in %s", ckpt_dir)
        shutil.rmtree(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint)


def harness_settings(train: dict, progress: bool = True) -> TrainSettings:
    return TrainSettings(epochs=train["epochs"], lr=train["lr"],
                         weight_decay=train["weight_decay"], warmup_steps=train["warmup_steps"],
                         amp=train["amp"], seed=train["seed"], device=train["device"],
                         progress=progress)


def build_task(settings: dict, train_dir: str | Path, val_dir: str | Path | None,
               device: str | None = None) -> PitchTrainTask:
    train = settings["train"]
    preload_device = device if train["preload"] and device and device.startswith("cuda") else None

    def dataset(path):
        return open_dataset(path, train["preload"], preload_device, train["verify"])

    return task_for(settings, dataset(train_dir), dataset(val_dir) if val_dir else None)


def task_for(settings: dict, train_source, val_source) -> PitchTrainTask:
    """The training recipe (batches, augmentation, sine mix, loss weights) over given sources."""
    train = settings["train"]
    return PitchTrainTask(
        train_source, val_source,
        batch_size=train["batch_size"], seed=train["seed"],
        energy_weight=train["energy_weight"], noise_prob=train["noise_prob"],
        noise_snr_db=tuple(train["noise_snr_db"]),
        sines=SineMix(train["sine_prob"], settings["bins"], settings["audio"]["sample_rate"],
                      settings["audio"]["window"], settings["labels"]["sigma_bins"]))


def train_pitch(settings: dict, train_dir: str | Path, val_dir: str | Path | None,
                out_dir: str | Path, progress: bool = True,
                on_epoch_end: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """Train (or resume) and publish ``model.pth``, ``metrics.json``, ``model_config.json``.

    ``on_epoch_end(history)`` runs on rank 0 after each epoch's checkpoint (the harness hook).
    """
    datasets = [dataset_identity(d) for d in (train_dir, val_dir) if d]
    return fit_and_publish(
        settings, out_dir, settings_fingerprint(settings, datasets=datasets),
        lambda: build_task(settings, train_dir, val_dir, settings["train"]["device"]),
        progress, on_epoch_end)


def fit_and_publish(settings: dict, out_dir: str | Path, fingerprint: str,
                    make_task: Callable[[], PitchTrainTask], progress: bool = True,
                    on_epoch_end: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """Train a ``PitchModel`` of ``settings`` on ``make_task()`` in ``out_dir/checkpoint``
    (resumed when its fingerprint matches, started over otherwise), then publish ``model.pth``,
    ``metrics.json`` and ``model_config.json`` into ``out_dir`` (rank 0 only, atomically)."""
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoint"
    cfg = model_config(settings)
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0:
        _prepare_checkpoint(ckpt_dir, fingerprint)
        (ckpt_dir / CONFIG_FILE).write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    torch.manual_seed(settings["train"]["seed"])
    model = PitchModel(cfg)
    history = fit(model, make_task(), ckpt_dir, harness_settings(settings["train"], progress),
                  on_epoch_end)
    if rank == 0:
        for name in ("model.pth", "metrics.json", CONFIG_FILE):
            atomic_copy(ckpt_dir / name, out_dir / name)
    return history
