"""``notewise predict AUDIO``: the notes of an audio file, as MIDI, a note CSV or a frame CSV.

The file is read with ``soundfile`` (every format libsndfile reads: WAV, FLAC, OGG, MP3, ...; any
sample rate and channel count; an unreadable file is named in the error, and a file with
non-finite samples is refused, or repaired with ``nonfinite="zero"``), mixed down to mono,
resampled to the model's rate with ``scipy.signal.resample_poly`` and cut into windows whose
*stamped points* are ``0, hop, 2 * hop, ...`` samples, so ``time`` is ``k * hop / sample_rate``
and the default hop of 441 samples gives the 10 ms grid of ``mir_eval.multipitch``. ``stamp``
is where in its window a window's notes are taken to sound, a fraction of the window (0.5 its
centre; 1.0 its end, where the SPEC's labels call a note full-confidence): window ``k`` covers
samples ``[k * hop - round(stamp * window), ...)`` of the zero-padded signal. Its default,
``pitch_model.decode.stamp``, is measured on validation music (``notewise.pitch.alignment``,
``bench/bench_stamp.py``, docs/pitch_model.md "Where in the window"). Windows are batched
through the model; decoding is vectorised; ``notewise.pitch.notes`` joins the frames into notes.

In Python, the torchcrepe way::

    notes = notewise.predict(audio, sample_rate)   # a DataFrame of notes, the released model
    notes = notewise.predict_file("song.flac", checkpoint="my_model/model.pth")

Output, by the extension of ``-o``: ``.mid``/``.midi`` a MIDI file; ``.notes.csv`` the notes
(``onset, offset, pitch, f0_hz, velocity, confidence``); any other name (and standard output) the
frame CSV ``time,f0_hz,confidence,energy_share``, one row per detected note per window.
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

from .inference import Predictor
from .notes import frames_to_notes, write_midi

__all__ = ["predict", "predict_file", "predict_frames", "read_audio", "write_prediction"]

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
    return model_audio(audio, rate, sample_rate, path, nonfinite)


def model_audio(audio: np.ndarray, rate: int, sample_rate: int, name="audio",
                nonfinite: str = "error") -> np.ndarray:
    """``audio`` (``[n]`` or ``[n, channels]`` at ``rate`` Hz) as the model reads it: mono
    float32 at ``sample_rate``, with non-finite samples refused or zeroed (``nonfinite``)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2):
        raise ValueError(f"{name}: audio must be [samples] or [samples, channels], not {audio.shape}")
    audio = audio.mean(axis=1) if audio.ndim == 2 else audio
    audio = _finite(audio, name, rate, nonfinite)
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


def default_stamp() -> float:
    """The stamp position of the schema (``pitch_model.decode.stamp``), measured on validation
    music (docs/pitch_model.md, "Where in the window")."""
    from .settings import pitch_settings

    return pitch_settings({})["decode"]["stamp"]


def stamp_offset(window: int, stamp: float) -> int:
    """Samples from a window's first sample to its stamped point: ``round(stamp * window)``."""
    if not 0.0 <= stamp <= 1.0:
        raise ValueError(f"stamp must be a fraction of the window in [0, 1], not {stamp}")
    return int(round(stamp * window))


def frame(audio: np.ndarray, window: int, hop: int, stamp: float) -> torch.Tensor:
    """Windows ``[len(audio) // hop + 1, window]`` whose stamped point (``stamp_offset``) is
    sample ``k * hop`` of ``audio``: window ``k`` is ``audio[k * hop - stamp_offset + j]``,
    ``j = 0 .. window - 1``, zeros outside ``audio`` (a strided view, no copy of the frames)."""
    n = len(audio) // hop + 1
    left = stamp_offset(window, stamp)
    right = max((n - 1) * hop + window - left - len(audio), 0)
    padded = np.pad(audio, (left, right))
    return torch.from_numpy(padded).unfold(0, window, hop)[:n]


def predict_frames(predictor: Predictor, audio: np.ndarray, hop: int,
                   stamp: float | None = None) -> pd.DataFrame:
    """The frame table (``CSV_COLUMNS``) of mono audio at the model's rate, window ``k`` stamped
    at ``k * hop`` (``stamp``: where in the window; default ``default_stamp()``)."""
    cfg = predictor.model.cfg
    stamp = default_stamp() if stamp is None else stamp
    windows = frame(audio, cfg.window, hop, stamp)
    notes = predictor.notes(windows)
    order = np.lexsort((notes.f0_hz, notes.window))
    return pd.DataFrame({
        "time": notes.window[order] * hop / cfg.sample_rate,
        "f0_hz": notes.f0_hz[order],
        "confidence": notes.confidence[order],
        "energy_share": notes.energy_share[order],
    }, columns=CSV_COLUMNS)


def _predictor(checkpoint, threshold, batch_size, device) -> Predictor:
    """A loaded ``Predictor`` is used as it is (its own threshold, batch size and device);
    ``None`` is the released model shipped in the package."""
    if isinstance(checkpoint, Predictor):
        return checkpoint
    if checkpoint is None:
        from .release import release_checkpoint

        checkpoint = release_checkpoint()
    return Predictor.load(checkpoint, threshold=threshold, batch_size=batch_size, device=device)


def _notes(predictor: Predictor, frames: pd.DataFrame, hop: int, onset_threshold: float,
           min_duration: float) -> pd.DataFrame:
    return frames_to_notes(frames, hop / predictor.model.cfg.sample_rate, onset_threshold,
                           min_duration)


def predict(audio: np.ndarray, sample_rate: int, checkpoint=None, *, hop: int = 441,
            stamp: float | None = None, threshold: float | None = None,
            onset_threshold: float = 0.5, min_duration: float = 0.05, batch_size: int = 256,
            device: str | None = None, nonfinite: str = "error") -> pd.DataFrame:
    """The notes (``notes.NOTE_COLUMNS``, times in seconds) of ``audio`` (``[samples]`` or
    ``[samples, channels]`` at ``sample_rate`` Hz). ``checkpoint``: a model file, a loaded
    ``Predictor``, or None for the released model shipped in the package; ``stamp`` where in
    its window a window's notes are placed in time (a fraction of the window; default the
    schema's ``pitch_model.decode.stamp``); ``threshold`` (frames; default the schema's
    ``pitch_model.decode.threshold``) and ``onset_threshold`` are the two thresholds of the
    hysteresis, ``min_duration`` seconds the shortest note kept."""
    predictor = _predictor(checkpoint, threshold, batch_size, device)
    audio = model_audio(audio, sample_rate, predictor.model.cfg.sample_rate, nonfinite=nonfinite)
    return _notes(predictor, predict_frames(predictor, audio, hop, stamp), hop, onset_threshold,
                  min_duration)


def predict_file(audio_path: str | Path, checkpoint=None, *, hop: int = 441,
                 stamp: float | None = None, threshold: float | None = None,
                 onset_threshold: float = 0.5, min_duration: float = 0.05, batch_size: int = 256,
                 device: str | None = None, nonfinite: str = "error") -> pd.DataFrame:
    """``predict`` of an audio file (any format libsndfile reads), with ``predict``'s settings."""
    predictor = _predictor(checkpoint, threshold, batch_size, device)
    audio = read_audio(audio_path, predictor.model.cfg.sample_rate, nonfinite)
    return _notes(predictor, predict_frames(predictor, audio, hop, stamp), hop, onset_threshold,
                  min_duration)


def output_kind(out) -> str:
    """``"midi"``, ``"notes"`` or ``"frames"``: what ``write_prediction`` writes to ``out``."""
    name = str(out).lower() if isinstance(out, (str, Path)) else ""
    if name.endswith((".mid", ".midi")):
        return "midi"
    return "notes" if name.endswith(".notes.csv") else "frames"


def write_csv(table: pd.DataFrame, path) -> None:
    atomic_write_csv(table, path, float_format="%.6g")


def write_prediction(audio_path: str | Path, checkpoint, out, hop: int = 441,
                     stamp: float | None = None, threshold: float | None = None,
                     onset_threshold: float = 0.5, min_duration: float = 0.05,
                     batch_size: int = 256, device: str | None = None,
                     nonfinite: str = "error") -> pd.DataFrame:
    """Predict ``audio_path`` and write to ``out`` (a path or a text stream) what its name asks
    for (``output_kind``); returns the table written (frames or notes)."""
    predictor = _predictor(checkpoint, threshold, batch_size, device)
    audio = read_audio(audio_path, predictor.model.cfg.sample_rate, nonfinite)
    frames = predict_frames(predictor, audio, hop, stamp)
    kind = output_kind(out)
    if kind == "frames":
        write_csv(frames, out)
        return frames
    notes = _notes(predictor, frames, hop, onset_threshold, min_duration)
    if kind == "midi":
        write_midi(notes, out)
    else:
        write_csv(notes, out)
    return notes
