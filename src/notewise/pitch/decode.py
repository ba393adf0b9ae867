"""From model outputs to notes: peaks of the confidence map, sub-bin f0, energy share.

For each window: a bin is a note when its confidence (sigmoid of the logit) is above
``threshold`` and a local maximum. Its fractional bin is the confidence-weighted mean bin over
``radius`` bins either side (the labels are Gaussians of sigma 1.5 bins; with ``radius = 4`` the
truncation biases a Gaussian's estimated centre by at most 0.06 cents). The f0 is that fractional
bin through the bin mapping; the note's energy share is the softmax energy summed over the same
span, i.e. the fraction of the window's energy the model gives to that note.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F


@dataclass
class DecodedNotes:
    """A flat note table: one entry per detected note, ``window`` says in which window."""

    window: np.ndarray        # int64, row in the batch
    bin: np.ndarray           # float64, fractional bin
    f0_hz: np.ndarray         # float64
    confidence: np.ndarray    # float32, sigmoid confidence at the peak bin
    energy_share: np.ndarray  # float32, softmax energy within +-radius bins

    def __len__(self) -> int:
        return len(self.window)

    def per_window(self, n_windows: int) -> list[np.ndarray]:
        """f0 arrays, one per window (what ``mir_eval.multipitch`` takes)."""
        order = np.argsort(self.window, kind="stable")
        bounds = np.searchsorted(self.window[order], np.arange(n_windows + 1))
        f0 = self.f0_hz[order]
        return [f0[bounds[i]:bounds[i + 1]] for i in range(n_windows)]


def _span_sums(values: torch.Tensor, window: torch.Tensor, centre: torch.Tensor, radius: int,
               weights: torch.Tensor) -> torch.Tensor:
    """``sum(values[window, centre + k] * weights[k])`` over k in [-radius, radius], bins outside
    the map counting zero: only at the peaks, not at every bin."""
    n_bins = values.shape[1]
    index = centre[:, None] + torch.arange(-radius, radius + 1, device=values.device)
    inside = (index >= 0) & (index < n_bins)
    gathered = values[window[:, None], index.clamp(0, n_bins - 1)] * inside
    return gathered @ weights.to(values.dtype)


def find_peaks(confidence: torch.Tensor, threshold: float) -> torch.Tensor:
    """Boolean ``[B, n]``: above threshold, >= the left neighbour and > the right one."""
    padded = F.pad(confidence, (1, 1), value=-1.0)
    left, right = padded[:, :-2], padded[:, 2:]
    return (confidence > threshold) & (confidence >= left) & (confidence > right)


@torch.no_grad()
def decode(conf_logits: torch.Tensor, energy_logits: torch.Tensor, bin_to_freq,
           threshold: float = 0.5, radius: int = 4) -> DecodedNotes:
    """Notes of a batch of windows. ``bin_to_freq`` maps fractional bins to Hz (numpy)."""
    confidence = torch.sigmoid(conf_logits.float())
    energy = torch.softmax(energy_logits.float(), dim=-1)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32, device=confidence.device)
    window, peak_bin = find_peaks(confidence, threshold).nonzero(as_tuple=True)
    ones = torch.ones_like(offsets)
    mass = _span_sums(confidence, window, peak_bin, radius, ones)
    moment = _span_sums(confidence, window, peak_bin, radius, offsets)
    share = _span_sums(energy, window, peak_bin, radius, ones)
    bins = peak_bin.double() + (moment / mass).double()
    return DecodedNotes(
        window=window.cpu().numpy(),
        bin=bins.cpu().numpy(),
        f0_hz=np.asarray(bin_to_freq(bins.cpu().numpy()), dtype=np.float64),
        confidence=confidence[window, peak_bin].cpu().numpy(),
        energy_share=share.cpu().numpy(),
    )
