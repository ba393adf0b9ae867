"""The full-size training-data build, measured: the figures of docs/benchmarks.md.

In a temporary copy of the workflow (never in the repository), with the repository's config.yaml
and ``datasets.train`` resized:

1. ``snakemake --profile workflow/profiles/local -j JOBS train_shards`` from nothing: wall time,
   samples/s, disk of the dataset, and per shard job (from results/benchmarks/*/train/*.tsv) the
   peak memory (max_rss), wall and CPU seconds;
2. the same command again (a no-op rerun): wall time, and the check that it ran no job;
3. ``snakemake -n train_shards`` for a ``--dry-samples`` config (10,000,000 by default): wall time
   and job count.

    python bench/bench_full_build.py                         # 1,000,000 samples, 100 shards, -j 2
    python bench/bench_full_build.py --samples 40000 --jobs 2   # a quick check of the script

Prints a Markdown table and writes the figures as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workflowkit import REPO, copy_workflow, run_snakemake as snakemake  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=1_000_000)
    p.add_argument("--shard-size", type=int, default=10_000)
    p.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1)
    p.add_argument("--dry-samples", type=int, default=10_000_000)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/notewise-full-build"))
    p.add_argument("--keep", action="store_true", help="keep the work directory (default: delete)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    return p.parse_args(argv)


def make_workdir(path: Path, samples: int, shard_size: int) -> Path:
    if path.exists():
        shutil.rmtree(path)
    copy_workflow(path)
    write_config(path, samples, shard_size)
    return path


def write_config(path: Path, samples: int, shard_size: int) -> None:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["datasets"]["train"].update(num_samples=samples, shard_size=shard_size)
    (path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def job_benchmarks(workdir: Path, rule: str) -> list[dict[str, float]]:
    rows = []
    for path in sorted((workdir / "results" / "benchmarks" / rule / "train").glob("*.tsv")):
        with open(path) as fh:
            row = next(csv.DictReader(fh, delimiter="\t"))
        rows.append({k: float(row[k]) for k in ("s", "max_rss", "cpu_time")})
    return rows


def summarise(rows: list[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return {}
    return {"jobs": len(rows),
            "peak_rss_mb_max": max(r["max_rss"] for r in rows),
            "wall_s_mean": sum(r["s"] for r in rows) / len(rows),
            "cpu_s_mean": sum(r["cpu_time"] for r in rows) / len(rows),
            "cpu_s_total": sum(r["cpu_time"] for r in rows)}


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def job_count(dry_run_output: str) -> int:
    """The ``total`` row of snakemake's job-stats table."""
    for line in dry_run_output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "total":
            return int(parts[1])
    return -1


def measure(args: argparse.Namespace) -> dict:
    workdir = make_workdir(args.workdir, args.samples, args.shard_size)
    profile = ("--profile", "workflow/profiles/local", "-j", str(args.jobs))
    build_s, _ = snakemake(workdir, "train_shards", *profile)
    rerun_s, rerun_out = snakemake(workdir, "train_shards", *profile)
    figures = {
        "samples": args.samples, "shard_size": args.shard_size, "jobs": args.jobs,
        "cpus": os.cpu_count(), "build_s": build_s, "samples_per_s": args.samples / build_s,
        "disk_bytes": disk_bytes(workdir / "results" / "datasets" / "train"),
        "generate_shard": summarise(job_benchmarks(workdir, "generate_shard")),
        "validate_shard": summarise(job_benchmarks(workdir, "validate_shard")),
        "noop_rerun_s": rerun_s, "noop_rerun_ran_nothing": "Nothing to be done" in rerun_out,
    }
    write_config(workdir, args.dry_samples, args.shard_size)
    dry_s, dry_out = snakemake(workdir, "train_shards", "-n", "--quiet", "rules")
    figures.update(dry_samples=args.dry_samples, dry_run_s=dry_s, dry_run_jobs=job_count(dry_out))
    if not args.keep:
        shutil.rmtree(workdir)
    return figures


def table(f: dict) -> str:
    gen, val = f["generate_shard"], f["validate_shard"]
    rows = [
        ("build (`-j %d`, %d CPUs), %s samples in %d shards" % (f["jobs"], f["cpus"], f"{f['samples']:,}", gen["jobs"]),
         f"{f['build_s']:.1f} s"),
        ("throughput", f"{f['samples_per_s']:,.0f} samples/s"),
        ("disk (waveforms + targets + validation + meta)", f"{f['disk_bytes'] / 1e9:.2f} GB"),
        ("generate_shard: peak RSS (max over jobs)", f"{gen['peak_rss_mb_max']:.0f} MB"),
        ("generate_shard: wall / CPU per job (mean)", f"{gen['wall_s_mean']:.2f} s / {gen['cpu_s_mean']:.2f} s"),
        ("validate_shard: peak RSS (max over jobs)", f"{val['peak_rss_mb_max']:.0f} MB"),
        ("validate_shard: wall / CPU per job (mean)", f"{val['wall_s_mean']:.2f} s / {val['cpu_s_mean']:.2f} s"),
        ("no-op rerun" + ("" if f["noop_rerun_ran_nothing"] else " (RAN JOBS!)"), f"{f['noop_rerun_s']:.1f} s"),
        (f"`snakemake -n` for {f['dry_samples']:,} samples ({f['dry_run_jobs']} jobs)", f"{f['dry_run_s']:.1f} s"),
    ]
    return "\n".join(["| measure | value |", "| --- | --- |"] + [f"| {a} | {b} |" for a, b in rows])


def main(argv=None) -> int:
    args = parse_args(argv)
    figures = measure(args)
    print(table(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if figures["noop_rerun_ran_nothing"] else 1


if __name__ == "__main__":
    sys.exit(main())
