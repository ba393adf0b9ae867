"""What ``DatasetReader(verify=True)`` costs, next to a training epoch of the default pitch model.

    .venv/bin/python bench/bench_verify.py [--shards 4] [--shard-size 4096] [--steps 20]

Writes a dataset of synthetic current-format shards (``bench_reader.write_dataset``; page cache
warm), then, interleaved round by round (best of three, ``timing.best_interleaved``):

* epoch, mmap        one epoch through ``BatchLoader(ShardBatchSampler(batch 32))`` with a fresh
                     reader (cold targets cache), ``verify=False`` and ``verify=True``: verify
                     checks every shard once, in that epoch;
* preload            ``DatasetReader(preload=True)`` with and without ``verify`` (the training
                     rules preload by default, so the check is paid once, at the start);
* checksums alone    the CRC-32 passes verify adds, by themselves: every shard's waveform bytes
                     and inflated target members (an upper bound that no loader noise hides);

and the default pitch training's throughput on the same data (``bench_pitch_train.train_steps``:
width 16, batch 32, 2 threads, preloaded, ``--steps`` steps), which gives the seconds of one
training epoch over these samples. Prints each extra cost as a share of that epoch.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from bench_pitch_train import train_steps  # noqa: E402
from bench_reader import write_dataset  # noqa: E402
from notewise.store.npzfile import crc32  # noqa: E402
from notewise.loading.batches import BatchLoader, ShardBatchSampler
from notewise.loading.reader import DatasetReader, read_target_arrays
from notewise.store.shards import waveform_crc32  # noqa: E402
from notewise.pitch.model import PitchModel, PitchModelConfig  # noqa: E402
from notewise.pitch.train import PitchTrainTask  # noqa: E402
from timing import best_interleaved  # noqa: E402

BATCH = 32


def loader_epoch(root: Path, verify: bool):
    def epoch() -> None:
        reader = DatasetReader(root, verify=verify)
        for _ in BatchLoader(reader, ShardBatchSampler(reader, BATCH, shuffle=True), prefetch=2):
            pass
    return epoch


def preload(root: Path, verify: bool):
    return lambda: DatasetReader(root, preload=True, verify=verify)


def checksums(root: Path):
    reader = DatasetReader(root)
    arrays = [read_target_arrays(s.targets) for s in reader.layout.shards]

    def run() -> None:
        for shard, targets in enumerate(arrays):
            waveform_crc32(reader._waveforms(shard))
            for member in targets.values():
                crc32(memoryview(member.reshape(-1)).cast("B"))
    return run


def training_epoch_seconds(root: Path, samples: int, steps: int) -> float:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    task = PitchTrainTask(DatasetReader(root, preload=True), None, BATCH, noise_prob=0.3)
    return samples / train_steps(task, PitchModel(PitchModelConfig(width=16)), steps)["samples_per_s"]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--shard-size", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    samples = args.shards * args.shard_size
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ds"
        write_dataset(root, args.shards, args.shard_size)
        times = best_interleaved({"epoch": loader_epoch(root, False),
                                  "epoch, verify": loader_epoch(root, True),
                                  "preload": preload(root, False),
                                  "preload, verify": preload(root, True),
                                  "checksums alone": checksums(root)})
        train = training_epoch_seconds(root, samples, args.steps)
    result = {"samples": samples, "training_epoch_s": train, **times,
              "verify_extra_mmap_s": times["epoch, verify"] - times["epoch"],
              "verify_extra_preload_s": times["preload, verify"] - times["preload"]}
    result["verify_share_of_training_epoch_mmap"] = result["verify_extra_mmap_s"] / train
    result["verify_share_of_training_epoch_preload"] = result["verify_extra_preload_s"] / train
    result["checksums_share_of_training_epoch"] = times["checksums alone"] / train
    for key, value in result.items():
        print(f"{key:>40}: {value:.4g}" if isinstance(value, float) else f"{key:>40}: {value}")
    return result


if __name__ == "__main__":
    main()
