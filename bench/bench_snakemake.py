"""Snakemake's own overhead on the full-size training set (configs/full.yaml: 1,000,000 samples in
100 shards): wall time of ``snakemake -n train_shards`` (plan everything) and of a no-op rerun
(every output present and up to date: nothing runs), in a temporary copy of the workflow.

The outputs of the no-op case are empty placeholder files with increasing modification times in
DAG order, made up to date with ``snakemake --touch`` so that Snakemake's records (params, code)
exist as after a real build; nothing is synthesised.

    .venv/bin/python bench/bench_snakemake.py [--quick] [--repeats 3] [--configfile configs/full.yaml]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workflowkit import copy_workflow, run_snakemake  # noqa: E402

TARGET = "train_shards"


def merged_config(workdir: Path, configfiles: list[str]) -> dict:
    from snakemake.utils import update_config

    config: dict = {}
    for name in configfiles:
        update_config(config, yaml.safe_load((workdir / name).read_text()))
    return config


def placeholder_outputs(workdir: Path, config: dict, dataset: str = "train") -> int:
    """Empty files for every output of ``<dataset>_shards``, older steps older on disk."""
    from notewise.workflow.specs import shard_plan

    root = workdir / "results" / "datasets" / dataset
    shards = [f"shard_{i:05d}" for i in range(len(shard_plan(config, dataset)))]
    stages = [[workdir / "results" / "timbres" / "timbres.npz"],
              [root / kind / f"{s}.{ext}" for s in shards for kind, ext in (("waveforms", "npy"), ("targets", "npz"))],
              [root / "validation" / f"{s}.json" for s in shards],
              [root / "validation.json"], [root / "meta.json"]]
    stamp = time.time() - 3600
    for stage in stages:
        stamp += 10
        for path in stage:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            os.utime(path, (stamp, stamp))
    return sum(len(s) for s in stages)


def snakemake(workdir: Path, configfiles: list[str], *args: str) -> tuple[float, str]:
    return run_snakemake(workdir, "--cores", "1", TARGET, "--configfile", *configfiles, *args)


def main(argv=None) -> int:
    from notewise.workflow.specs import shard_plan

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--configfile", default="configs/full.yaml", help="override of config.yaml")
    parser.add_argument("--quick", action="store_true", help="one repeat of each")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    configfiles = ["config.yaml", args.configfile]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        copy_workflow(workdir)
        config = merged_config(workdir, configfiles)
        dry = min(snakemake(workdir, configfiles, "-n")[0] for _ in range(repeats))
        files = placeholder_outputs(workdir, config)
        snakemake(workdir, configfiles, "--touch")
        noop, output = min(snakemake(workdir, configfiles) for _ in range(repeats))
        if "Nothing to be done" not in output:
            raise SystemExit(f"the rerun was not a no-op:\n{output}")
    samples = sum(count for _, count in shard_plan(config, "train"))
    print(f"{TARGET} with {' + '.join(configfiles)}: {samples:,} samples, {files} output files")
    print(f"  snakemake -n (plan every job)    {dry:6.2f} s wall")
    print(f"  no-op rerun (nothing to do)      {noop:6.2f} s wall")
    print(f"(best of {repeats}; includes Python and Snakemake start-up;"
          f" load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
