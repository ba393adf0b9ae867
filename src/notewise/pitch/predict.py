"""``notewise predict AUDIO``: per-window notes of a WAV file as CSV.

The file is read with ``soundfile`` (every format libsndfile reads: WAV, FLAC, OGG, MP3, ...; any
sample rate and channel count; an unreadable file is named in the error, and a file with
non-finite samples is refused, or repaired with ``nonfinite="zero"``), mixed down to mono, resampled to the model's rate with ``scipy.signal.resample_poly``
and cut into windows whose *centres* are ``0, hop, 2 * hop, ...`` samples (the signal is padded
with half a window of zeros at both ends), so ``time`` is ``k * hop / sample_rate`` and the
default hop of 441 samples gives the 10 ms grid of ``mir_eval.multipitch``. Windows are batched
through the model; decoding is vectorised.

CSV: ``time,f0_hz,confidence,energy_share``, one row per detected note per window.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile
import torch
from scipy.signal import resample_poly

from notewise.atomicio import atomic_write_csv

from .inference import Predictor, default_threshold

CSV_COLUMNS = ["time", "f0_hz", "confidence", "energy_share"]
#: What to do with NaN or infinite samples: refuse the file, or set them to zero (with a warning).
NONFINITE_POLICIES = ("error", "zero")

log = logging.getLogger(__name__)


def read_audio(path: str | Path, sample_rate: int, nonfinite: str = "error") -> np.ndarray:
    """Mono float32 at ``sample_rate`` Hz; ``ValueError`` naming the file if it is unreadable,
    or holds non-finite samples and ``nonfinite`` is ``"error"``."""
    try:
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as err:
        raise ValueError(f"{path}: unreadable audio ({err})") from err
    log.info("%s: read %d frames (%.3f s) at %d Hz, %d channels", path, len(audio),
             len(audio) / rate, rate, audio.shape[1])
    audio = audio.mean(axis=1)
    audio = _finite(audio, path, rate, nonfinite)
    if rate != sample_rate:
        g = math.gcd(int(rate), int(sample_rate))
        audio = resample_poly(audio, sample_rate // g, int(rate) // g).astype(np.float32)
    return audio


def _finite(audio: np.ndarray, path, rate: int, nonfinite: str) -> np.ndarray:
    bad = ~np.isfinite(audio)
    if not bad.any():
        return audio
    where = f"{int(bad.sum())} non-finite samples (the first at {np.argmax(bad) / rate:.3f} s)"
    if nonfinite == "error":
        raise ValueError(f"{path}: {where}; they would erase every note of the windows they "
                         "touch (repair the file, or pass --nonfinite zero)")
    log.warning("%s: %s set to zero", path, where)
    return np.where(bad, np.float32(0), audio)


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
                 threshold: float | None = None, batch_size: int = 256,
                 device: str | None = None, nonfinite: str = "error") -> pd.DataFrame:
    """Predict ``audio_path`` and write the CSV to ``out`` (a path or a text stream);
    ``threshold`` defaults to the schema's ``pitch_model.decode.threshold``."""
    predictor = Predictor.load(checkpoint, threshold=threshold, batch_size=batch_size,
                               device=device)
    audio = read_audio(audio_path, predictor.model.cfg.sample_rate, nonfinite)
    table = predict_audio(predictor, audio, hop)
    write_csv(table, out)
    return table
