"""``MidiDatasetSampler``: length-bucketed batches under a quadratic token budget.

Attention costs grow with the square of the length, so a batch is bounded by
``sum(len ** 2) <= max_batch_size`` rather than by a count. Per epoch:

1. every sequence longer than ``floor(sqrt(max_batch_size))`` is cut into spans of at most that
   length (so it fits a batch alone; nothing is ever dropped);
2. spans are sorted by length jittered by a random factor (``1 +- jitter``), so batches hold
   similar lengths but differ between epochs;
3. they are packed greedily into batches within the budget, and the batches are shuffled;
4. batch ``j`` goes to DDP rank ``j % world_size``: the ranks' shards are disjoint and together
   complete, and their batch counts differ by at most one (the harness runs under DDP ``Join``).

Everything is a pure function of ``(seed, epoch)``. The sampler yields lists of
``(index, start, stop)`` spans; :class:`~notewise.midi.dataset.MidiDataset` accepts them as keys.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np

Span = tuple[int, int, int]


class MidiDatasetSampler:
    def __init__(self, lengths: Sequence[int] | np.ndarray, max_batch_size: int, *, seed: int = 0,
                 rank: int = 0, world_size: int = 1, jitter: float = 0.1, shuffle: bool = True):
        if hasattr(lengths, "lengths"):  # a MidiDataset
            lengths = lengths.lengths
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.max_batch_size, self.seed = max_batch_size, seed
        self.jitter, self.shuffle = jitter, shuffle
        self.rank, self.world_size = rank, world_size
        self.max_span = math.isqrt(max_batch_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def spans(self) -> list[Span]:
        """Every sequence as spans of at most ``max_span`` tokens (empty sequences skipped)."""
        out = []
        for index, length in enumerate(self.lengths.tolist()):
            out += [(index, start, min(start + self.max_span, length))
                    for start in range(0, length, self.max_span)]
        return out

    def all_batches(self) -> list[list[Span]]:
        """This epoch's batches for all ranks, in order."""
        rng = np.random.default_rng([self.seed, self.epoch])
        spans = self.spans()
        sizes = np.array([stop - start for _, start, stop in spans], dtype=np.float64)
        noise = rng.uniform(1 - self.jitter, 1 + self.jitter, len(spans)) if self.shuffle else 1.0
        order = np.argsort(sizes * noise, kind="stable")
        batches, batch, cost = [], [], 0
        for i in order.tolist():
            span_cost = int(sizes[i]) ** 2
            if batch and cost + span_cost > self.max_batch_size:
                batches.append(batch)
                batch, cost = [], 0
            batch.append(spans[i])
            cost += span_cost
        if batch:
            batches.append(batch)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[Span]]:
        return iter(self.all_batches()[self.rank::self.world_size])

    def __len__(self) -> int:
        return len(self.all_batches()[self.rank::self.world_size])
