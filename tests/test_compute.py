"""Cluster resources of the jobs (notewise.compute, the `compute:` config section)."""

from __future__ import annotations

import pytest
import yaml

from notewise.compute import (compute_settings, shard_resources, torchrun_launcher,
                              training_resources)
from notewise.config import REPO_ROOT
from test_workflow import make_workdir, snakemake


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
