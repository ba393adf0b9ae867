"""Peer pitch trackers run on the same audio as ours: basic-pitch (Spotify, ICASSP 2022).

basic-pitch 0.4.0 is optional (its metadata asks for TensorFlow, which its bundled ONNX model
does not need): ``pip install --no-deps basic-pitch`` plus ``onnxruntime`` and what its import
needs (``librosa``, ``resampy``, ``scikit-learn``, ``mir_eval``, ``pretty_midi``); it then runs
offline on CPU. ``basic_pitch_problem()`` says why it cannot run (None when it can).

``BasicPitch(path)`` gives, per file, the two readings this project reports:

* **frames**: the note posteriorgram (``model_output["note"]``, 88 keys from A0, about 86 frames
  per second) thresholded at ``FRAME_THRESHOLD`` = 0.3 (basic-pitch's own frame threshold),
  every active key a frequency at its frame time (``note_creation.model_frames_to_time``);
* **notes**: its note events (its defaults: onset 0.5, frame 0.3, minimum length 127.7 ms) on a
  10 ms grid, a key sounding in ``[start, end)``.
"""
from __future__ import annotations

import contextlib
import io
import logging

import numpy as np

from notewise.synth.bins import midi_to_hz

FRAME_THRESHOLD = 0.3
LOWEST_KEY = 21  # A0, the posteriorgram's first row
FRAME_S = 0.01


def basic_pitch_problem() -> str | None:
    """None if basic-pitch and onnxruntime import; else what is missing."""
    try:
        with _quiet():
            import basic_pitch.inference  # noqa: F401
            import onnxruntime  # noqa: F401
    except ImportError as err:
        return (f"basic-pitch cannot run ({err}); install it with `pip install --no-deps"
                " basic-pitch onnxruntime librosa resampy scikit-learn`")
    return None


@contextlib.contextmanager
def _quiet():
    """basic-pitch logs a warning per missing TensorFlow/CoreML/TFLite backend on import."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


class BasicPitch:
    """basic-pitch's bundled ONNX model, loaded once."""

    def __init__(self):
        with _quiet():
            from basic_pitch import ICASSP_2022_MODEL_PATH
            from basic_pitch.inference import Model

            self.model = Model(ICASSP_2022_MODEL_PATH)

    def run(self, audio_path):
        """``(model_output, note_events)`` of one audio file."""
        from basic_pitch.inference import predict

        with _quiet():
            output, _, events = predict(str(audio_path), self.model)
        return output, events


def posteriorgram_frames(note_posteriorgram: np.ndarray, threshold: float = FRAME_THRESHOLD):
    """``(times, per-frame frequency arrays)`` of the keys above ``threshold``."""
    from basic_pitch.note_creation import model_frames_to_time

    times = model_frames_to_time(note_posteriorgram.shape[0])
    freqs = [midi_to_hz(np.flatnonzero(row > threshold) + LOWEST_KEY) for row in note_posteriorgram]
    return np.asarray(times, np.float64), freqs


def posteriorgram_melody(note_posteriorgram: np.ndarray, threshold: float = FRAME_THRESHOLD):
    """``(times, per-frame frequency arrays)`` of the most probable key of each frame, where it
    is above ``threshold`` (a melody: at most one frequency a frame)."""
    from basic_pitch.note_creation import model_frames_to_time

    times = model_frames_to_time(note_posteriorgram.shape[0])
    voiced = note_posteriorgram.max(axis=1) > threshold
    keys = note_posteriorgram.argmax(axis=1) + LOWEST_KEY
    freqs = [midi_to_hz(keys[i:i + 1]) if voiced[i] else np.zeros(0) for i in range(len(keys))]
    return np.asarray(times, np.float64), freqs


def note_event_frames(events, duration_s: float):
    """Note events ``(start_s, end_s, key, ...)`` as 10 ms multipitch frames."""
    times = np.arange(int(np.ceil(duration_s / FRAME_S))) * FRAME_S
    freqs = [[] for _ in times]
    for start, end, key, *_ in events:
        for k in range(int(np.ceil(start / FRAME_S - 1e-9)), min(int(np.ceil(end / FRAME_S - 1e-9)),
                                                                    len(times))):
            freqs[k].append(float(midi_to_hz(key)))
    return times, [np.sort(np.array(f)) for f in freqs]
