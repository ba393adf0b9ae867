"""Cluster resources of the workflow's jobs, from the ``compute`` section of the config.

The rules ask this module for their ``resources:`` (``mem_mb``, ``runtime`` in minutes,
``slurm_partition``, ``gpu``); the SLURM executor turns them into ``sbatch --mem``, ``-t``,
``-p`` and ``--gpus`` (a rule's ``threads`` become ``--cpus-per-task``). Shard jobs are sized by
their sample count; every other rule by name (``compute.rules``) or ``compute.default``.
Defaults live in ``workflow/schemas/config.schema.yaml``. Never imports torch.
"""

from __future__ import annotations

import math

from notewise.config import fill_defaults, load_schema, shard_plan


def compute_settings(config: dict) -> dict:
    """The ``compute`` section of ``config`` with every default."""
    return fill_defaults(load_schema()["properties"]["compute"], config.get("compute") or {})


def shard_count(config: dict, dataset: str, shard: int) -> int:
    return shard_plan(config, dataset)[shard][1]


def shard_resources(compute: dict, count: int) -> dict:
    """``mem_mb`` and ``runtime`` (minutes) of a job that generates or validates ``count`` samples."""
    shard = compute["shard"]
    mem_mb = shard["mem_mb_base"] + math.ceil(count * shard["mem_kb_per_sample"] / 1000)
    runtime = shard["runtime_min_base"] + math.ceil(count * shard["runtime_ms_per_sample"] / 60000)
    return {"mem_mb": mem_mb, "runtime": runtime}


def rule_resources(compute: dict, rule: str) -> dict:
    """``mem_mb`` and ``runtime`` of ``rule`` (``compute.rules[rule]`` or ``compute.default``)."""
    return dict(compute["rules"].get(rule, compute["default"]))


def gpu_count(device: str | None, nproc: int) -> int:
    """GPUs a training job asks for: one per process when its device is CUDA, else none."""
    return nproc if device is not None and str(device).startswith("cuda") else 0


def partition(compute: dict, gpus: int = 0) -> str | None:
    if gpus and compute["gpu_partition"]:
        return compute["gpu_partition"]
    return compute["partition"]


def training_resources(compute: dict, rule: str, device: str | None, nproc: int) -> dict:
    """Resources of a training rule: memory/runtime by name, GPUs when the device is CUDA."""
    gpus = gpu_count(device, nproc)
    resources = rule_resources(compute, rule)
    if gpus:
        resources["gpu"] = gpus
        if compute["gpu_model"]:
            resources["gpu_model"] = compute["gpu_model"]
    if partition(compute, gpus):
        resources["slurm_partition"] = partition(compute, gpus)
    return resources


def torchrun_launcher(nproc: int, threads: int) -> str:
    """The command prefix of a training job: ``notewise`` in one process, or under torchrun."""
    if nproc > 1:
        return (f"OMP_NUM_THREADS={max(1, threads // nproc)} "
                f"torchrun --standalone --nproc_per_node {nproc} -m notewise")
    return f"OMP_NUM_THREADS={threads} notewise"
