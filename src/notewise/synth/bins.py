"""Log-spaced pitch bins: the mapping between Hz and (fractional) bin index.

Bin ``i`` of ``n_bins`` is centred on ``f_min * (f_max / f_min) ** (i / (n_bins - 1))``, so bin 0
is ``f_min`` and bin ``n_bins - 1`` is ``f_max`` (2048 bins over 20-5000 Hz: about 4.67 cents
per bin). The inverse is ``(n_bins - 1) * log(f / f_min) / log(f_max / f_min)``, a *fractional*
bin: labels centre their Gaussians on it, not on the rounded bin.

``Bins`` is the Python face. The two formulas are defined once, here, as plain functions;
``bin_kernels`` compiles them for the jitted label and sampler code (this module does not import
Numba: validation and the readers use it, and Numba costs a quarter of a second to import).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def fractional_bin(freq, f_min, f_max, n_bins):
    """Fractional bin of ``freq`` Hz (scalars or arrays)."""
    return (n_bins - 1) * np.log(freq / f_min) / np.log(f_max / f_min)


def midi_to_hz(pitch) -> np.ndarray:
    """Equal-tempered frequency in Hz of MIDI pitch(es) ``pitch`` (A4 = 69 = 440 Hz), float64."""
    return 440.0 * 2.0 ** ((np.asarray(pitch, np.float64) - 69.0) / 12.0)


def bin_frequency(bin_index, f_min, f_max, n_bins):
    """Frequency in Hz of the (possibly fractional) bin ``bin_index`` (scalars or arrays)."""
    return f_min * (f_max / f_min) ** (bin_index / (n_bins - 1))


@dataclass(frozen=True)
class Bins:
    """The bin layout: ``n_bins`` log-spaced centres from ``f_min`` to ``f_max`` Hz inclusive."""

    n_bins: int = 2048
    f_min: float = 20.0
    f_max: float = 5000.0

    def __post_init__(self):
        if self.n_bins < 2:
            raise ValueError(f"bins.n_bins must be >= 2, got {self.n_bins}")
        if not 0 < self.f_min < self.f_max:
            raise ValueError(f"bins need 0 < f_min < f_max, got {self.f_min}, {self.f_max}")

    @classmethod
    def from_dict(cls, bins: dict) -> "Bins":
        """From the ``bins`` section of the config or the generation spec."""
        return cls(int(bins["n_bins"]), float(bins["f_min"]), float(bins["f_max"]))

    @property
    def centres(self) -> np.ndarray:
        """Centre frequency of every bin, float64 [n_bins]."""
        return self.bin_to_freq(np.arange(self.n_bins, dtype=np.float64))

    def freq_to_bin(self, freq):
        """Fractional bin index of ``freq`` (scalar or array, Hz); may fall outside
        [0, n_bins-1]."""
        return fractional_bin(np.asarray(freq, dtype=np.float64), self.f_min, self.f_max,
                              self.n_bins)

    def bin_to_freq(self, bin_index):
        """Frequency in Hz of a (fractional) bin index (scalar or array)."""
        return bin_frequency(np.asarray(bin_index, dtype=np.float64), self.f_min, self.f_max,
                             self.n_bins)

    def contains(self, freq) -> np.ndarray:
        """Whether ``freq`` lies in [f_min, f_max] (the labelled range), to 1e-9 relative."""
        freq = np.asarray(freq, dtype=np.float64)
        return (freq >= self.f_min * (1 - 1e-9)) & (freq <= self.f_max * (1 + 1e-9))
