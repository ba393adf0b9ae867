"""The bin formulas of ``bins`` compiled by Numba, for the jitted label and sampler code."""
from __future__ import annotations

from numba import njit

from notewise.synth.bins import bin_frequency, fractional_bin

freq_to_bin_scalar = njit(cache=True)(fractional_bin)
bin_to_freq_scalar = njit(cache=True)(bin_frequency)
