"""Hand-made shards for the storage, validation and reader tests (no synthesis involved).

``fake_shard`` draws notes the way the sampler does and labels them by the SPEC's rules (class,
weight, Gaussian confidence and unit-sum energy), with cheap sines for waveforms, so that a valid
shard passes every validation check and a single corruption fails exactly one.
"""

from __future__ import annotations

import hashlib

import numpy as np

from notewise.synth.bins import Bins
from notewise.store.layout import shard_name
from notewise.store.shards import write_shard
from notewise.synth.windows import ShardData

WINDOW, N_BINS, SIGMA = 256, 128, 1.5
POLYPHONY = [1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6, 7, 8, 10, 12, 16]


def make_spec(kind="random_polyphony", window=WINDOW, n_bins=N_BINS, dataset="unit", polyphony=None):
    settings = {"kind": kind}
    if kind == "random_polyphony":
        settings.update(polyphony=polyphony or POLYPHONY, freq_range=[20.0, 5000.0],
                        velocity_range=[0.1, 1.0], onset_range=[-window + 1, window - 1],
                        offset_max=2 * window, timbres=[0, 1, 2])
    else:
        settings.update(samples_per_bin=1, velocity=0.8, timbre=0)
    return {"seed": 1, "dataset": dataset, "audio": {"sample_rate": 44100, "window": window},
            "bins": {"n_bins": n_bins, "f_min": 20.0, "f_max": 5000.0},
            "labels": {"sigma_bins": SIGMA}, "settings": settings}


def _draw_notes(rng, n, spec):
    window = spec["audio"]["window"]
    settings = spec["settings"]
    if settings["kind"] == "single_note":
        counts = np.ones(n, dtype=np.int64)
    else:
        counts = rng.choice(settings["polyphony"], size=n)
        counts[rng.random(n) < 0.05] = 0  # a few silent windows
    rows = np.repeat(np.arange(n), counts).astype(np.int32)
    m = len(rows)
    freq = np.exp(rng.uniform(np.log(20.0), np.log(5000.0), m)).astype(np.float32)
    if settings["kind"] == "single_note":
        onset, offset = np.zeros(m, np.int32), np.full(m, window, np.int32)
    else:
        onset = rng.integers(-window + 1, window, m).astype(np.int32)
        offset = (np.maximum(onset, 0) + rng.integers(1, 2 * window, m)).astype(np.int32)
    return rows, freq, onset, offset


def _classes_and_weights(onset, offset, window):
    before, lasts = onset <= 0, offset >= window
    classes = np.where(before, np.where(lasts, 4, 1), np.where(lasts, 2, 3)).astype(np.int8)
    visible = (np.minimum(offset, window) - np.maximum(onset, 0)) / window
    weights = np.where((classes == 2) | (classes == 4), 1.0, np.minimum(visible * 0.5, 0.3))
    return classes, weights.astype(np.float32)


def _targets(rows, centres, weights, shares, n, n_bins):
    bins = np.arange(n_bins)
    confs = np.zeros((n, n_bins), np.float32)
    energies = np.zeros((n, n_bins), np.float64)
    for row, centre, weight, share in zip(rows, centres, weights, shares):
        g = np.exp(-((bins - centre) ** 2) / (2 * SIGMA**2))
        confs[row] = np.maximum(confs[row], weight * g)
        energies[row] += share * g / g.sum()
    return confs, energies.astype(np.float32)


def fake_shard(n=64, spec=None, seed=0) -> ShardData:
    """A valid shard of ``n`` windows for ``spec`` (default: make_spec())."""
    spec = spec or make_spec()
    rng = np.random.default_rng(seed)
    window, n_bins = spec["audio"]["window"], spec["bins"]["n_bins"]
    rows, freq, onset, offset = _draw_notes(rng, n, spec)
    classes, weights = _classes_and_weights(onset, offset, window)
    raw = rng.uniform(0.1, 1.0, len(rows))
    shares = (raw / np.bincount(rows, weights=raw, minlength=n)[rows]).astype(np.float32)
    centres = Bins.from_dict(spec["bins"]).freq_to_bin(freq)
    confs, energies = _targets(rows, centres, weights, shares, n, n_bins)
    t = np.arange(window) / 44100.0
    waveforms = np.zeros((n, window), np.float32)
    for row, f in zip(rows, freq):
        waveforms[row] += np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28)).astype(np.float32)
    waveforms *= 0.9 / np.maximum(np.abs(waveforms).max(axis=1, keepdims=True), 1.0)
    notes = {"note_sample": rows, "note_freq": freq,
             "note_velocity": rng.uniform(0.1, 1, len(rows)).astype(np.float32),
             "note_timbre": rng.integers(0, 3, len(rows)).astype(np.int16),
             "note_onset": onset, "note_offset": offset, "note_class": classes,
             "note_weight": weights, "note_energy_share": shares}
    return ShardData(waveforms, confs, energies, notes)


def write_dataset(directory, sizes, spec=None, seed=0, with_meta=True, build=None):
    """A current-format dataset with shards of the given sizes, validated, with meta.json;
    ``build``: the build id its shards and meta.json record."""
    from notewise.store.meta import build_meta, write_meta
    from notewise.store.layout import targets_path, waveform_path
    from notewise.store.validate import summarize_dataset, validate_shard

    spec = spec or make_spec()
    reports = []
    for index, size in enumerate(sizes):
        wpath, tpath = waveform_path(directory, index), targets_path(directory, index)
        write_shard(wpath, tpath, fake_shard(size, spec, seed=seed + index), build=build)
        reports.append(validate_shard(wpath, tpath, spec))
    if with_meta:
        write_meta(directory / "meta.json",
                   build_meta(directory, spec, summarize_dataset(reports, spec), "test", build=build))
    return spec


def make_legacy_fixture(directory, sizes, window=WINDOW, n_bins=N_BINS, seed=0):
    """V1 shards: ``shard_NNNNN.npz`` holding float32 waveforms, confs, energies (np.savez)."""
    directory.mkdir(parents=True, exist_ok=True)
    spec = make_spec(window=window, n_bins=n_bins)
    shards = []
    for index, size in enumerate(sizes):
        data = fake_shard(size, spec, seed=seed + index)
        np.savez(directory / f"{shard_name(index)}.npz", waveforms=data.waveforms,
                 confs=data.confs, energies=data.energies)
        shards.append(data)
    return shards


def build_with_cli(results, config, dataset):
    """Build ``dataset`` of ``config`` under ``results/`` through the ``notewise`` subcommands
    the rules run (build-timbres, generate-shard, validate-shard, validate-dataset,
    assemble-meta), in process; returns the dataset directory."""
    from notewise.cli import main
    from notewise.config import canonical_json
    from notewise.workflow.specs import check_config, generation_spec, shard_plan
    from notewise.workflow.codehash import kind_code_hash
    from notewise.store.layout import relative_shard_paths

    full = check_config(config)
    timbres = results / "timbres" / "timbres.npz"
    timbres.parent.mkdir(parents=True, exist_ok=True)
    t = full["timbres"]
    _run(main, ["build-timbres", "--count", str(t["count"]), "--max-partials",
                str(t["max_partials"]), "--seed", str(t["seed"]), "-o", str(timbres)])
    root = results / "datasets" / dataset
    spec = generation_spec(full, dataset)
    reports = []
    for index, (start, count) in enumerate(shard_plan(full, dataset)):
        wave, target = (str(root / p) for p in relative_shard_paths(index))
        report = str(root / "validation" / f"{shard_name(index)}.json")
        _run(main, ["generate-shard", "--spec", canonical_json({**spec, "start": start, "count": count}),
                    "--timbres", str(timbres), "--waveforms", wave, "--targets", target])
        _run(main, ["validate-shard", "--spec", canonical_json(spec), "--waveforms", wave,
                    "--targets", target, "-o", report])
        reports.append(report)
    _run(main, ["validate-dataset", "--spec", canonical_json(spec), "--reports", *reports,
                "-o", str(root / "validation.json")])
    _run(main, ["assemble-meta", "--spec", canonical_json(spec), "--validation",
                str(root / "validation.json"), "--code-hash", kind_code_hash(spec["settings"]["kind"]),
                "-o", str(root / "meta.json")])
    return root


def _run(main, argv):
    code = main(argv)
    if code:
        raise AssertionError(f"notewise {' '.join(argv[:1])} exited {code}")


def write_one_shard(directory, data):
    """Write ``data`` as shard 0 under ``directory``; returns the two paths."""
    wpath = directory / "waveforms" / "shard_00000.npy"
    tpath = directory / "targets" / "shard_00000.npz"
    wpath.parent.mkdir(parents=True)
    tpath.parent.mkdir(parents=True)
    write_shard(wpath, tpath, data)
    return wpath, tpath


def digest(data: ShardData) -> str:
    hasher = hashlib.sha256()
    for array in (data.waveforms, data.confs, data.energies, *data.notes.values()):
        hasher.update(np.ascontiguousarray(array).tobytes())
    return hasher.hexdigest()
