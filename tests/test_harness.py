"""The shared training harness: learning, exact resume, crash-safe checkpoints, DDP."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from notewise.training import (
    StepResult,
    TrainSettings,
    deterministic_metrics,
    fit,
    load_model_state,
    read_metrics,
)
from notewise.training import checkpoint
from notewise.training.harness import choose_precision, lr_factor

pytestmark = pytest.mark.timeout(120)


class RegressionTask:
    """y = x @ w_true + noise, batches a pure function of (epoch, rank, world_size)."""

    weight_unit = "samples"

    def __init__(self, n_batches: int = 8, batch: int = 16, uneven: bool = False):
        gen = torch.Generator().manual_seed(123)
        self.w_true = torch.randn(4, 1, generator=gen)
        self.n_batches, self.batch, self.uneven = n_batches, batch, uneven

    def _batches(self, epoch: int, rank: int, world_size: int, offset: int) -> list:
        gen = torch.Generator().manual_seed(1000 * offset + epoch)
        xs = [torch.randn(self.batch, 4, generator=gen) for _ in range(self.n_batches)]
        mine = xs[rank::world_size]
        if self.uneven and world_size > 1 and rank == world_size - 1:
            mine = mine[:-1]  # the last rank gets one batch fewer: exercises DDP Join
        return [(x, x @ self.w_true + 0.01 * torch.randn(len(x), 1, generator=gen)) for x in mine]

    def train_batches(self, epoch, rank, world_size):
        return self._batches(epoch, rank, world_size, 1)

    def val_batches(self, epoch, rank, world_size):
        return self._batches(0, rank, world_size, 2)

    def step(self, model, batch, device):
        x, y = (t.to(device) for t in batch)
        err = (model(x) - y) ** 2
        return StepResult(err.mean(), weight=len(x), sums={"sq_err": float(err.detach().sum())})

    def epoch_metrics(self, split, totals):
        return {"rmse": (totals["sq_err"] / totals["weight"]) ** 0.5}


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.1), nn.Linear(16, 1))


SETTINGS = dict(epochs=4, lr=0.05, warmup_steps=2, progress=False, seed=7)


class Interrupt(Exception):
    pass


def interrupt_after(epoch: int):
    def callback(history):
        if history[-1]["epoch"] == epoch:
            raise Interrupt

    return callback


def test_loss_falls_and_metrics_recorded(tmp_path):
    history = fit(tiny_model(), RegressionTask(), tmp_path, TrainSettings(**SETTINGS))
    assert [r["epoch"] for r in history] == [0, 1, 2, 3]
    assert history[-1]["train_loss"] < 0.2 * history[0]["train_loss"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    assert history[-1]["val_rmse"] == pytest.approx(history[-1]["val_loss"] ** 0.5, rel=1e-6)
    assert history[0]["train_batches"] == 8 and history[0]["train_samples_per_s"] > 0
    assert read_metrics(tmp_path) == history
    assert {p.name for p in tmp_path.iterdir()} == {
        "model.pth", "optimizer.pth", "state.pth", "metrics.json"}


def test_lr_schedule_warmup_then_cosine_to_zero():
    factors = [lr_factor(s, 10, 2, "cosine") for s in range(11)]
    assert factors[:2] == [0.5, 1.0]
    assert factors[2] == pytest.approx(1.0) and factors[10] == pytest.approx(0.0)
    assert all(a >= b for a, b in zip(factors[1:], factors[2:]))
    assert lr_factor(50, 10, 2, "constant") == 1.0


def test_kill_and_resume_gives_identical_metrics_and_weights(tmp_path):
    straight = fit(tiny_model(), RegressionTask(), tmp_path / "a", TrainSettings(**SETTINGS))
    with pytest.raises(Interrupt):
        fit(tiny_model(), RegressionTask(), tmp_path / "b", TrainSettings(**SETTINGS),
            on_epoch_end=interrupt_after(1))
    assert len(read_metrics(tmp_path / "b")) == 2
    # a fresh process would build a freshly initialised model: use different initial weights
    torch.manual_seed(99)
    resumed = fit(nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.1), nn.Linear(16, 1)),
                  RegressionTask(), tmp_path / "b", TrainSettings(**SETTINGS))
    assert deterministic_metrics(resumed) == deterministic_metrics(straight)
    assert read_metrics(tmp_path / "b") == resumed
    a, b = load_model_state(tmp_path / "a"), load_model_state(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_kill_during_checkpoint_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    real_write = checkpoint._fsync_write
    calls = {"n": 0}

    def dying_write(path: Path, data: bytes):
        # die while writing the third checkpoint's state.pth (model/optimizer already staged)
        if path.name == "state.pth":
            calls["n"] += 1
            if calls["n"] == 3:
                path.write_bytes(data[: len(data) // 2])
                raise KeyboardInterrupt("killed mid-write")
        real_write(path, data)

    monkeypatch.setattr(checkpoint, "_fsync_write", dying_write)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), RegressionTask(), tmp_path, TrainSettings(**SETTINGS))
    monkeypatch.setattr(checkpoint, "_fsync_write", real_write)
    assert (tmp_path / ".staging").is_dir()  # the half-written checkpoint is there ...
    assert [r["epoch"] for r in read_metrics(tmp_path)] == [0, 1]  # ... but not visible
    assert not (tmp_path / ".staging").exists()
    state = torch.load(tmp_path / "state.pth", weights_only=True)
    assert state["epoch"] == 1
    resumed = fit(tiny_model(), RegressionTask(), tmp_path, TrainSettings(**SETTINGS))
    straight = fit(tiny_model(), RegressionTask(), tmp_path / "ref", TrainSettings(**SETTINGS))
    assert deterministic_metrics(resumed) == deterministic_metrics(straight)


def test_committed_staging_is_rolled_forward(tmp_path):
    checkpoint.commit(tmp_path, {"a.txt": b"old", "b.txt": b"old"})
    staging = tmp_path / checkpoint.STAGING
    staging.mkdir()
    (staging / "a.txt").write_bytes(b"new")
    (staging / "b.txt").write_bytes(b"new")
    (staging / checkpoint.COMMITTED).write_bytes(b"")
    os.replace(staging / "a.txt", tmp_path / "a.txt")  # killed after publishing one file
    checkpoint.recover(tmp_path)
    assert (tmp_path / "a.txt").read_bytes() == (tmp_path / "b.txt").read_bytes() == b"new"
    assert not staging.exists()


@pytest.mark.parametrize("bf16_supported, dtype, scaler", [(True, torch.bfloat16, False),
                                                           (False, torch.float16, True)])
def test_amp_auto_picks_bf16_or_fp16_with_a_scaler_on_cuda(monkeypatch, bf16_supported, dtype,
                                                           scaler):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_supported)
    chosen = choose_precision("auto", torch.device("cuda", 0))
    assert (chosen.dtype, chosen.use_scaler) == (dtype, scaler)
    assert choose_precision("off", torch.device("cuda", 0)).dtype is None


def test_amp_auto_is_off_on_cpu_and_fp16_needs_cuda():
    cpu = torch.device("cpu")
    assert choose_precision("auto", cpu).dtype is None
    assert choose_precision("bf16", cpu).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="fp16 autocast needs a CUDA device"):
        choose_precision("fp16", cpu)


def test_checkpoint_has_no_module_prefix_and_loads_into_plain_model(tmp_path):
    fit(tiny_model(), RegressionTask(), tmp_path, TrainSettings(**{**SETTINGS, "epochs": 1}))
    state = torch.load(tmp_path / "model.pth", weights_only=True)
    assert not any(k.startswith("module.") for k in state)
    prefixed = {f"module.{k}": v for k, v in state.items()}
    torch.save(prefixed, tmp_path / "prefixed.pth")
    tiny_model().load_state_dict(load_model_state(tmp_path / "prefixed.pth"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank: int, world_size: int, port: int, ckpt_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    fit(tiny_model(), RegressionTask(n_batches=7, uneven=True), ckpt_dir,
        TrainSettings(**{**SETTINGS, "epochs": 2}))


def test_two_process_gloo_ddp_checkpoint_loads_in_single_process(tmp_path):
    ckpt = tmp_path / "ddp"
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(ckpt)), nprocs=2, join=True)
    history = read_metrics(ckpt)
    assert [r["epoch"] for r in history] == [0, 1]
    # 7 batches split 4 + 3, minus one on the last rank (uneven shards under Join)
    assert history[0]["train_batches"] == 6
    assert history[1]["train_loss"] < history[0]["train_loss"]
    state = torch.load(ckpt / "state.pth", weights_only=True)
    assert state["world_size"] == 2
    model = tiny_model()
    model.load_state_dict(load_model_state(ckpt / "model.pth"))
    # ... and a single process resumes the 2-process checkpoint
    resumed = fit(model, RegressionTask(n_batches=7), ckpt,
                  TrainSettings(**{**SETTINGS, "epochs": 3}))
    assert [r["epoch"] for r in resumed] == [0, 1, 2]
    assert resumed[2]["train_batches"] == 7
