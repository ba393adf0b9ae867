"""Helpers the workflow benchmarks share: a copy of the workflow in a scratch directory and a
timed ``snakemake`` run in it (with this interpreter's environment, so jobs find ``notewise``)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ("Snakefile", "rules", "workflow", "envs", "config.yaml", "configs")


def copy_workflow(destination: Path) -> None:
    """The workflow's files (Snakefile, rules, profiles, schemas, envs, configs) into
    ``destination``, which must not hold them yet."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, destination / name)
        elif source.exists():
            shutil.copy(source, destination / name)


def run_snakemake(workdir: Path, *args: str) -> tuple[float, str]:
    """(wall seconds, output) of ``snakemake ARGS`` in ``workdir``; exits naming the command if
    it fails."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "snakemake", *args]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return seconds, proc.stdout + proc.stderr
