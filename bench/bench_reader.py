"""Read throughput of ``DatasetReader`` in samples/s, next to the seed's table and our targets.

    .venv/bin/python bench/bench_reader.py [--quick] [--shards 4] [--shard-size 4096] [--seconds 3]

Writes a current-format dataset of synthetic shards (``bench_writes.synthetic_shard``: float32
waveforms, float16 Gaussian targets, note table) into a temporary directory, then times, each for
about ``--seconds`` of wall time on one thread, the best half-second slice of it (page cache warm:
the files were just written):

* random single     ``reader[i]`` for random i, ``preload=False`` (mmap + cached targets)
* sorted batch 64   ``reader.get_batch(sorted random 64)``, ``preload=False``: ready float32 tensors
* sequential 64     ``get_batch`` of consecutive runs of 64, ``preload=False``
* epoch, loader     the best of three epochs of ``BatchLoader(ShardBatchSampler(batch 64))``,
                    ``preload=False``, each through a fresh reader with a cold targets cache
                    (every shard's targets inflated once inside the timing, the next shard's
                    in a read-ahead thread): what a training epoch sees
* preloaded 64      ``get_batch(sorted random 64)``, ``preload=True``
* waveform gather   the preloaded waveform rows alone (``index_select``), no targets
* memory copy       64 consecutive samples' bytes copied into preallocated arrays, no gather,
                    no conversion: what the machine's memory allows, measured in the same run
* and, last, the preloaded batch again with torch's default number of threads

The seed's figures (mmap random 9,000, sequential 15,000, in memory 50,000 samples/s) and the
targets (10x the seed's mmap figures through the batch path; 250,000 samples/s preloaded) are
printed beside each measurement.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from bench_writes import synthetic_shard  # noqa: E402
from notewise.store.meta import write_meta, writer_meta  # noqa: E402
from notewise.loading.batches import BatchLoader, ShardBatchSampler
from notewise.loading.reader import DatasetReader
from notewise.store.layout import targets_path, waveform_path
from notewise.store.shards import write_shard

SEED_TABLE = {"mmap random": 9_000, "sequential": 15_000, "in memory": 50_000}
BATCH = 64


def write_dataset(root: Path, shards: int, shard_size: int) -> None:
    entries = []
    for index in range(shards):
        data = synthetic_shard(shard_size, seed=index)
        written = write_shard(waveform_path(root, index), targets_path(root, index), data)
        entries.append({"index": index, **written})
    write_meta(root / "meta.json", writer_meta(entries, {}, window=4096, n_bins=2048, note_table=True))


def rate(step, seconds: float, slice_seconds: float = 0.5) -> float:
    """Samples/s of ``step()`` (which returns how many samples it read), run for ``seconds``:
    the best ``slice_seconds`` slice (the machine is shared; the least disturbed slice is the one
    that measures the code, as the best of several runs elsewhere in bench/)."""
    step()  # warm: first touch, caches
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        samples, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < min(slice_seconds, seconds):
            samples += step()
        best = max(best, samples / elapsed)
    return best


def random_single(reader, rng):
    def step():
        for i in rng.integers(0, len(reader), BATCH):
            reader[int(i)]
        return BATCH
    return step


def sorted_batch(reader, rng):
    def step():
        batch = reader.get_batch(np.sort(rng.integers(0, len(reader), BATCH)))
        return len(batch["waveform"])
    return step


def sequential(reader):
    position = [0]

    def step():
        start = position[0] if position[0] + BATCH <= len(reader) else 0
        position[0] = start + BATCH
        return len(reader.get_batch(np.arange(start, start + BATCH))["waveform"])
    return step


def memory_copy(reader, rng):
    """The reference for preloaded reads: what a plain memory copy allows, 64 consecutive samples
    (waveform float32 and both float16 target rows, 24 KB a sample) copied into preallocated
    arrays, no gather and no conversion."""
    sources = [t.numpy() for t in reader._data.values()]
    outs = [np.empty((BATCH, *a.shape[1:]), a.dtype) for a in sources]

    def step():
        start = int(rng.integers(0, len(reader) - BATCH))
        for source, out in zip(sources, outs):
            np.copyto(out, source[start:start + BATCH])
        return BATCH
    return step


def waveform_gather(reader, rng):
    """What the preloaded batch spends most on: gathering 64 random 16 KB waveform rows."""
    waveforms = reader._data["waveform"]

    def step():
        rows = torch.from_numpy(np.sort(rng.integers(0, len(reader), BATCH)))
        return len(waveforms.index_select(0, rows))
    return step


def loader_epoch(root: Path, repeats: int = 3) -> float:
    """The best of ``repeats`` epochs, each through a fresh reader (no decompressed targets)."""
    def epoch() -> float:
        reader = DatasetReader(root, preload=False)
        sampler = ShardBatchSampler(reader, BATCH, shuffle=True, seed=0)
        start, samples = time.perf_counter(), 0
        for batch in BatchLoader(reader, sampler, prefetch=2):
            samples += len(batch["waveform"])
        return samples / (time.perf_counter() - start)
    return max(epoch() for _ in range(repeats))


def report(rows) -> None:
    print(f"{'read':<30} {'samples/s':>12}  {'seed':>8}  {'target':>9}  ok")
    for name, value, seed, target in rows:
        ok = "-" if target is None else ("yes" if value >= target else "NO")
        seed_text = f"{seed:,}" if seed else "-"
        target_text = f"{target:,}" if target else "-"
        print(f"{name:<30} {value:>12,.0f}  {seed_text:>8}  {target_text:>9}  {ok}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--shard-size", type=int, default=4096)
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per measurement")
    parser.add_argument("--quick", action="store_true", help="2 shards of 1024, 0.5 s each")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.quick:
        args.shards, args.shard_size, args.seconds = 2, 1024, 0.5
    default_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp) / "bench"
        write_dataset(root, args.shards, args.shard_size)
        lazy = DatasetReader(root, preload=False, cache_shards=max(8, args.shards))
        rows = [
            ("random single (mmap)", rate(random_single(lazy, rng), args.seconds), SEED_TABLE["mmap random"], None),
            ("sorted random batch 64 (mmap)", rate(sorted_batch(lazy, rng), args.seconds), SEED_TABLE["mmap random"], 90_000),
            ("sequential batch 64 (mmap)", rate(sequential(lazy), args.seconds), SEED_TABLE["sequential"], 150_000),
            ("epoch, BatchLoader (mmap)", loader_epoch(root), SEED_TABLE["mmap random"], None),
        ]
        eager = DatasetReader(root, preload=True)
        rows.append(("preloaded batch 64", rate(sorted_batch(eager, rng), args.seconds), SEED_TABLE["in memory"], 250_000))
        rows.append(("waveform rows alone, index_select", rate(waveform_gather(eager, rng), args.seconds), None, None))
        rows.append(("memory copy, 64 samples", rate(memory_copy(eager, rng), args.seconds), None, None))
        torch.set_num_threads(default_threads)
        threaded = rate(sorted_batch(eager, rng), args.seconds)
    print(f"{args.shards} shards x {args.shard_size} samples (4096 float32 + 2 x 2048 float16 each),"
          f" one thread, page cache warm; batch reads return float32 torch tensors")
    report(rows)
    print(f"preloaded batch / memory copy, same run: {rows[-3][1] / rows[-1][1]:.2f}"
          " (the issue's 250,000 is about half of this machine's memory copy)")
    print(f"preloaded batch 64 with torch's default {default_threads} threads (as a training"
          f" process has them): {threaded:,.0f} samples/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
