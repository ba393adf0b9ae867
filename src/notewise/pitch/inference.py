"""Batched inference: windows in, decoded notes (and optionally the raw maps) out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .decode import DecodedNotes, decode
from .model import PitchModel, load_model
from .reassign import reassigned_f0


def pick_device(device: str | None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def decode_default(key: str):
    """A decoding setting's schema default (``pitch_model.decode.<key>``): one value for
    ``predict``, the evaluation and the docs."""
    from .settings import pitch_settings

    return pitch_settings({})["decode"][key]


def default_threshold() -> float:
    return decode_default("threshold")


@dataclass
class Predictor:
    """A model in eval mode plus the decoding settings (``refine_cents``: how far the
    spectrum may move a note's f0, ``reassign.reassigned_f0``; 0: the model's f0 as it is)."""

    model: PitchModel
    threshold: float
    radius: int = 4
    batch_size: int = 256
    device: torch.device = torch.device("cpu")
    refine_cents: float = 0.0

    @classmethod
    def load(cls, checkpoint: str | Path, threshold: float | None = None, radius: int = 4,
             batch_size: int = 256, device: str | None = None,
             refine_cents: float | None = None) -> "Predictor":
        """``threshold`` and ``refine_cents`` default to the schema's (``decode_default``)."""
        dev = pick_device(device)
        threshold = default_threshold() if threshold is None else threshold
        refine = decode_default("refine_cents") if refine_cents is None else refine_cents
        return cls(load_model(checkpoint).to(dev), threshold, radius, batch_size, dev, refine)

    def bin_to_freq(self, index):
        return self.model.cfg.bin_to_freq(index)

    def freq_to_bin(self, freq):
        return self.model.cfg.freq_to_bin(freq)

    @torch.no_grad()
    def outputs(self, waveforms: np.ndarray | torch.Tensor) -> Iterator[tuple[
            int, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """``(first_row, batch, conf_logits, energy_logits)`` per batch of ``waveforms``
        ``[N, window]`` (``batch``: those rows, on the device)."""
        self.model.eval()
        for start in range(0, len(waveforms), self.batch_size):
            chunk = torch.as_tensor(waveforms[start:start + self.batch_size], dtype=torch.float32)
            chunk = chunk.to(self.device).contiguous()
            conf, energy = self.model(chunk.unsqueeze(1))
            yield start, chunk, conf, energy

    def notes(self, waveforms: np.ndarray | torch.Tensor,
              threshold: float | None = None) -> DecodedNotes:
        """Decoded notes of every window; ``window`` indexes rows of ``waveforms``."""
        threshold = self.threshold if threshold is None else threshold
        parts = []
        for start, chunk, conf, energy in self.outputs(waveforms):
            found = decode(conf, energy, self.bin_to_freq, threshold, self.radius)
            if self.refine_cents > 0:
                found.f0_hz = reassigned_f0(chunk, found.window, found.f0_hz,
                                            self.model.cfg.sample_rate, self.refine_cents)
                found.bin = self.freq_to_bin(found.f0_hz)
            found.window = found.window + start
            parts.append(found)
        return concat_notes(parts)

    def maps(self, waveforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Confidence (sigmoid) and energy (softmax) maps ``[N, n_bins]`` (for plots)."""
        conf, energy = [], []
        for _, _, c, e in self.outputs(waveforms):
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
