"""``MidiDatasetSampler``: length-bucketed batches under a quadratic token budget.

Attention costs grow with the square of the length, so a batch is bounded by
``sum(len ** 2) <= max_batch_size`` rather than by a count. Per epoch:

1. every sequence longer than ``window`` tokens (at most ``floor(sqrt(max_batch_size))``, so a
   span fits a batch alone; nothing is ever dropped) is cut into spans of ``window`` tokens. With
   ``offsets`` (training), the first cut of each such sequence falls at a random position in
   ``[1, window]``, drawn anew each epoch from ``(seed, epoch)``, so spans start and end anywhere
   in a piece and every token type reaches every position of the context; without (the
   default, validation), at ``window``;
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
                 rank: int = 0, world_size: int = 1, jitter: float = 0.1, shuffle: bool = True,
                 window: int | None = None, offsets: bool = False):
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
        self.max_span = min(math.isqrt(max_batch_size), window or max_batch_size)
        if self.max_span < 1:
            raise ValueError(f"window must be >= 1, not {window}")
        self.offsets = offsets
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def first_cuts(self) -> np.ndarray:
        """Per sequence, where its first span ends: ``max_span``, or with offsets a random cut
        in ``[1, max_span]`` for the sequences that do not fit one span."""
        cuts = np.full(len(self.lengths), self.max_span, dtype=np.int64)
        if self.offsets:
            rng = np.random.default_rng([self.seed, self.epoch, 1])
            random_cuts = rng.integers(1, self.max_span, len(self.lengths), endpoint=True)
            cuts = np.where(self.lengths > self.max_span, random_cuts, cuts)
        return cuts

    def spans(self) -> list[Span]:
        """Every sequence as spans of at most ``max_span`` tokens (empty sequences skipped)."""
        out = []
        for index, (length, cut) in enumerate(zip(self.lengths.tolist(),
                                                  self.first_cuts().tolist())):
            starts = [0] + list(range(cut, length, self.max_span)) if length > cut else [0]
            out += [(index, start, min(stop, length))
                    for start, stop in zip(starts, starts[1:] + [length])]
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
