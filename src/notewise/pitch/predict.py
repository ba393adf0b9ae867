"""``notewise predict AUDIO``: per-window notes of a WAV file as CSV.

The file is read with ``scipy.io.wavfile`` (any sample rate, any channel count, integer or float
samples), mixed down to mono, resampled to the model's rate with ``scipy.signal.resample_poly``
and cut into windows whose *centres* are ``0, hop, 2 * hop, ...`` samples (the signal is padded
with half a window of zeros at both ends), so ``time`` is ``k * hop / sample_rate`` and the
default hop of 441 samples gives the 10 ms grid of ``mir_eval.multipitch``. Windows are batched
through the model; decoding is vectorised.

CSV: ``time,f0_hz,confidence,energy_share``, one row per detected note per window.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.io import wavfile
from scipy.signal import resample_poly

from notewise.atomicio import atomic_write_csv

from .inference import Predictor

CSV_COLUMNS = ["time", "f0_hz", "confidence", "energy_share"]


def to_float(samples: np.ndarray) -> np.ndarray:
    """Integer PCM or float samples -> float32 in [-1, 1]."""
    if samples.dtype.kind == "f":
        return samples.astype(np.float32)
    if samples.dtype == np.uint8:
        return (samples.astype(np.float32) - 128.0) / 128.0
    return samples.astype(np.float32) / float(-np.iinfo(samples.dtype).min)


def read_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Mono float32 at ``sample_rate`` Hz."""
    rate, samples = wavfile.read(str(path))
    audio = to_float(samples)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if rate != sample_rate:
        g = math.gcd(int(rate), int(sample_rate))
        audio = resample_poly(audio, sample_rate // g, int(rate) // g).astype(np.float32)
    return audio


def frame(audio: np.ndarray, window: int, hop: int) -> torch.Tensor:
    """Centred windows ``[n, window]`` (a strided view, no copy of the frames)."""
    n = len(audio) // hop + 1
    half = window // 2
    padded = np.pad(audio, (half, window - half + hop))
    return torch.from_numpy(padded).unfold(0, window, hop)[:n]


def predict_audio(predictor: Predictor, audio: np.ndarray, hop: int) -> pd.DataFrame:
    cfg = predictor.model.cfg
    windows = frame(audio, cfg.window, hop)
    notes = predictor.notes(windows)
    order = np.lexsort((notes.f0_hz, notes.window))
    return pd.DataFrame({
        "time": notes.window[order] * hop / cfg.sample_rate,
        "f0_hz": notes.f0_hz[order],
        "confidence": notes.confidence[order],
        "energy_share": notes.energy_share[order],
    }, columns=CSV_COLUMNS)


def write_csv(table: pd.DataFrame, path) -> None:
    atomic_write_csv(table, path, float_format="%.6g")


def predict_file(audio_path: str | Path, checkpoint: str | Path, out, hop: int = 441,
                 threshold: float = 0.5, batch_size: int = 256, device: str | None = None
                 ) -> pd.DataFrame:
    """Predict ``audio_path`` and write the CSV to ``out`` (a path or a text stream)."""
    predictor = Predictor.load(checkpoint, threshold=threshold, batch_size=batch_size,
                               device=device)
    audio = read_audio(audio_path, predictor.model.cfg.sample_rate)
    table = predict_audio(predictor, audio, hop)
    write_csv(table, out)
    return table
