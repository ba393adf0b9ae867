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
A file is streamed (``notewise.pitch.audio``): read, mixed down and resampled ``BLOCK_S``
seconds of input at a time and framed holding at most a block plus a window, so memory does not
grow with the file; its table is the one of the whole array (``predict_frames``).

In Python, the torchcrepe way::

    notes = notewise.predict(audio, sample_rate)   # a DataFrame of notes, the released model
    notes = notewise.predict_file("song.flac", checkpoint="my_model/model.pth")

Output, by the extension of ``-o``: ``.mid``/``.midi`` a MIDI file; ``.notes.csv`` the notes
(``onset, offset, pitch, f0_hz, velocity, confidence``); ``.melody.csv`` one melody note per
frame (``time, f0_hz, pitch, confidence``; ``notes.melody``, for a single melodic line); any
other name (and standard output) the frame CSV ``time,f0_hz,confidence,energy_share,
onset_strength``, one row per detected note per window (``onset_strength``: the window's, the
same on each of its rows; ``notewise.pitch.onsets``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from notewise.atomicio import atomic_write_csv

from .audio import BLOCK_S, frame, model_audio, stamp_offset, stream_audio, stream_windows
from .decode import DecodedNotes
from .inference import Predictor, concat_notes, decode_default
from .notes import frames_to_notes, melody, write_midi
from .onsets import onset_strength

__all__ = ["file_frames", "frame", "model_audio", "predict", "predict_file", "predict_frames",
           "read_audio", "stamp_offset", "stream_frames", "write_prediction"]

CSV_COLUMNS = ["time", "f0_hz", "confidence", "energy_share", "onset_strength"]
#: What to do with NaN or infinite samples: refuse the file, or set them to zero (with a warning).
NONFINITE_POLICIES = ("error", "zero")


def read_audio(path: str | Path, sample_rate: int, nonfinite: str = "error",
               block_s: float = BLOCK_S) -> np.ndarray:
    """Mono float32 at ``sample_rate`` Hz, the whole file (``stream_audio``'s blocks joined);
    ``ValueError`` naming the file if it is unreadable, or holds non-finite samples and
    ``nonfinite`` is ``"error"``."""
    blocks = list(stream_audio(path, sample_rate, nonfinite, block_s))
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


def default_stamp() -> float:
    """The stamp position of the schema (``pitch_model.decode.stamp``), measured on validation
    music (docs/pitch_model.md, "Where in the window")."""
    return decode_default("stamp")


def predict_frames(predictor: Predictor, audio: np.ndarray, hop: int,
                   stamp: float | None = None) -> pd.DataFrame:
    """The frame table (``CSV_COLUMNS``) of mono audio at the model's rate, window ``k`` stamped
    at ``k * hop`` (``stamp``: where in the window; default ``default_stamp()``)."""
    stamp = default_stamp() if stamp is None else stamp
    windows = frame(audio, predictor.model.cfg.window, hop, stamp)
    return _frame_table(*_decoded(predictor, windows, hop, stamp), hop,
                        predictor.model.cfg.sample_rate)


def stream_frames(predictor: Predictor, blocks: Iterable[np.ndarray], hop: int,
                  stamp: float | None = None) -> pd.DataFrame:
    """``predict_frames`` of the audio ``blocks`` (``stream_audio``) joined, without joining them:
    the windows go through the model in the same batches, so the table is the same."""
    stamp = default_stamp() if stamp is None else stamp
    parts, strengths = [], []
    for first, windows in stream_windows(blocks, predictor.model.cfg.window, hop, stamp,
                                         predictor.batch_size):
        notes, strength = _decoded(predictor, windows, hop, stamp)
        notes.window = notes.window + first
        parts.append(notes)
        strengths.append(strength)
    return _frame_table(concat_notes(parts), np.concatenate(strengths or [np.zeros(0)]), hop,
                        predictor.model.cfg.sample_rate)


def file_frames(predictor: Predictor, audio_path: str | Path, hop: int,
                stamp: float | None = None, nonfinite: str = "error",
                block_s: float = BLOCK_S) -> pd.DataFrame:
    """The frame table of an audio file, streamed in blocks of ``block_s`` seconds of input."""
    blocks = stream_audio(audio_path, predictor.model.cfg.sample_rate, nonfinite, block_s)
    return stream_frames(predictor, blocks, hop, stamp)


def _decoded(predictor: Predictor, windows, hop: int,
             stamp: float) -> tuple[DecodedNotes, np.ndarray]:
    """The notes of ``windows`` and, per note, its window's onset strength."""
    notes = predictor.notes(windows)
    cfg = predictor.model.cfg
    return notes, onset_strength(windows, notes.window, stamp_offset(cfg.window, stamp), hop,
                                 cfg.sample_rate)


def _frame_table(notes: DecodedNotes, strength: np.ndarray, hop: int,
                 sample_rate: int) -> pd.DataFrame:
    order = np.lexsort((notes.f0_hz, notes.window))
    return pd.DataFrame({
        "time": notes.window[order] * hop / sample_rate,
        "f0_hz": notes.f0_hz[order],
        "confidence": notes.confidence[order],
        "energy_share": notes.energy_share[order],
        "onset_strength": strength[order],
    }, columns=CSV_COLUMNS)


def _predictor(checkpoint, threshold, batch_size, device, refine_cents=None) -> Predictor:
    """A loaded ``Predictor`` is used as it is (its own threshold, batch size and device);
    ``None`` is the released model shipped in the package."""
    if isinstance(checkpoint, Predictor):
        return checkpoint
    if checkpoint is None:
        from .release import release_checkpoint

        checkpoint = release_checkpoint()
    return Predictor.load(checkpoint, threshold=threshold, batch_size=batch_size, device=device,
                          refine_cents=refine_cents)


def _notes(predictor: Predictor, frames: pd.DataFrame, hop: int, onset_threshold: float,
           min_duration: float) -> pd.DataFrame:
    return frames_to_notes(frames, hop / predictor.model.cfg.sample_rate, onset_threshold,
                           min_duration)


def predict(audio: np.ndarray, sample_rate: int, checkpoint=None, *, hop: int = 441,
            stamp: float | None = None, threshold: float | None = None,
            onset_threshold: float = 0.5, min_duration: float = 0.05, batch_size: int = 256,
            device: str | None = None, nonfinite: str = "error",
            refine_cents: float | None = None) -> pd.DataFrame:
    """The notes (``notes.NOTE_COLUMNS``, times in seconds) of ``audio`` (``[samples]`` or
    ``[samples, channels]`` at ``sample_rate`` Hz). ``checkpoint``: a model file, a loaded
    ``Predictor``, or None for the released model shipped in the package; ``stamp`` where in
    its window a window's notes are placed in time (a fraction of the window; default the
    schema's ``pitch_model.decode.stamp``); ``threshold`` (frames; default the schema's
    ``pitch_model.decode.threshold``) and ``onset_threshold`` are the two thresholds of the
    hysteresis, ``min_duration`` seconds the shortest note kept; ``refine_cents`` how far the
    spectrum may move a note's f0 (``reassign.reassigned_f0``; default the schema's
    ``pitch_model.decode.refine_cents``, 0: the model's f0)."""
    predictor = _predictor(checkpoint, threshold, batch_size, device, refine_cents)
    audio = model_audio(audio, sample_rate, predictor.model.cfg.sample_rate, nonfinite=nonfinite)
    return _notes(predictor, predict_frames(predictor, audio, hop, stamp), hop, onset_threshold,
                  min_duration)


def predict_file(audio_path: str | Path, checkpoint=None, *, hop: int = 441,
                 stamp: float | None = None, threshold: float | None = None,
                 onset_threshold: float = 0.5, min_duration: float = 0.05, batch_size: int = 256,
                 device: str | None = None, nonfinite: str = "error",
                 block_s: float = BLOCK_S, refine_cents: float | None = None) -> pd.DataFrame:
    """``predict`` of an audio file (any format libsndfile reads), with ``predict``'s settings,
    streamed ``block_s`` seconds of input at a time (``file_frames``)."""
    predictor = _predictor(checkpoint, threshold, batch_size, device, refine_cents)
    frames = file_frames(predictor, audio_path, hop, stamp, nonfinite, block_s)
    return _notes(predictor, frames, hop, onset_threshold, min_duration)


#: The name endings ``write_prediction`` reads its output from (any other: frames).
OUTPUT_KINDS = {".mid": "midi", ".midi": "midi", ".notes.csv": "notes", ".melody.csv": "melody"}


def output_kind(out) -> str:
    """``"midi"``, ``"notes"``, ``"melody"`` or ``"frames"``: what ``write_prediction`` writes
    to ``out``."""
    name = str(out).lower() if isinstance(out, (str, Path)) else ""
    return next((kind for end, kind in OUTPUT_KINDS.items() if name.endswith(end)), "frames")


def write_csv(table: pd.DataFrame, path) -> None:
    atomic_write_csv(table, path, float_format="%.6g")


def write_prediction(audio_path: str | Path, checkpoint, out, hop: int = 441,
                     stamp: float | None = None, threshold: float | None = None,
                     onset_threshold: float = 0.5, min_duration: float = 0.05,
                     batch_size: int = 256, device: str | None = None,
                     nonfinite: str = "error", block_s: float = BLOCK_S,
                     refine_cents: float | None = None) -> pd.DataFrame:
    """Predict ``audio_path`` (streamed, ``file_frames``) and write to ``out`` (a path or a text
    stream) what its name asks for (``output_kind``); returns the table written (frames, notes
    or melody)."""
    predictor = _predictor(checkpoint, threshold, batch_size, device, refine_cents)
    frames = file_frames(predictor, audio_path, hop, stamp, nonfinite, block_s)
    kind = output_kind(out)
    if kind == "frames":
        write_csv(frames, out)
        return frames
    if kind == "melody":
        line = melody(frames, hop / predictor.model.cfg.sample_rate, onset_threshold,
                      min_duration)
        write_csv(line, out)
        return line
    notes = _notes(predictor, frames, hop, onset_threshold, min_duration)
    if kind == "midi":
        write_midi(notes, out)
    else:
        write_csv(notes, out)
    return notes
