"""Pitch-model training throughput and the share of step time spent waiting for data.

    .venv/bin/python bench/bench_pitch_train.py DATASET_DIR [--steps 30] [--batch-size 32]
        [--threads 2] [--width 16] [--preload | --no-preload]

Runs ``--steps`` optimizer steps of the real training task (``PitchTrainTask``: the data
pipeline's ``ShardBatchSampler`` and ``BatchLoader`` over ``DatasetReader.get_batch``, noise
augmentation, the model, the loss, AdamW) and reports samples/s, ms per step split into
forward+backward+update and data wait, and the data-wait share: time the loop waited for the next
batch over the time between batches (the figure every training epoch also logs as
``train_data_wait_share`` in ``metrics.json``). The first two steps are warm-up and not counted.
Also times the loader alone (no model) to show how far ahead of the model it is.
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch

from notewise.pitch.model import PitchModel, PitchModelConfig, count_parameters
from notewise.pitch.train import PitchTrainTask, open_dataset

WARMUP = 2


def train_steps(task: PitchTrainTask, model: torch.nn.Module, steps: int) -> dict:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    batches = itertools.islice(task.train_batches(0, 0, 1), steps + WARMUP)
    wait = busy = 0.0
    start = None
    for i, batch in enumerate(batches):
        if i == WARMUP:
            start = time.perf_counter()
        elif i > WARMUP:
            wait, busy = wait + batch.wait_s, busy + batch.busy_s
        result = task.step(model, batch, torch.device("cpu"))
        result.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - start
    counted = steps - 1  # busy_s of a batch measures the step before it
    return {"steps": steps, "samples_per_s": steps * task.batch_size / seconds,
            "ms_per_step": 1000 * seconds / steps, "compute_ms_per_step": 1000 * busy / counted,
            "wait_ms_per_step": 1000 * wait / counted,
            "data_wait_share": wait / (wait + busy) if wait + busy else 0.0}


def loader_only(task: PitchTrainTask, steps: int) -> float:
    start = time.perf_counter()
    count = sum(1 for _ in itertools.islice(task.train_batches(1, 0, 1), steps))
    return count * task.batch_size / (time.perf_counter() - start)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="a dataset directory (meta.json + shards)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--preload", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = PitchModel(PitchModelConfig(width=args.width))
    task = PitchTrainTask(open_dataset(args.dataset, args.preload), None, args.batch_size,
                          noise_prob=0.3)
    result = {"parameters": count_parameters(model), "threads": args.threads,
              "batch_size": args.batch_size, "preload": args.preload,
              **train_steps(task, model, args.steps),
              "loader_only_samples_per_s": loader_only(task, args.steps)}
    for key, value in result.items():
        print(f"{key:>26}: {value:.4g}" if isinstance(value, float) else f"{key:>26}: {value}")
    return result


if __name__ == "__main__":
    main()
