"""The MIDI LM as a task of the shared harness (:mod:`notewise.training`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..training import StepResult
from .dataset import MidiDataset
from .model import lm_loss
from .sampler import MidiDatasetSampler, Span
from .vocab import PAD


def collate(dataset: MidiDataset, spans: list[Span]) -> torch.Tensor:
    """Right-padded ``[B, T]`` batch of the spans' tokens."""
    seqs = [dataset[span] for span in spans]
    return torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=PAD)


class Batches:
    """One epoch's batches for one rank (sized, re-iterable)."""

    def __init__(self, dataset: MidiDataset, sampler: MidiDatasetSampler):
        self.dataset, self.sampler, self.batches = dataset, sampler, list(sampler)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return (collate(self.dataset, spans) for spans in self.batches)


@dataclass
class LMTask:
    """Train on ``train``, validate on ``val`` (optional), batches under ``max_batch_size``.

    Sequences are cut into windows of ``window`` tokens (the model's context + 1); training
    windows start at a random offset per sequence and epoch (see :mod:`.sampler`), validation
    windows at fixed multiples of ``window``.
    """

    train: MidiDataset
    val: MidiDataset | None
    max_batch_size: int
    seed: int = 0
    window: int | None = None
    weight_unit: str = "tokens"

    def _batches(self, dataset: MidiDataset, epoch: int, rank: int, world_size: int,
                 shuffle: bool) -> Batches:
        sampler = MidiDatasetSampler(dataset.lengths, self.max_batch_size, seed=self.seed,
                                     rank=rank, world_size=world_size, shuffle=shuffle,
                                     window=self.window, offsets=shuffle)
        sampler.set_epoch(epoch)
        return Batches(dataset, sampler)

    def train_batches(self, epoch: int, rank: int, world_size: int) -> Batches:
        return self._batches(self.train, epoch, rank, world_size, shuffle=True)

    def val_batches(self, epoch: int, rank: int, world_size: int) -> Batches | None:
        if self.val is None or len(self.val) == 0:
            return None
        return self._batches(self.val, 0, rank, world_size, shuffle=False)

    def step(self, model, batch: torch.Tensor, device: torch.device) -> StepResult:
        loss, count = lm_loss(model, batch.to(device, non_blocking=True))
        return StepResult(loss, weight=count)

    def epoch_metrics(self, split: str, totals: dict) -> dict:
        """Perplexity, and nats / bits per note: the split's summed loss over its note count
        (notes of the quantised scores, see :mod:`.evaluate`)."""
        notes = getattr(self, split).summary["notes"]
        per_note = totals["loss"] * totals["weight"] / max(notes, 1)
        return {"perplexity": math.exp(min(totals["loss"], 50.0)), "nats_per_note": per_note,
                "bits_per_note": per_note / math.log(2), "notes": notes}
