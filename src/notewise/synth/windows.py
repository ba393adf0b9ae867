"""What every generator returns: ``ShardData`` (a range of windows and their note table), and the
output arrays a generator fills (fresh, or a caller's reused buffers). NumPy only."""
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
