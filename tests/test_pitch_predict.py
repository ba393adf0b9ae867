"""``notewise predict`` on generated WAV files with known notes.

The model is hand-wired (``spectral_peak_model``: a note at every strong spectral peak), so what
is tested is the command's own work: reading, mixing down, resampling, framing, batching, timing
and the CSV, with answers known in advance.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
from scipy.io import wavfile

from notewise.pitch import commands
from notewise.pitch.model import save_model
from notewise.pitch.predict import CSV_COLUMNS, frame, read_audio

from pitch_helpers import spectral_peak_model


def cents(a, b):
    return 1200 * np.log2(np.asarray(a) / b)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "peaks.pth"
    save_model(spectral_peak_model(), path)
    return path


def two_part_wav(path, rate: int, dtype) -> None:
    """0.0-0.5 s: 440 Hz in both channels; 0.5-1.0 s: 300 Hz left + 1250 Hz right."""
    t = np.arange(rate) / rate
    first = t < 0.5
    left = np.where(first, 0.5 * np.sin(2 * np.pi * 440 * t), 0.4 * np.sin(2 * np.pi * 300 * t))
    right = np.where(first, 0.5 * np.sin(2 * np.pi * 440 * t), 0.4 * np.sin(2 * np.pi * 1250 * t))
    stereo = np.stack([left, right], axis=1)
    if np.issubdtype(dtype, np.integer):
        stereo = np.round(stereo * np.iinfo(dtype).max)
    wavfile.write(path, rate, stereo.astype(dtype))


def run_cli(argv):
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.parametrize("rate, dtype", [(22050, np.int16), (48000, np.float32)])
def test_predict_finds_the_known_notes_at_the_right_times(tmp_path, checkpoint, rate, dtype):
    wav, out = tmp_path / "in.wav", tmp_path / "out.csv"
    two_part_wav(wav, rate, dtype)
    run_cli(["predict", str(wav), "--checkpoint", str(checkpoint), "-o", str(out),
             "--batch-size", "16"])
    assert out.read_text().splitlines()[0] == "time,f0_hz,confidence,energy_share"
    table = pd.read_csv(out)
    assert list(table.columns) == CSV_COLUMNS
    times = np.unique(table["time"])
    np.testing.assert_allclose(np.diff(times).min(), 0.01, atol=1e-9)  # the 10 ms grid
    assert table["time"].max() <= 1.0 + 1e-9
    first = table[(table["time"] > 0.1) & (table["time"] < 0.4)]
    second = table[(table["time"] > 0.6) & (table["time"] < 0.9)]
    assert first.groupby("time").size().eq(1).all()  # one note per window
    assert np.abs(cents(first["f0_hz"], 440.0)).max() < 20
    assert second.groupby("time").size().eq(2).all()  # the mix-down keeps both channels
    low, high = second[second["f0_hz"] < 700], second[second["f0_hz"] >= 700]
    assert np.abs(cents(low["f0_hz"], 300.0)).max() < 20
    assert np.abs(cents(high["f0_hz"], 1250.0)).max() < 20
    assert (second.groupby("time")["energy_share"].sum() <= 1.0 + 1e-5).all()
    assert table["confidence"].between(0.5, 1.0).all()


def test_read_audio_mixes_down_and_resamples(tmp_path):
    wav = tmp_path / "in.wav"
    two_part_wav(wav, 22050, np.int16)
    audio = read_audio(wav, 44100)
    assert audio.ndim == 1 and audio.dtype == np.float32
    assert len(audio) == 44100
    assert 0.45 < np.abs(audio[:20000]).max() < 0.55


def test_frames_are_centred_on_multiples_of_the_hop():
    audio = np.arange(10_000, dtype=np.float32)
    windows = frame(audio, 4096, 441)
    assert windows.shape == (10_000 // 441 + 1, 4096)
    assert windows[0, 2048].item() == 0.0 and windows[0, 2047].item() == 0.0  # zero padding
    assert windows[3, 2048].item() == 3 * 441  # the centre sample of window k is k * hop
