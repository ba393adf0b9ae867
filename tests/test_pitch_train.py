"""Training the pitch model through the shared harness on generated data."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

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


def test_changed_training_code_restarts_instead_of_resuming(tmp_path, data, monkeypatch):
    from notewise.pitch import stages as pitch_stages_module

    out = tmp_path / "model"
    train_pitch(tiny_settings(epochs=1), *data, out, progress=False)
    stamp = (out / "checkpoint" / "settings.sha").read_text()
    written = (out / "checkpoint" / "state.pth").stat().st_mtime_ns
    monkeypatch.setattr(pitch_stages_module, "code_hash", lambda stage: "edited")
    again = train_pitch(tiny_settings(epochs=1), *data, out, progress=False)
    assert [r["epoch"] for r in again] == [0]
    assert (out / "checkpoint" / "settings.sha").read_text() != stamp
    assert (out / "checkpoint" / "state.pth").stat().st_mtime_ns != written  # trained again


def test_a_dataset_rebuilt_in_place_restarts_instead_of_resuming(tmp_path):
    """Snakemake reruns training when a dataset is rebuilt; the finished checkpoint of the old
    data in the same output directory must not be published again as the new model."""
    from notewise.pitch.matrix import train_matrix_model

    out = tmp_path / "model"
    source = make_dataset(tmp_path / "set", num_samples=32, seed=1)
    first = train_matrix_model(tiny_settings(epochs=1), [source], 32, out)
    shutil.rmtree(source)
    make_dataset(tmp_path / "set", num_samples=32, seed=5)  # same directory, other windows
    again = train_matrix_model(tiny_settings(epochs=1), [source], 32, out)
    assert again[0]["train_loss"] != first[0]["train_loss"]


def test_a_decoding_or_evaluation_change_keeps_the_checkpoint(tmp_path, data):
    from notewise.pitch.train import settings_fingerprint

    settings = tiny_settings(epochs=1)
    other = {**settings, "decode": {**settings["decode"], "threshold": 0.45, "refine_cents": 0},
             "evaluate": {**settings["evaluate"], "batch_size": 7}}
    assert settings_fingerprint(other) == settings_fingerprint(settings)
    assert settings_fingerprint(other, windows=3) != settings_fingerprint(settings, windows=4)
    out = tmp_path / "model"
    first = train_pitch(settings, *data, out, progress=False)
    written = (out / "checkpoint" / "state.pth").stat().st_mtime_ns
    assert train_pitch(other, *data, out, progress=False) == first  # resumed: already done
    assert (out / "checkpoint" / "state.pth").stat().st_mtime_ns == written


def test_code_hash_per_stage_names_unknown_stages(monkeypatch):
    from notewise.pitch.stages import CODE, code_hash

    hashes = {stage: code_hash(stage) for stage in CODE}
    assert len(set(hashes.values())) == len(CODE)
    assert all(len(h) == 16 for h in hashes.values())
    monkeypatch.setitem(CODE, "plots", CODE["plots"] + ("pitch/decode.py",))
    assert code_hash("plots") != hashes["plots"]  # the hash follows the stage's source
    with pytest.raises(KeyError, match="'chirps'"):
        code_hash("chirps")


def test_sine_mix_replaces_windows_with_labelled_sines():
    import numpy as np

    from notewise.synth.bins import Bins
    from notewise.pitch.train import SineMix

    settings = tiny_settings()
    mix = SineMix(1.0, settings["bins"], 44100, 4096, 1.5)
    batch = {"waveform": torch.zeros(6, 1, 4096), "target_confidence": torch.zeros(6, 2048),
             "target_energy": torch.zeros(6, 2048)}
    torch.manual_seed(3)
    out = mix.apply(batch)
    assert batch["waveform"].abs().sum() == 0  # the input batch is left alone
    spectrum = np.abs(np.fft.rfft(out["waveform"][:, 0].numpy() * np.hanning(4096), n=1 << 17))
    peak_hz = spectrum.argmax(axis=1) * 44100 / (1 << 17)
    label_bin = out["target_confidence"].argmax(dim=1).numpy()
    np.testing.assert_allclose(label_bin, Bins().freq_to_bin(peak_hz), atol=1.0)
    peak = out["target_confidence"].max(dim=1).values  # a Gaussian's value half a bin off: 0.946
    assert ((peak >= np.exp(-0.25 / (2 * 1.5**2)) - 1e-6) & (peak <= 1.0)).all()
    assert torch.allclose(out["target_energy"].sum(dim=1), torch.ones(6), atol=1e-4)
    torch.manual_seed(3)
    assert torch.equal(mix.apply(batch)["waveform"], out["waveform"])  # reproducible
    assert SineMix(0.0, settings["bins"], 44100, 4096, 1.5).apply(batch) is batch


def test_training_reads_with_verify_by_default_and_names_a_damaged_shard(tmp_path):
    from notewise.store.layout import waveform_path
    from notewise.pitch.train import build_task

    root = make_dataset(tmp_path / "train", num_samples=32, seed=3, shard_size=16)
    path = waveform_path(root, 1)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x10  # one bit of one sample: the trusting reader returns it as data
    path.write_bytes(bytes(data))
    settings = tiny_settings()
    assert settings["train"]["verify"] is True
    with pytest.raises(ValueError, match=r"shard_00001\.npy: waveform bytes have CRC-32"):
        build_task(settings, root, None)
    build_task(tiny_settings(verify=False), root, None)
