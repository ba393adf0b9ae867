"""Cluster resources of the jobs (notewise.workflow.resources, the `compute:` config section)."""

from __future__ import annotations

import pytest
import yaml

from notewise.workflow.resources import (Node, Request, check_slurm_requests, compute_settings, gres_gpus,
                              parse_sinfo, request_misfit, shard_resources, torchrun_launcher,
                              training_resources)
from notewise.config import REPO_ROOT
from snakekit import make_workdir, snakemake


def test_defaults_come_from_the_schema_and_user_keys_win():
    compute = compute_settings({"compute": {"partition": "short", "shard": {"mem_mb_base": 100}}})
    assert compute["partition"] == "short" and compute["gpu_partition"] is None
    assert compute["shard"] == {"mem_mb_base": 100, "mem_kb_per_sample": 60,
                                "runtime_min_base": 5, "runtime_ms_per_sample": 10}
    assert compute["rules"]["train_pitch"]["mem_mb"] == 16000


def test_shard_jobs_are_sized_by_their_sample_count():
    compute = compute_settings({})
    assert shard_resources(compute, 10_000) == {"mem_mb": 1000, "runtime": 7}
    assert shard_resources(compute, 16) == {"mem_mb": 401, "runtime": 6}


def test_training_asks_for_one_gpu_per_process_only_on_cuda():
    compute = compute_settings({"compute": {"partition": "cpu", "gpu_partition": "gpu"}})
    on_gpu = training_resources(compute, "train_pitch", "cuda", 4)
    assert on_gpu["gpu"] == 4 and on_gpu["slurm_partition"] == "gpu"
    on_cpu = training_resources(compute, "train_pitch", None, 4)
    assert "gpu" not in on_cpu and on_cpu["slurm_partition"] == "cpu"
    assert training_resources(compute, "unnamed_rule", "cpu", 1)["mem_mb"] == 2000


def test_launcher_uses_torchrun_only_for_several_processes():
    assert torchrun_launcher(1, 2) == "OMP_NUM_THREADS=2 notewise"
    assert "torchrun --standalone --nproc_per_node 2 -m notewise" in torchrun_launcher(2, 2)


@pytest.mark.slow
def test_rules_carry_the_resources_in_a_dry_run(tmp_path):
    config = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
    config["pitch_model"] = {"train": {"device": "cuda", "nproc": 2}}
    config["compute"] = {"gpu_partition": "gpu"}
    out = snakemake(make_workdir(tmp_path, config), "-n", "-p", "train_pitch")
    text = out.stdout + out.stderr
    train = text[text.index("rule train_pitch:"):]
    assert "gpu=2" in train and "slurm_partition=gpu" in train and "mem_mb=16000" in train
    assert "torchrun --standalone --nproc_per_node 2 -m notewise train-pitch" in train
    shard = text[text.index("rule generate_shard:"):]
    assert "mem_mb=" in shard.split("rule ", 2)[1]


SINFO = """debug*|2|1800|(null)
gpu|32|256000|gpu:a100:4(S:0-1)
gpu|64|512000|gpu:a100:2,gpu:v100:1
"""


def group_request(cpus, mem_mb=4000, partition=None):
    return Request(job="group job 'shards' (20 jobs)", partition=partition, cpus=cpus,
                   mem_mb=mem_mb, gpus=0, cpus_setting="`cores`", mem_setting="`cores`",
                   gpus_setting="-")


def test_sinfo_gives_each_partitions_nodes_and_the_default():
    partitions, default = parse_sinfo(SINFO)
    assert default == "debug"
    assert partitions["debug"] == [Node(cpus=2, memory_mb=1800, gpus=0)]
    assert partitions["gpu"] == [Node(32, 256000, 4), Node(64, 512000, 3)]
    assert gres_gpus("gpu:8") == 8 and gres_gpus("(null)") == 0 and gres_gpus("gpu") == 1


def test_a_group_job_wider_than_every_node_is_refused_naming_cores():
    """The profile's cores: 4 on a partition of 2-CPU nodes pended forever (PartitionConfig)."""
    sinfo = parse_sinfo(SINFO)
    assert check_slurm_requests([group_request(2, 1000)], sinfo) == []
    with pytest.raises(ValueError, match=r"(?s)PartitionConfig.*group job 'shards'.*partition "
                       r"'debug' \(the cluster's default\).*4 CPUs \(the largest node has 2; "
                       r"lower `cores`\).*mem_mb=4000 \(the largest node has 1800 MB"):
        check_slurm_requests([group_request(4)], sinfo)
    assert request_misfit(group_request(64, 500000, "gpu"), *sinfo) is None  # the 64-CPU node


def test_gpus_and_unknown_partitions_are_named():
    sinfo = parse_sinfo(SINFO)
    training = Request(job="rule train_pitch", partition="gpu", cpus=8, mem_mb=16000, gpus=8,
                       cpus_setting="pitch_model.train.threads", mem_setting="m",
                       gpus_setting="pitch_model.train.nproc")
    assert "8 GPUs (the largest node has 4; change pitch_model.train.nproc)" in \
        request_misfit(training, *sinfo)
    both = Request(job="rule x", partition="gpu", cpus=48, mem_mb=16000, gpus=4,
                   cpus_setting="c", mem_setting="m", gpus_setting="g")
    assert "which no single node has" in request_misfit(both, *sinfo)
    lost = Request(job="rule x", partition="long", cpus=1, mem_mb=1, gpus=0,
                   cpus_setting="c", mem_setting="m", gpus_setting="g")
    assert "partition 'long', which sinfo does not list (it has debug, gpu): set compute.partition" \
        in request_misfit(lost, *sinfo)
    assert check_slurm_requests([lost], None)[0].startswith("notewise: sinfo gave no node sizes")
