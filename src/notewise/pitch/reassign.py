"""A note's f0 refined from its window's spectrum: the reassigned frequency of its fundamental.

The model names a note to within a few cents: the sub-bin accuracy of its map, about 1.2 cents
mean on validation sines (``bench/bench_subbin.py``), and that per-frequency noise is the
window-position bias of the seed's section 5 table. The window's spectrum knows a steady partial's
frequency far better. The reassignment method (Auger and Flandrin, 1995) reads it off one window:
with ``X`` the spectrum under a window ``h`` and ``D`` the spectrum under its derivative ``h'``, a
partial's frequency is ``omega_k - Im(D_k / X_k)`` at any bin ``k`` of its main lobe, exactly for
a stationary sine (``h`` is zero at both ends, so ``D = i (omega - omega_0) X``). The window is the
Hann window squared: its sidelobes fall 30 dB per octave (Hann's 18), so the leakage of a tone's
next partial moves its fundamental by at most 0.3 cents at 60-80 Hz and 0.006 cents from 120 Hz
(Hann: 1.9 and 0.2; ``bench/bench_subbin.py``, tones of 1, 4 and 8 partials).

A note takes the reassigned frequency of the spectral peak nearest its f0 only when that lies
within ``tolerance_cents`` of the model's f0: the model decides which note it is, the spectrum
only how sharp or flat it sounds. Where no peak is near (a missing fundamental, a partial masked
by another note's) the note keeps the model's f0.
"""

from __future__ import annotations

import math

import numpy as np
import torch

def analysis_windows(length: int, power: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """The symmetric Hann window to ``power`` and its derivative per sample."""
    phase = 2 * math.pi * torch.arange(length, dtype=torch.float64) / (length - 1)
    hann, hann_slope = 0.5 - 0.5 * torch.cos(phase), math.pi / (length - 1) * torch.sin(phase)
    return hann ** power, power * hann ** (power - 1) * hann_slope


def reassigned_f0(waveforms, rows: np.ndarray, f0_hz: np.ndarray, sample_rate: int,
                  tolerance_cents: float, window_power: int = 2) -> np.ndarray:
    """``f0_hz`` with each note moved to its fundamental's reassigned frequency where that is a
    spectral peak within ``tolerance_cents``; ``rows[i]`` is note ``i``'s row of ``waveforms``
    ``[N, window]``. ``tolerance_cents <= 0`` returns ``f0_hz`` unchanged. ``window_power``: the
    analysis window is Hann to that power."""
    f0_hz = np.asarray(f0_hz, np.float64)
    if tolerance_cents <= 0 or len(f0_hz) == 0:
        return f0_hz
    waves = torch.as_tensor(waveforms)
    length = waves.shape[-1]
    window, slope = (w.to(waves.device, torch.float32) for w in analysis_windows(length, window_power))
    used, note_row = np.unique(rows, return_inverse=True)
    x = waves[torch.as_tensor(used, device=waves.device)].float()
    spectrum, derivative = torch.fft.rfft(x * window), torch.fft.rfft(x * slope)
    per_bin = sample_rate / length  # Hz
    reach = 2.0 ** (tolerance_cents / 1200)
    bins = peak_bins(spectrum.abs(), note_row, f0_hz / reach / per_bin, f0_hz * reach / per_bin)
    rows_t = torch.as_tensor(note_row, device=waves.device)
    at_peak = torch.clamp(bins, min=0)
    x_k, d_k = spectrum[rows_t, at_peak], derivative[rows_t, at_peak]
    offset = (d_k / torch.where(x_k.abs() > 0, x_k, torch.ones_like(x_k))).imag
    omega = 2 * math.pi * at_peak.double() / length - offset.double()
    refined = omega.cpu().numpy() * sample_rate / (2 * math.pi)  # Hz
    with np.errstate(divide="ignore", invalid="ignore"):
        moved = 1200 * np.abs(np.log2(refined / f0_hz))
    take = (bins.cpu().numpy() >= 0) & (moved <= tolerance_cents)
    return np.where(take, refined, f0_hz)


def peak_bins(magnitude: torch.Tensor, note_row: np.ndarray, lowest: np.ndarray,
              highest: np.ndarray) -> torch.Tensor:
    """Per note, the FFT bin of the strongest local maximum of ``magnitude[note_row]`` between
    fractional bins ``lowest`` and ``highest`` (the nearest bins to them included); -1 where
    there is none."""
    n_bins, device = magnitude.shape[1], magnitude.device
    first = torch.as_tensor(np.rint(lowest).astype(np.int64), device=device)
    last = torch.as_tensor(np.rint(highest).astype(np.int64), device=device)
    span = int((last - first).max()) + 1 if len(first) else 1
    index = first[:, None] + torch.arange(-1, span + 1, device=device)
    level = magnitude[torch.as_tensor(note_row, device=device)[:, None],
                      index.clamp(0, n_bins - 1)]
    centre = level[:, 1:-1]
    candidate = index[:, 1:-1]
    is_peak = ((centre >= level[:, :-2]) & (centre >= level[:, 2:]) & (candidate >= 1)
               & (candidate < n_bins - 1) & (candidate <= last[:, None]))
    best = torch.where(is_peak, centre, -1.0).argmax(dim=1, keepdim=True)
    return torch.where(is_peak.gather(1, best)[:, 0], candidate.gather(1, best)[:, 0], -1)


__all__ = ["reassigned_f0", "analysis_windows", "peak_bins"]
