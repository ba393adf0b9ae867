"""Batches of a shard dataset: ``ShardBatchSampler`` (batches that stay within one shard:
shuffled shard order, shuffled order inside each shard, sorted inside each batch, so each shard's
targets are decompressed once per epoch) and ``BatchLoader`` (runs ``DatasetReader.get_batch`` in
a background thread and hands out ready tensors, while a second thread inflates the next shard's
targets). See ``notewise.loading.reader`` for the reader itself.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import numpy as np
import torch

from notewise.loading.reader import DatasetReader

# --------------------------------------------------------------------------- batch sampling


def _bounds_of(reader_or_len) -> list[tuple[int, int]]:
    if isinstance(reader_or_len, int):
        return [(0, reader_or_len)]
    if hasattr(reader_or_len, "shard_bounds"):
        return list(reader_or_len.shard_bounds)
    sizes, bounds, start = list(reader_or_len), [], 0  # a sequence of shard sizes
    for size in sizes:
        bounds.append((start, int(size)))
        start += int(size)
    return bounds


class ShardBatchSampler(torch.utils.data.Sampler):
    """Batches of sorted indices that mostly stay inside one shard, deterministic per epoch.

    Each epoch (``set_epoch``) draws, from ``(seed, epoch)`` alone, a shard order and an order
    inside each shard (``mix_shards`` > 1 shuffles groups of that many shards together, for data
    whose shards are ordered, e.g. the sanity set by bin), cuts it into batches and sorts each.
    Every index appears at most once per epoch.

    DDP: ranks get disjoint contiguous runs of batches and the same number of steps. The last
    step's indices are split evenly over the ranks; with ``drop_last`` the incomplete last step
    is dropped instead. With one rank and ``drop_last=False`` every index appears exactly once;
    with more, up to ``world_size - 1`` indices are skipped when fewer than that are left over.
    """

    def __init__(self, reader_or_len, batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, rank: int = 0, world_size: int = 1, mix_shards: int = 1):
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size or mix_shards < 1:
            raise ValueError(f"need batch_size >= 1, 0 <= rank < world_size, mix_shards >= 1; got"
                             f" {batch_size}, {rank}, {world_size}, {mix_shards}")
        self.bounds = _bounds_of(reader_or_len)
        self.num_samples = sum(n for _, n in self.bounds)
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.rank, self.world_size, self.mix_shards = rank, world_size, mix_shards
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _epoch_order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.num_samples)
        rng = np.random.default_rng([self.seed, self.epoch])
        shard_order = rng.permutation(len(self.bounds))
        parts = []
        for g in range(0, len(shard_order), self.mix_shards):
            group = [np.arange(s, s + n) for s, n in (self.bounds[k] for k in shard_order[g: g + self.mix_shards])]
            parts.append(rng.permutation(np.concatenate(group)))
        return np.concatenate(parts) if parts else np.arange(0)

    def _steps(self) -> tuple[int, int]:
        """(full steps, whether a last uneven step follows) for every rank."""
        per_step = self.batch_size * self.world_size
        full, rest = divmod(self.num_samples, per_step)
        last = not self.drop_last and rest >= self.world_size
        return full, int(last)

    def __len__(self) -> int:
        return sum(self._steps())

    def __iter__(self) -> Iterator[np.ndarray]:
        order = self._epoch_order()
        full, last = self._steps()
        b, w, r = self.batch_size, self.world_size, self.rank
        mine = order[r * full * b: (r + 1) * full * b]  # a contiguous run of full batches
        for k in range(full):
            yield np.sort(mine[k * b: (k + 1) * b])
        if last:
            yield np.sort(np.array_split(order[full * b * w:], w)[r])


# --------------------------------------------------------------------------- loading loop


class BatchLoader:
    """Iterate ``reader.get_batch(batch)`` over ``sampler``'s batches, ``prefetch`` batches ahead
    in a background thread (0: inline). Batches are pinned when CUDA is available (or as
    ``pin_memory`` says) and moved to ``device`` if one is given."""

    _DONE = object()

    def __init__(self, reader: DatasetReader, sampler: ShardBatchSampler, prefetch: int = 2,
                 device=None, pin_memory: bool | None = None):
        self.reader, self.sampler, self.prefetch = reader, sampler, max(0, int(prefetch))
        self.device = torch.device(device) if device is not None else None
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def _load(self, indices) -> dict[str, torch.Tensor]:
        batch = self.reader.get_batch(indices)
        if self.pin_memory and batch["waveform"].device.type == "cpu":
            batch = {k: v.pin_memory() for k, v in batch.items()}
        return batch

    def _deliver(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.device is None:
            return batch
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        if self.prefetch == 0:
            for indices in self.sampler:
                yield self._deliver(self._load(indices))
            return
        ready: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        worker = threading.Thread(target=self._produce, args=(iter(self.sampler), ready, stop), daemon=True)
        worker.start()
        try:
            while (item := ready.get()) is not self._DONE:
                if isinstance(item, BaseException):
                    raise item
                yield self._deliver(item)
        finally:
            stop.set()
            while worker.is_alive():  # unblock a producer waiting on a full queue
                try:
                    ready.get(timeout=0.05)
                except queue.Empty:
                    pass
            worker.join()

    def _produce(self, batches, ready: queue.Queue, stop: threading.Event) -> None:
        ahead = _ShardLookahead(self.reader)
        try:
            for indices in ahead.batches(batches):
                if stop.is_set():
                    return
                ready.put(self._load(indices))
            ready.put(self._DONE)
        except BaseException as exc:  # hand the error to the consumer
            ready.put(exc)
        finally:
            ahead.close()


class _ShardLookahead:
    """Decompresses the next shard's targets in a helper thread while the current shard's
    batches are gathered (zlib releases the GIL), for readers with ``prefetch_shard``.

    The next shard (in order of first use) is loaded once a batch that first touches a shard has
    been read. A batch may span two shards, so the cache must hold three (current, previous,
    next) for the read-ahead not to evict what is still needed; with a smaller cache it is off."""

    def __init__(self, reader):
        self.reader = reader
        self.active = (hasattr(reader, "prefetch_shard") and getattr(reader, "_data", 1) is None
                       and getattr(reader, "cache_shards", 0) >= 3)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="shard-prefetch") if self.active else None

    def batches(self, batches) -> Iterator[np.ndarray]:
        if not self.active:
            yield from batches
            return
        batches = list(batches)
        order: list[int] = []  # shards in order of first use
        first_use: list[int] = []  # batch -> position in ``order`` of its first new shard, or -1
        seen: set[int] = set()
        for indices in batches:
            new = [s for s in self.reader.shards_of(indices).tolist() if s not in seen]
            first_use.append(len(order) if new else -1)
            order.extend(new)
            seen.update(new)
        for indices, position in zip(batches, first_use):
            yield indices
            # after the batch that first uses shard ``order[position]`` has been read: the cache
            # then holds what that batch needs as most recent, so the insert evicts an older one
            if position >= 0 and position + 1 < len(order):
                self.pool.submit(self.reader.prefetch_shard, order[position + 1])

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
