"""Batched inference: windows in, decoded notes (and optionally the raw maps) out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .decode import DecodedNotes, decode
from .model import PitchModel, load_model


def pick_device(device: str | None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_threshold() -> float:
    """The decoding threshold of the schema (``pitch_model.decode.threshold``): one value for
    ``predict``, the evaluation and the docs."""
    from .settings import pitch_settings

    return pitch_settings({})["decode"]["threshold"]


@dataclass
class Predictor:
    """A model in eval mode plus the decoding settings."""

    model: PitchModel
    threshold: float
    radius: int = 4
    batch_size: int = 256
    device: torch.device = torch.device("cpu")

    @classmethod
    def load(cls, checkpoint: str | Path, threshold: float | None = None, radius: int = 4,
             batch_size: int = 256, device: str | None = None) -> "Predictor":
        """``threshold`` defaults to the schema's (``default_threshold``)."""
        dev = pick_device(device)
        threshold = default_threshold() if threshold is None else threshold
        return cls(load_model(checkpoint).to(dev), threshold, radius, batch_size, dev)

    def bin_to_freq(self, index):
        return self.model.cfg.bin_to_freq(index)

    def freq_to_bin(self, freq):
        return self.model.cfg.freq_to_bin(freq)

    @torch.no_grad()
    def outputs(self, waveforms: np.ndarray | torch.Tensor) -> Iterator[tuple[int, torch.Tensor,
                                                                               torch.Tensor]]:
        """``(first_row, conf_logits, energy_logits)`` per batch of ``waveforms`` ``[N, window]``."""
        self.model.eval()
        for start in range(0, len(waveforms), self.batch_size):
            chunk = torch.as_tensor(waveforms[start:start + self.batch_size], dtype=torch.float32)
            conf, energy = self.model(chunk.to(self.device).contiguous().unsqueeze(1))
            yield start, conf, energy

    def notes(self, waveforms: np.ndarray | torch.Tensor,
              threshold: float | None = None) -> DecodedNotes:
        """Decoded notes of every window; ``window`` indexes rows of ``waveforms``."""
        threshold = self.threshold if threshold is None else threshold
        parts = []
        for start, conf, energy in self.outputs(waveforms):
            found = decode(conf, energy, self.bin_to_freq, threshold, self.radius)
            found.window = found.window + start
            parts.append(found)
        return concat_notes(parts)

    def maps(self, waveforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Confidence (sigmoid) and energy (softmax) maps ``[N, n_bins]`` (for plots)."""
        conf, energy = [], []
        for _, c, e in self.outputs(waveforms):
            conf.append(torch.sigmoid(c.float()).cpu().numpy())
            energy.append(torch.softmax(e.float(), dim=-1).cpu().numpy())
        return np.concatenate(conf), np.concatenate(energy)


def concat_notes(parts: list[DecodedNotes]) -> DecodedNotes:
    if not parts:
        empty = np.zeros(0)
        return DecodedNotes(empty.astype(np.int64), empty, empty, empty.astype(np.float32),
                            empty.astype(np.float32))
    return DecodedNotes(*(np.concatenate([getattr(p, name) for p in parts])
                          for name in ("window", "bin", "f0_hz", "confidence", "energy_share")))


def strongest(notes: DecodedNotes, n_windows: int) -> tuple[np.ndarray, np.ndarray]:
    """Per window, the f0 and confidence of the most confident note (NaN / 0 where none)."""
    f0 = np.full(n_windows, np.nan)
    conf = np.zeros(n_windows, dtype=np.float32)
    order = np.lexsort((notes.confidence, notes.window))  # by window, then confidence ascending
    windows = notes.window[order]
    last = order[np.r_[windows[1:] != windows[:-1], True]] if len(order) else order
    f0[notes.window[last]] = notes.f0_hz[last]
    conf[notes.window[last]] = notes.confidence[last]
    return f0, conf
