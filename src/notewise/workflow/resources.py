"""Cluster resources of the workflow's jobs, from the ``compute`` section of the config.

The rules ask this module for their ``resources:`` (``mem_mb``, ``runtime`` in minutes,
``slurm_partition``, ``gpu``); the SLURM executor turns them into ``sbatch --mem``, ``-t``,
``-p`` and ``--gpus`` (a rule's ``threads`` become ``--cpus-per-task``). Shard jobs are sized by
their sample count; every other rule by name (``compute.rules``) or ``compute.default``.
Defaults live in ``workflow/schemas/config.schema.yaml``. Never imports torch.

Before the first submission (the workflow's ``onstart``, rules/common.smk) every SLURM job's
request is checked against the nodes of its partition (``sinfo``): a job that no node can hold
pends forever (``squeue`` reason ``PartitionConfig``) while Snakemake waits silently, so the run
fails instead, naming the setting to change (:func:`check_slurm_requests`).
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from dataclasses import dataclass

from notewise.config import section_settings
from notewise.workflow.specs import shard_plan


def compute_settings(config: dict) -> dict:
    """The ``compute`` section of ``config`` with every default."""
    return section_settings(config, "compute")


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


# --------------------------------------------------------------------------- SLURM node sizes


@dataclass(frozen=True)
class Node:
    """What one SLURM node offers a job (``sinfo``)."""
    cpus: int
    memory_mb: int
    gpus: int


@dataclass(frozen=True)
class Request:
    """What one cluster job (a rule's job, or a group job) asks for, and the settings behind it."""
    job: str            # "rule train_pitch", "group job shards (10 components)"
    partition: str | None  # None: the cluster's default partition
    cpus: int
    mem_mb: int | None
    gpus: int
    cpus_setting: str
    mem_setting: str
    gpus_setting: str


SINFO_FORMAT = "%P|%c|%m|%G"
#: Settings behind a rule's threads and GPUs, where a config key decides them.
THREAD_SETTINGS = {"train_pitch": "pitch_model.train.threads"}
GPU_SETTINGS = {"train_pitch": "pitch_model.train.nproc", "midi_train": "midi.train.nproc",
                "evaluate_pitch": "pitch_model.evaluate.device"}


def _leading_int(text: str) -> int:
    match = re.match(r"\d+", text.strip())
    return int(match.group()) if match else 0


def gres_gpus(gres: str) -> int:
    """GPUs in a ``sinfo %G`` field (``gpu:4``, ``gpu:a100:2(S:0-1),gpu:v100:1``, ``(null)``)."""
    total = 0
    for item in gres.split(","):
        parts = item.split("(")[0].split(":")
        if parts[0] == "gpu":
            total += _leading_int(parts[-1]) if len(parts) > 1 else 1
    return total


def parse_sinfo(text: str) -> tuple[dict[str, list[Node]], str | None]:
    """``sinfo -h -N -o '%P|%c|%m|%G'`` -> ({partition: its nodes}, the default partition)."""
    partitions: dict[str, list[Node]] = {}
    default = None
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 4:
            continue
        name, cpus, memory, gres = fields
        if name.endswith("*"):
            name = default = name[:-1]
        partitions.setdefault(name, []).append(
            Node(cpus=_leading_int(cpus), memory_mb=_leading_int(memory), gpus=gres_gpus(gres)))
    return partitions, default


def read_sinfo(timeout: float = 30) -> tuple[dict[str, list[Node]], str | None] | None:
    """The cluster's partitions and default partition, or None where ``sinfo`` cannot tell."""
    if shutil.which("sinfo") is None:
        return None
    try:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", SINFO_FORMAT], capture_output=True,
                             text=True, timeout=timeout, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    partitions, default = parse_sinfo(out)
    return (partitions, default) if partitions else None


def _fits(request: Request, node: Node) -> bool:
    return (request.cpus <= node.cpus and request.gpus <= node.gpus
            and (request.mem_mb is None or node.memory_mb <= 1 or request.mem_mb <= node.memory_mb))


def request_misfit(request: Request, partitions: dict[str, list[Node]],
                   default: str | None) -> str | None:
    """Why no node of the request's partition can ever run it (naming the setting), or None."""
    partition = request.partition or default
    if partition is None:
        return None
    where = f"partition {partition!r}" + (" (the cluster's default)" if not request.partition else "")
    if partition not in partitions:
        return (f"{request.job} asks for partition {partition!r}, which sinfo does not list "
                f"(it has {', '.join(sorted(partitions))}): set compute.partition / "
                "compute.gpu_partition")
    nodes = partitions[partition]
    if any(_fits(request, node) for node in nodes):
        return None
    largest = Node(max(n.cpus for n in nodes), max(n.memory_mb for n in nodes),
                   max(n.gpus for n in nodes))
    problems = []
    if request.cpus > largest.cpus:
        problems.append(f"{request.cpus} CPUs (the largest node has {largest.cpus}; "
                        f"lower {request.cpus_setting})")
    if request.mem_mb is not None and largest.memory_mb > 1 and request.mem_mb > largest.memory_mb:
        problems.append(f"mem_mb={request.mem_mb} (the largest node has {largest.memory_mb} MB; "
                        f"lower {request.mem_setting})")
    if request.gpus > largest.gpus:
        problems.append(f"{request.gpus} GPUs (the largest node has {largest.gpus}; "
                        f"change {request.gpus_setting})")
    if not problems:
        problems.append(f"{request.cpus} CPUs, mem_mb={request.mem_mb} and {request.gpus} GPUs "
                        "together, which no single node has")
    return f"{request.job} on {where} asks for " + "; ".join(problems)


def check_slurm_requests(requests: list[Request],
                         sinfo: tuple[dict[str, list[Node]], str | None] | None) -> list[str]:
    """Raise ``ValueError`` listing every request that no node of its partition can hold (it
    would pend forever); returns warnings (nothing could be checked)."""
    if sinfo is None:
        return ["notewise: sinfo gave no node sizes; SLURM requests are not checked against them"]
    misfits = dict.fromkeys(m for r in requests if (m := request_misfit(r, *sinfo)) is not None)
    if misfits:
        raise ValueError("SLURM jobs that no node can run (they would pend forever, squeue "
                         "reason PartitionConfig):\n  " + "\n  ".join(misfits))
    return []


def mem_setting(compute: dict, rule: str) -> str:
    """The config key behind a rule's ``mem_mb`` (``--set-resources RULE:mem_mb=`` also sets it)."""
    if rule in ("generate_shard", "validate_shard"):
        return "compute.shard.mem_mb_base/mem_kb_per_sample"
    return f"compute.rules.{rule}.mem_mb" if rule in compute["rules"] else "compute.default.mem_mb"


def _plugin_cpus(job) -> int:
    """The CPUs the SLURM executor will ask for (its own rule), or the job's threads."""
    try:
        from snakemake_executor_plugin_slurm.partitions import get_job_cpu_requirement
    except ImportError:
        return int(job.threads)
    return get_job_cpu_requirement(job)[0]


def job_request(job, compute: dict) -> Request:
    """The :class:`Request` of a Snakemake job or group job about to be submitted."""
    resources = job.resources
    mem_mb = resources.get("mem_mb")
    gpus = int(resources.get("gpu", 0) or 0)
    if job.is_group():
        members = sorted({member.rule.name for member in job.jobs})
        return Request(
            job=f"group job {job.groupid!r} ({len(job.jobs)} jobs of {', '.join(members)})",
            partition=resources.get("slurm_partition") or None, cpus=_plugin_cpus(job),
            mem_mb=mem_mb, gpus=gpus,
            cpus_setting="`cores` (the profile's cores:, or --cores: it caps a group job's CPUs)",
            mem_setting=f"`cores` or {', '.join(mem_setting(compute, m) for m in members)}",
            gpus_setting="the members' GPU settings")
    rule = job.rule.name
    return Request(
        job=f"rule {rule}", partition=resources.get("slurm_partition") or None,
        cpus=_plugin_cpus(job), mem_mb=mem_mb, gpus=gpus,
        cpus_setting=THREAD_SETTINGS.get(rule, f"the threads of rule {rule}"),
        mem_setting=mem_setting(compute, rule),
        gpus_setting=GPU_SETTINGS.get(rule, f"the gpu resource of rule {rule}"))


def submitted_jobs(dag) -> list:
    """The cluster jobs a run will submit: each needed job, or the group job holding it, once."""
    units = {}
    for job in dag.needrun_jobs():
        if not job.is_local:
            unit = dag.get_job_group(job) or job
            units.setdefault(id(unit), unit)
    return list(units.values())


def check_workflow_on_slurm(workflow, compute: dict) -> list[str]:
    """For the workflow's ``onstart``: under the SLURM executor, :func:`check_slurm_requests` of
    every job about to be submitted (raises ``ValueError``); returns warnings."""
    plugin = workflow.executor_plugin
    if plugin is None or plugin.cli_prefix != "slurm":
        return []
    requests = [job_request(unit, compute) for unit in submitted_jobs(workflow.dag)]
    return check_slurm_requests(requests, read_sinfo())
