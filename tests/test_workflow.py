"""The Snakemake workflow's incremental behaviour, on a tiny config in a temporary copy.

First run builds every shard; a no-op rerun runs nothing; a change to one dataset's setting
rebuilds only that dataset; more samples add shards and rebuild only the last partial one;
builds are byte-identical whatever -j; bad config fails before any job runs, naming the key.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import yaml

from notewise.store.layout import BUILD_KEY
from notewise.store.shards import read_targets

from snakekit import make_workdir, snakemake, write_config

pytestmark = pytest.mark.slow


TINY_CONFIG = {
    "seed": 5,
    "audio": {"sample_rate": 44100, "window": 4096},
    "bins": {"n_bins": 2048, "f_min": 20.0, "f_max": 5000.0},
    "timbres": {"count": 12},
    "datasets": {
        "alpha": {"kind": "random_polyphony", "num_samples": 40, "shard_size": 16, "timbres": [0, 3, 5]},
        "beta": {"kind": "random_polyphony", "num_samples": 24, "shard_size": 16, "polyphony": [1, 2]},
    },
    # rules/pitch.smk checks at parse time that the datasets it reads exist
    "pitch_model": {"train": {"dataset": "alpha", "val_dataset": None},
                    "evaluate": {"single_note_dataset": "beta", "polyphonic_dataset": "beta"}},
}


def shard_files(workdir: Path, dataset: str) -> list[Path]:
    root = workdir / "results" / "datasets" / dataset
    return sorted(root.glob("waveforms/*.npy")) + sorted(root.glob("targets/*.npz"))


def fingerprint(workdir: Path) -> dict[str, tuple[int, str]]:
    """For every shard file: (mtime in ns, sha256)."""
    prints = {}
    for dataset in ("alpha", "beta"):
        for path in shard_files(workdir, dataset):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            prints[str(path.relative_to(workdir))] = (path.stat().st_mtime_ns, digest)
    return prints


def rebuilt(before: dict, after: dict) -> set[str]:
    return {name for name in after if name not in before or after[name][0] != before[name][0]}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("workflow"), TINY_CONFIG)
    snakemake(workdir, "datasets")
    return workdir


def test_first_run_builds_every_shard_with_meta(built):
    import json

    for dataset, shards in (("alpha", 3), ("beta", 2)):
        meta = json.loads((built / "results" / "datasets" / dataset / "meta.json").read_text())
        assert len(meta["shards"]) == shards
        assert sum(s["samples"] for s in meta["shards"]) == TINY_CONFIG["datasets"][dataset]["num_samples"]
        assert len(shard_files(built, dataset)) == 2 * shards
        assert (built / "results" / "benchmarks" / "generate_shard" / dataset / "00000.tsv").exists()
        root = built / "results" / "datasets" / dataset
        recorded = {str(read_targets(p)[BUILD_KEY]) for p in root.glob("targets/*.npz")}
        assert recorded == {meta[BUILD_KEY]}, "every shard records its meta.json's build id"


def test_the_check_target_names_damage_snakemake_cannot_see(built):
    path = built / "results" / "datasets" / "alpha" / "waveforms" / "shard_00001.npy"
    stat, raw = path.stat(), bytearray(path.read_bytes())
    raw[-5] ^= 0x40
    path.write_bytes(bytes(raw))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # mtime kept: no rule reruns
    try:
        failed = snakemake(built, "alpha_check", check=False)
        assert failed.returncode != 0 and "1 damaged shards" in failed.stdout + failed.stderr
        assert "alpha/waveforms/shard_00001.npy" in failed.stdout + failed.stderr
    finally:
        raw[-5] ^= 0x40
        path.write_bytes(bytes(raw))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    snakemake(built, "alpha_check")


def test_noop_rerun_runs_nothing(built):
    before = fingerprint(built)
    dry = snakemake(built, "datasets", "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr
    snakemake(built, "datasets")
    assert fingerprint(built) == before


def test_changing_one_dataset_rebuilds_only_that_dataset(built):
    before = fingerprint(built)
    config = yaml.safe_load((built / "config.yaml").read_text())
    config["datasets"]["beta"]["velocity_range"] = [0.5, 0.9]
    write_config(built, config)
    snakemake(built, "datasets")
    after = fingerprint(built)
    changed = rebuilt(before, after)
    assert changed == {name for name in after if "/beta/" in name}
    assert all(after[n][1] != before[n][1] for n in changed), "a changed setting must change the bytes"


def test_more_samples_adds_shards_and_rebuilds_only_the_partial_one(built):
    before = fingerprint(built)
    config = yaml.safe_load((built / "config.yaml").read_text())
    config["datasets"]["alpha"]["num_samples"] = 56  # shards: 16, 16, 8 -> 16, 16, 16, 8
    write_config(built, config)
    snakemake(built, "datasets")
    changed = rebuilt(before, fingerprint(built))
    assert changed == {
        f"results/datasets/alpha/{kind}/shard_{i:05d}.{ext}"
        for i in (2, 3)
        for kind, ext in (("waveforms", "npy"), ("targets", "npz"))
    }


def test_builds_are_byte_identical_whatever_the_job_count(tmp_path):
    serial = make_workdir(tmp_path / "serial", TINY_CONFIG)
    parallel = make_workdir(tmp_path / "parallel", TINY_CONFIG)
    snakemake(serial, "alpha_shards", "--cores", "1")
    snakemake(parallel, "alpha_shards", "--cores", "2")
    hashes = [{k: v[1] for k, v in fingerprint(w).items()} for w in (serial, parallel)]
    assert hashes[0] and hashes[0] == hashes[1]


def test_override_configfile_is_merged(tmp_path):
    workdir = make_workdir(tmp_path, TINY_CONFIG)
    (workdir / "bigger.yaml").write_text("datasets:\n  beta:\n    num_samples: 100\n")
    dry = snakemake(workdir, "beta_shards", "-n", "--configfile", "config.yaml", "bigger.yaml")
    out = dry.stdout + dry.stderr
    assert "generate_shard" in out
    # 100 samples in shards of 16 -> 7 shard jobs; alpha untouched because not requested.
    job_table = [line.split() for line in out.splitlines() if line.strip().startswith("generate_shard")]
    assert job_table and job_table[0][-1] == "7"


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda c: c["datasets"]["alpha"].update(freq_range=[3000.0, 100.0]), "datasets.alpha.freq_range"),
        (lambda c: c["datasets"]["beta"].update(num_samples=0), "num_samples"),
        (lambda c: c["bins"].update(n_bins="many"), "n_bins"),
        (lambda c: c["datasets"].update(gamma={"kind": "soundfont_render", "num_samples": 8,
                                               "shard_size": 8, "soundfont": "no/such.sf2"}),
         "no/such.sf2"),
    ],
)
def test_bad_config_fails_before_any_job_naming_the_key(tmp_path, edit, key):
    config = yaml.safe_load(yaml.safe_dump(TINY_CONFIG))
    edit(config)
    workdir = make_workdir(tmp_path, config)
    result = snakemake(workdir, "datasets", check=False)
    assert result.returncode != 0
    assert key in result.stdout + result.stderr
    assert not (workdir / "results").exists()
