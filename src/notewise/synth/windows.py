"""What every generator returns: ``ShardData`` (a range of windows and their note table), the
output arrays a generator fills (fresh, or a caller's reused buffers), and the NamedTuples the
Numba kernels take instead of long argument lists (``NoteArrays``, ``TimbreArrays``,
``LabelGrid``). NumPy only."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class ShardData(NamedTuple):
    waveforms: np.ndarray  # [N, window] float32
    confs: np.ndarray  # [N, n_bins] float32 (stored as float16)
    energies: np.ndarray  # [N, n_bins] float32 (stored as float16)
    notes: dict  # note table: NOTE_DTYPES keys, one entry per labelled note


def output_arrays(out, count: int, window: int, n_bins: int) -> tuple:
    """``(waveforms, confs, energies)`` float32 arrays of ``count`` rows to fill: new zeros, or
    the arrays of ``out`` (a ``ShardData`` to reuse), checked for shape, dtype and layout."""
    if out is None:
        return (np.zeros((count, window), np.float32), np.zeros((count, n_bins), np.float32),
                np.zeros((count, n_bins), np.float32))
    arrays = (out.waveforms, out.confs, out.energies)
    shapes = ((count, window), (count, n_bins), (count, n_bins))
    for array, shape in zip(arrays, shapes):
        if (array.shape != shape or array.dtype != np.float32
                or not array.flags.c_contiguous or not array.flags.writeable):
            raise ValueError(f"out arrays must be writeable C-contiguous float32 {shapes}")
    return arrays


class NoteArrays(NamedTuple):
    """One window's notes as the kernels read and write them (each array holds at least the
    window's note count): drawn (``freqs`` .. ``phase_keys``) and labelled (``classes`` ..)."""

    freqs: np.ndarray
    velocities: np.ndarray
    timbre_ids: np.ndarray
    onsets: np.ndarray
    offsets: np.ndarray
    phase_keys: np.ndarray
    classes: np.ndarray
    weights: np.ndarray
    shares: np.ndarray
    bins: np.ndarray
    labelled: np.ndarray


def note_arrays(max_notes: int) -> NoteArrays:
    """Scratch ``NoteArrays`` for windows of up to ``max_notes`` notes (reused window to window)."""
    n = max(max_notes, 1)
    return NoteArrays(np.zeros(n), np.zeros(n), np.zeros(n, np.int64), np.zeros(n, np.int64),
                      np.zeros(n, np.int64), np.zeros(n, np.uint64), np.zeros(n, np.int64),
                      np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n, np.bool_))


class TimbreArrays(NamedTuple):
    """Per timbre row (``timbre_ids`` index them): partial amplitudes, inharmonicity, ADSR."""

    amplitudes: np.ndarray
    stretches: np.ndarray
    adsr: np.ndarray


class LabelGrid(NamedTuple):
    """The scalars of labelling: sample rate (Hz), window (samples), bin range (Hz), the
    Gaussians' sigma (bins)."""

    sample_rate: float
    window: int
    f_min: float
    f_max: float
    sigma: float


def label_grid(spec: dict) -> LabelGrid:
    """The ``LabelGrid`` of a generation spec."""
    return LabelGrid(float(spec["audio"]["sample_rate"]), int(spec["audio"]["window"]),
                     float(spec["bins"]["f_min"]), float(spec["bins"]["f_max"]),
                     float(spec["labels"]["sigma_bins"]))
