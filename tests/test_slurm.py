"""The workflow through a REAL single-node SLURM cluster (workflow/profiles/slurm).

The fixture starts munged, slurmctld and slurmd (tests/slurm_cluster.py; installs the Debian
packages when it may) and stops them afterwards. A tiny datasets-only config then runs twice, in
temporary copies of the workflow: through the SLURM profile and through the local profile. The
shard jobs must have run as SLURM jobs, packed by ``--group-components`` into one cluster job
(a ``notewise`` wrapper first on PATH records ``SLURM_JOB_ID`` of every call; ``sacct -c`` lists
the job as COMPLETED), and every dataset file must equal the local run's byte for byte.

Skipped, with the reason, where SLURM cannot be installed or started (not root, no apt-get, a
foreign /etc/slurm/slurm.conf) or the executor plugin is missing (``pip install -e '.[slurm]'``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from notewise.config import REPO_ROOT
from slurm_cluster import SlurmCluster, SlurmUnavailable

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.timeout(400)]

WORKFLOW_FILES = ("Snakefile", "rules", "workflow", "envs")
SHARDS = 4
CONFIG = {
    "seed": 11,
    "audio": {"sample_rate": 44100, "window": 4096},
    "bins": {"n_bins": 2048, "f_min": 20.0, "f_max": 5000.0},
    "timbres": {"count": 12},
    "datasets": {"train": {"kind": "random_polyphony", "num_samples": 16 * SHARDS,
                           "shard_size": 16, "timbres": [0, 3, 7]}},
    # datasets only: point the pitch rules at the one dataset (they are not run)
    "pitch_model": {"train": {"dataset": "train", "val_dataset": None},
                    "evaluate": {"single_note_dataset": "train", "polyphonic_dataset": "train"}},
}
# Records every `notewise` call with the SLURM job it ran in, then runs the real one.
SPY = """#!/bin/sh
echo "${{SLURM_JOB_ID:-none}} $*" > "{records}/$$.txt"
exec {notewise} "$@"
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    pytest.importorskip("snakemake_executor_plugin_slurm",
                        reason="snakemake-executor-plugin-slurm not installed (pip install -e '.[slurm]')")
    try:
        started = SlurmCluster(tmp_path_factory.mktemp("slurm")).start()
    except SlurmUnavailable as err:
        pytest.skip(f"no SLURM cluster here: {err}")
    yield started
    started.stop()


def make_workdir(path: Path) -> Path:
    path.mkdir(parents=True)
    for name in WORKFLOW_FILES:
        source = REPO_ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, path / name)
    (path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    return path


def spy_path(workdir: Path) -> Path:
    """A directory holding the recording ``notewise`` wrapper (to put first on PATH)."""
    records, bindir = workdir / "spy-records", workdir / "spy-bin"
    records.mkdir()
    bindir.mkdir()
    wrapper = bindir / "notewise"
    wrapper.write_text(SPY.format(records=records, notewise=Path(sys.executable).parent / "notewise"))
    wrapper.chmod(0o755)
    return bindir


def snakemake(workdir: Path, *args: str, path_first: Path | None = None) -> subprocess.Popen:
    venv_bin = Path(sys.executable).parent
    path = os.pathsep.join(str(p) for p in (path_first, venv_bin) if p) + os.pathsep + os.environ["PATH"]
    return subprocess.Popen([sys.executable, "-m", "snakemake", "train_shards", *args], cwd=workdir,
                            env={**os.environ, "PATH": path}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen, what: str, cluster: SlurmCluster | None = None) -> str:
    try:
        out, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    logs = f"\n{cluster.logs()}" if cluster and proc.returncode else ""
    assert proc.returncode == 0, f"{what} failed ({proc.returncode}):\n{out[-6000:]}{logs}"
    return out


def digests(workdir: Path) -> dict[str, str]:
    root = workdir / "results" / "datasets"
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def recorded_calls(workdir: Path) -> list[tuple[str, list[str]]]:
    """(SLURM_JOB_ID or 'none', argv) of every ``notewise`` call of the run."""
    calls = []
    for record in (workdir / "spy-records").glob("*.txt"):
        job, *argv = record.read_text().split()
        calls.append((job, argv))
    return calls


def shard_jobs(calls, command: str) -> dict[str, str]:
    """{shard file name: SLURM job id} of the ``command`` calls (by their --waveforms file)."""
    return {Path(argv[argv.index("--waveforms") + 1]).name: job
            for job, argv in calls if argv[0] == command}


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """The tiny config through the SLURM profile and, at the same time, the local profile."""
    root = tmp_path_factory.mktemp("slurm-runs")
    on_slurm, local = make_workdir(root / "slurm"), make_workdir(root / "local")
    slurm_proc = snakemake(on_slurm, "--profile", "workflow/profiles/slurm", "--cores", "2",
                           "--group-components", f"shards={SHARDS}",
                           path_first=spy_path(on_slurm))
    local_proc = snakemake(local, "--profile", "workflow/profiles/local", "-j", "1")
    finish(local_proc, "local run")
    finish(slurm_proc, "SLURM run", cluster)
    return on_slurm, local


def test_shard_jobs_ran_as_one_packed_slurm_job(cluster, runs):
    calls = recorded_calls(runs[0])
    generated = shard_jobs(calls, "generate-shard")
    validated = shard_jobs(calls, "validate-shard")
    expected = {f"shard_{i:05d}.npy" for i in range(SHARDS)}
    assert set(generated) == expected and set(validated) == expected
    job_ids = set(generated.values()) | set(validated.values())
    assert "none" not in job_ids, f"a shard job ran outside SLURM: {calls}"
    assert len(job_ids) == 1, f"--group-components shards={SHARDS} should pack one job: {job_ids}"
    finished = {job["JobID"]: job for job in cluster.completed_jobs()}
    (job_id,) = job_ids
    assert finished[job_id]["State"] == "COMPLETED", finished[job_id]
    assert finished[job_id]["AllocCPUS"] == "2", "the group job should be capped by --cores 2"


def test_bookkeeping_rules_stay_on_the_submit_host(runs):
    local_commands = {argv[0] for job, argv in recorded_calls(runs[0]) if job == "none"}
    assert local_commands == {"build-timbres", "validate-dataset", "assemble-meta"}


def test_slurm_outputs_equal_a_local_run_byte_for_byte(runs):
    on_slurm, local = map(digests, runs)
    assert len(on_slurm) == 3 * SHARDS + 2  # npy, npz, validation json per shard; validation.json, meta.json
    assert on_slurm == local


def test_a_group_job_wider_than_the_node_fails_before_submission_naming_cores(cluster,
                                                                               tmp_path):
    """The profile's ``cores: 4`` on 2-CPU nodes left a job pending forever (PartitionConfig)
    while Snakemake waited silently; now the run fails before any sbatch, naming ``cores``."""
    workdir = make_workdir(tmp_path / "too-wide")
    before = len(cluster.completed_jobs())
    wide = cluster.node.cpus + 2
    proc = snakemake(workdir, "--profile", "workflow/profiles/slurm", "--cores", str(wide),
                     "--group-components", f"shards={SHARDS}")
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        subprocess.run(["scancel", "--user", "root"], timeout=20)
        pytest.fail(f"snakemake waited on a job no node can run:\n{out[-3000:]}")
    assert proc.returncode != 0, out[-3000:]
    assert (f"group job 'shards'" in out and f"asks for {wide} CPUs (the largest node has "
            f"{cluster.node.cpus}; lower `cores`" in out), out[-3000:]
    assert "Submitted job" not in out
    queue = subprocess.run(["squeue", "-h", "-o", "%i %j %r"], capture_output=True, text=True,
                           timeout=20).stdout
    assert queue.strip() == "" or "PartitionConfig" not in queue, queue
    assert len(cluster.completed_jobs()) == before
