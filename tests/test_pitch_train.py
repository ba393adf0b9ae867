"""Training the pitch model through the shared harness on generated data."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from notewise.pitch.model import load_model
from notewise.pitch.train import WALL_CLOCK_METRICS, train_pitch
from notewise.training import deterministic_metrics

from pitch_helpers import make_dataset, tiny_settings

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("pitch_data")
    return (make_dataset(root / "train", num_samples=64, seed=1, shard_size=32),
            make_dataset(root / "val", num_samples=16, seed=2))


def reproducible(history):
    return [{k: v for k, v in rec.items() if k not in WALL_CLOCK_METRICS}
            for rec in deterministic_metrics(history)]


class Interrupt(Exception):
    pass


def test_tiny_training_loss_falls_and_publishes_the_model(tmp_path, data):
    out = tmp_path / "model"
    history = train_pitch(tiny_settings(epochs=3), *data, out, progress=False)
    losses = [r["train_loss"] for r in history]
    assert losses[-1] < losses[0]
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    for key in ("train_confidence_bce", "train_energy_kl", "val_energy_kl", "lr",
                "train_samples_per_s"):
        assert key in history[0]
    assert 0.0 <= history[0]["train_data_wait_share"] < 1.0
    assert json.loads((out / "metrics.json").read_text()) == history
    model = load_model(out / "model.pth")
    conf, energy = model(torch.zeros(2, 1, 4096))
    assert conf.shape == (2, 2048) and torch.isfinite(energy).all()


def test_resume_after_an_interruption_gives_the_same_metrics(tmp_path, data):
    settings = tiny_settings(epochs=3)
    straight = train_pitch(settings, *data, tmp_path / "straight", progress=False)

    def stop_after_epoch_1(history):
        if history[-1]["epoch"] == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_pitch(settings, *data, tmp_path / "resumed", progress=False,
                    on_epoch_end=stop_after_epoch_1)
    resumed = train_pitch(settings, *data, tmp_path / "resumed", progress=False)
    assert reproducible(resumed) == reproducible(straight)
    a = torch.load(tmp_path / "straight" / "model.pth", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "model.pth", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_changed_settings_restart_instead_of_resuming(tmp_path, data):
    out = tmp_path / "model"
    first = train_pitch(tiny_settings(epochs=1), *data, out, progress=False)
    second = train_pitch(tiny_settings(epochs=1, lr=0.005), *data, out, progress=False)
    assert [r["epoch"] for r in second] == [0]  # trained again, not "already done"
    assert second[0]["train_loss"] != first[0]["train_loss"]
    state = torch.load(out / "checkpoint" / "state.pth", weights_only=True)
    assert state["settings"]["lr"] == 0.005


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank, world_size, port, settings, train_dir, val_dir, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    train_pitch(settings, train_dir, val_dir, out, progress=False)


def test_two_process_gloo_ddp_checkpoint_loads_in_a_single_process(tmp_path, data):
    out = tmp_path / "ddp"
    settings = tiny_settings(epochs=1, device="cpu")
    mp.spawn(_ddp_worker, args=(2, _free_port(), settings, str(data[0]), str(data[1]), str(out)),
             nprocs=2, join=True)
    history = json.loads((out / "metrics.json").read_text())
    assert history[0]["train_batches"] == 4  # 64 samples / (16 per batch) over both ranks
    state = torch.load(out / "model.pth", weights_only=True)
    assert not any(k.startswith("module.") for k in state)
    model = load_model(out / "model.pth")
    assert torch.isfinite(model(torch.randn(1, 1, 4096))[0]).all()
    # and a single process resumes the two-process checkpoint
    resumed = train_pitch(tiny_settings(epochs=1, device="cpu"), *data, out, progress=False)
    assert [r["epoch"] for r in resumed] == [0]
