"""One training loop for every notewise model (the pitch model and the MIDI language model).

A model plugs in through a small *task* object; the harness owns everything else: epochs, AdamW,
the LR schedule, mixed precision, DDP, progress bars, ``metrics.json`` and checkpoints, resume.

API
---
.. code-block:: python

    from notewise.training import TrainSettings, StepResult, fit, load_model_state

    @dataclass
    class TrainSettings:
        epochs: int                      # total epochs (a resumed run continues up to this)
        lr: float = 1e-3                 # peak AdamW learning rate
        weight_decay: float = 0.01       # AdamW weight decay
        warmup_steps: int = 0            # linear warm-up from 0 over this many optimizer steps
        schedule: str = "cosine"         # "cosine" (to 0 at the last step) or "constant"
        grad_clip: float | None = 1.0    # max global grad norm, None = no clipping
        amp: str = "auto"                # "auto" | "bf16" | "fp16" | "off" (see below)
        seed: int = 0
        progress: bool = True            # tqdm bars (only rank 0, only on a TTY)
        device: str | None = None        # None: cuda:LOCAL_RANK if available, else cpu

    @dataclass
    class StepResult:
        loss: torch.Tensor               # scalar, the MEAN loss of the batch (what backward uses)
        weight: float = 1.0              # how many items the mean is over (tokens, samples)
        sums: dict[str, float] = {}      # extra additive metrics, summed over the epoch and ranks

    class TrainTask(Protocol):
        weight_unit: str                 # optional, default "samples"; names the throughput key
        def train_batches(self, epoch: int, rank: int, world_size: int) -> Iterable[Any]: ...
        def val_batches(self, epoch: int, rank: int, world_size: int) -> Iterable[Any] | None: ...
        def step(self, model: nn.Module, batch: Any, device: torch.device) -> StepResult: ...
        def epoch_metrics(self, split: str, totals: dict[str, float]) -> dict[str, float]: ...
                                         # optional; totals has "loss" (weighted mean), "weight",
                                         # "batches" and every key of StepResult.sums

    history = fit(model, task, ckpt_dir, settings, on_epoch_end=None)   # -> list[dict]
    state_dict = load_model_state(ckpt_dir / "model.pth")               # no "module." prefix

Contract details
----------------
* ``train_batches``/``val_batches`` must be a pure function of (epoch, rank, world_size) (with the
  task's own seed) so that resume is exact. Each rank gets its own shard; ranks may get different
  batch counts (the loop runs under DDP's ``Join``). ``val_batches`` may return ``None`` or an
  empty iterable: then no ``val_*`` keys are written. ``len(train_batches(0, ...))`` sizes the
  cosine schedule; if the iterable has no ``len`` it is iterated once to count.
* ``step`` runs inside the autocast context, with the model in train mode (grad enabled) or eval
  mode (``torch.no_grad``). In training, ``model`` is the DDP wrapper when distributed; in
  validation always the plain module. Move the batch to ``device`` inside ``step``.
* Per epoch, one record is appended to ``metrics.json`` (a JSON list)::

    {"epoch": 0, "train_loss": ..., "val_loss": ..., "<split>_<task metric>": ...,
     "lr": <lr at the end of the epoch>, "seconds": ..., "train_<weight_unit>_per_s": ...,
     "train_batches": ..., "val_batches": ...}

  ``seconds`` and ``*_per_s`` are wall-clock figures; every other value is deterministic on CPU
  for a fixed seed, whether or not the run was interrupted and resumed.
* Checkpoint directory after each epoch (written by rank 0, journalled so that a kill at any
  moment leaves the previous complete checkpoint, see :mod:`notewise.training.checkpoint`):
  ``model.pth`` (plain ``state_dict``, no ``module.`` prefix, fp32), ``optimizer.pth``,
  ``metrics.json``, ``state.pth`` (epoch, scheduler, GradScaler, RNG states, settings).
  ``fit`` on a directory holding a checkpoint resumes after its last epoch; a checkpoint written by
  N processes resumes with M processes.
* Randomness: every epoch reseeds python/numpy/torch from (seed, epoch, rank), which makes an
  epoch independent of what ran before it (exact resume, per-rank dropout streams).
* Mixed precision ``amp="auto"``: bf16 autocast on CUDA devices that support it, else fp16 with a
  GradScaler; off on CPU. ``"bf16"`` on CPU uses CPU autocast.
* DDP: launch with ``torchrun --nproc-per-node N ...``; the harness joins the group from the env
  (gloo on CPU, nccl on CUDA) unless the caller already did. Metrics are reduced over ranks.
* ``on_epoch_end(history)`` is called on rank 0 after each checkpoint (e.g. to draw a plot).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

import numpy as np
import torch
from torch import nn
from torch.distributed.algorithms.join import Join
from tqdm import tqdm

from . import checkpoint, distributed
from .distributed import DistContext

log = logging.getLogger(__name__)

MODEL_FILE = "model.pth"
OPTIMIZER_FILE = "optimizer.pth"
STATE_FILE = "state.pth"
METRICS_FILE = "metrics.json"
WALL_CLOCK_KEYS = ("seconds",)  # plus every key ending in "_per_s"


@dataclass
class TrainSettings:
    epochs: int
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 0
    schedule: str = "cosine"
    grad_clip: float | None = 1.0
    amp: str = "auto"
    seed: int = 0
    progress: bool = True
    device: str | None = None

    def __post_init__(self) -> None:
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', not {self.schedule!r}")
        if self.amp not in ("auto", "bf16", "fp16", "off"):
            raise ValueError(f"amp must be auto/bf16/fp16/off, not {self.amp!r}")
        if self.epochs < 0:
            raise ValueError("epochs must be >= 0")


@dataclass
class StepResult:
    loss: torch.Tensor
    weight: float = 1.0
    sums: dict[str, float] = field(default_factory=dict)


class TrainTask(Protocol):
    def train_batches(self, epoch: int, rank: int, world_size: int) -> Iterable[Any]: ...

    def val_batches(self, epoch: int, rank: int, world_size: int) -> Iterable[Any] | None: ...

    def step(self, model: nn.Module, batch: Any, device: torch.device) -> StepResult: ...


# --------------------------------------------------------------------------- public helpers


def strip_prefixes(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Drop DDP's ``module.`` and ``torch.compile``'s ``_orig_mod.`` key prefixes."""
    out = {}
    for key, value in state_dict.items():
        for prefix in ("module.", "_orig_mod."):
            while key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def load_model_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """A model ``state_dict`` from ``model.pth`` (or a checkpoint dir), prefix-free."""
    path = Path(path)
    if path.is_dir():
        checkpoint.recover(path)
        path = path / MODEL_FILE
    return strip_prefixes(torch.load(path, map_location=map_location, weights_only=True))


def read_metrics(ckpt_dir: str | Path) -> list[dict]:
    """The ``metrics.json`` history of a checkpoint directory ([] when there is none)."""
    import json

    ckpt_dir = Path(ckpt_dir)
    checkpoint.recover(ckpt_dir)
    path = ckpt_dir / METRICS_FILE
    return json.loads(path.read_text()) if path.exists() else []


def deterministic_metrics(history: list[dict]) -> list[dict]:
    """``history`` without wall-clock keys (what must match across interrupted runs)."""
    return [
        {k: v for k, v in rec.items() if k not in WALL_CLOCK_KEYS and not k.endswith("_per_s")}
        for rec in history
    ]


# --------------------------------------------------------------------------- precision


@dataclass(frozen=True)
class Precision:
    dtype: torch.dtype | None  # None = autocast off
    use_scaler: bool

    def autocast(self, device: torch.device):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.dtype)


def choose_precision(amp: str, device: torch.device) -> Precision:
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return Precision(None, False)
    if amp == "bf16" or (amp == "auto" and torch.cuda.is_bf16_supported()):
        return Precision(torch.bfloat16, False)
    if device.type != "cuda":
        raise ValueError("fp16 autocast needs a CUDA device")
    return Precision(torch.float16, True)


# --------------------------------------------------------------------------- randomness


def seed_everything(seed: int, epoch: int, rank: int) -> None:
    """Seed python, numpy and torch from (seed, epoch, rank)."""
    mixed = int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1, np.uint64)[0])
    random.seed(mixed)
    np.random.seed(mixed % 2**32)
    torch.manual_seed(mixed % 2**63)


def rng_state() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32),
                         np_state["pos"], np_state["has_gauss"], np_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------- schedule


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Multiplier of the peak LR at optimizer step ``step`` (0-based)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def count_batches(batches: Iterable[Any]) -> int:
    try:
        return len(batches)  # type: ignore[arg-type]
    except TypeError:
        return sum(1 for _ in batches)


# --------------------------------------------------------------------------- the loop


class _Trainer:
    """State of one ``fit`` call; methods are the loop's phases."""

    def __init__(self, model: nn.Module, task: TrainTask, ckpt_dir: Path,
                 settings: TrainSettings, ctx: DistContext):
        self.task, self.ckpt_dir, self.settings, self.ctx = task, ckpt_dir, settings, ctx
        self.device = ctx.device
        self.model = model.to(self.device)
        self.precision = choose_precision(settings.amp, self.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=settings.lr,
                                           weight_decay=settings.weight_decay)
        self.total_steps = settings.epochs * distributed.max_int(
            ctx, count_batches(task.train_batches(0, ctx.rank, ctx.world_size)))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision.use_scaler)
        self.history: list[dict] = []
        self.wrapped = self._wrap(self.model)
        self.weight_unit = getattr(task, "weight_unit", "samples")

    def _lr_factor(self, step: int) -> float:
        s = self.settings
        return lr_factor(step, self.total_steps, s.warmup_steps, s.schedule)

    def _wrap(self, model: nn.Module) -> nn.Module:
        if not self.ctx.is_distributed:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    # ---- checkpoints

    def resume(self) -> int:
        """Load the last complete checkpoint if there is one; return the first epoch to run."""
        if self.ctx.is_main:
            checkpoint.recover(self.ckpt_dir)
        distributed.barrier(self.ctx)
        state_path = self.ckpt_dir / STATE_FILE
        if not state_path.exists():
            return 0
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(load_model_state(self.ckpt_dir / MODEL_FILE, self.device))
        self.optimizer.load_state_dict(
            torch.load(self.ckpt_dir / OPTIMIZER_FILE, map_location=self.device, weights_only=True))
        self.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.history = read_metrics(self.ckpt_dir)[: state["epoch"] + 1]
        if self.ctx.is_main:
            log.info("resuming %s after epoch %d", self.ckpt_dir, state["epoch"])
        return state["epoch"] + 1

    def save(self, epoch: int) -> None:
        if self.ctx.is_main:
            model_state = {k: v.detach().float() if v.is_floating_point() else v
                           for k, v in strip_prefixes(self.model.state_dict()).items()}
            state = {"epoch": epoch, "scheduler": self.scheduler.state_dict(),
                     "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
                     "rng": rng_state(), "settings": asdict(self.settings),
                     "world_size": self.ctx.world_size}
            checkpoint.commit(self.ckpt_dir, {
                MODEL_FILE: lambda: checkpoint.torch_bytes(model_state),
                OPTIMIZER_FILE: lambda: checkpoint.torch_bytes(self.optimizer.state_dict()),
                STATE_FILE: lambda: checkpoint.torch_bytes(state),
                METRICS_FILE: checkpoint.json_bytes(self.history),
            })
        distributed.barrier(self.ctx)

    # ---- epochs

    def _bar(self, batches: Iterable[Any], desc: str):
        enabled = self.settings.progress and self.ctx.is_main and sys.stderr.isatty()
        total = len(batches) if hasattr(batches, "__len__") else None
        return tqdm(batches, desc=desc, total=total, disable=not enabled, leave=False,
                    dynamic_ncols=True)

    def _optimizer_step(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()
        if self.settings.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()

    def _run_split(self, split: str, epoch: int, batches: Iterable[Any]) -> dict[str, float]:
        """One pass over ``batches``; returns this rank's raw totals."""
        training = split == "train"
        model = self.wrapped if training else self.model
        model.train(training)
        totals: dict[str, float] = {"loss_sum": 0.0, "weight": 0.0, "batches": 0.0}
        loss_acc = torch.zeros((), device=self.device, dtype=torch.float64)
        uneven = training and self.ctx.is_distributed  # ranks may hold different batch counts
        join = Join([self.wrapped]) if uneven else contextlib.nullcontext()
        grad = contextlib.nullcontext() if training else torch.no_grad()
        bar = self._bar(batches, f"epoch {epoch} {split}")
        with join, grad:
            for batch in bar:
                with self.precision.autocast(self.device):
                    result = self.task.step(model, batch, self.device)
                if training:
                    self._optimizer_step(result.loss)
                loss_acc += result.loss.detach().double() * result.weight
                totals["weight"] += float(result.weight)
                totals["batches"] += 1
                for key, value in result.sums.items():
                    totals[key] = totals.get(key, 0.0) + float(value)
                if totals["batches"] % 10 == 1:
                    bar.set_postfix(loss=f"{loss_acc.item() / max(totals['weight'], 1e-12):.4f}")
        totals["loss_sum"] = float(loss_acc.item())
        return totals

    def _reduce(self, split: str, totals: dict[str, float]) -> dict[str, float]:
        """Sum totals over ranks and turn them into ``<split>_*`` metrics."""
        summed: dict[str, float] = {}
        for part in distributed.gather_objects(self.ctx, totals):
            for key, value in part.items():
                summed[key] = summed.get(key, 0.0) + value
        summed["loss"] = summed.pop("loss_sum") / summed["weight"] if summed["weight"] else math.nan
        extra = self.task.epoch_metrics(split, dict(summed)) if hasattr(
            self.task, "epoch_metrics") else {}
        out = {f"{split}_loss": summed["loss"], f"{split}_batches": int(summed["batches"])}
        out.update({f"{split}_{k}": v for k, v in extra.items()})
        return out

    def run_epoch(self, epoch: int) -> dict:
        seed_everything(self.settings.seed, epoch, self.ctx.rank)
        start = time.perf_counter()
        rank, ws = self.ctx.rank, self.ctx.world_size
        train_totals = self._run_split("train", epoch, self.task.train_batches(epoch, rank, ws))
        train_seconds = time.perf_counter() - start
        record: dict[str, Any] = {"epoch": epoch}
        record.update(self._reduce("train", train_totals))
        val = self.task.val_batches(epoch, rank, ws)
        if val is not None:
            val_totals = self._run_split("val", epoch, val)
            if distributed.max_int(self.ctx, int(val_totals["batches"])) > 0:
                record.update(self._reduce("val", val_totals))
        record["lr"] = self.optimizer.param_groups[0]["lr"]
        record["seconds"] = time.perf_counter() - start
        weight = sum(p["weight"] for p in distributed.gather_objects(self.ctx, train_totals))
        record[f"train_{self.weight_unit}_per_s"] = weight / max(train_seconds, 1e-9)
        return record


def fit(model: nn.Module, task: TrainTask, ckpt_dir: str | Path, settings: TrainSettings,
        on_epoch_end: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """Train ``model`` for ``settings.epochs`` epochs, resuming from ``ckpt_dir`` if possible.

    Returns the full metrics history (resumed epochs included).
    """
    ctx = distributed.setup(settings.device)
    try:
        trainer = _Trainer(model, task, Path(ckpt_dir), settings, ctx)
        first = trainer.resume()
        for epoch in range(first, settings.epochs):
            trainer.history.append(trainer.run_epoch(epoch))
            trainer.save(epoch)
            if ctx.is_main:
                log.info("epoch %d: %s", epoch, _format(trainer.history[-1]))
                if on_epoch_end is not None:
                    on_epoch_end(list(trainer.history))
            if ctx.device.type == "cuda":
                torch.cuda.empty_cache()
        return trainer.history
    finally:
        distributed.teardown(ctx)


def _format(record: dict) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in record.items())
