"""Generation speed: windows per CPU-second of the Numba path against the NumPy reference,
and of the end-to-end shard job (synthesis + labels + writes), all measured in one run.

Both paths implement the same algorithm (tests/numpy_reference.py) and are timed side by side,
single-threaded (NUMBA_NUM_THREADS=1; CPU time from time.process_time), on the default
random-polyphony settings and on the single-note (sanity) settings. Each figure is the best of
``--repeats`` runs (the machine is shared: the best run is the one least disturbed), the three
in-process paths called in turn round by round so that a burst of load hits all of them. Rows:

* ``Numba``          ``generate_range`` (sampler, synthesis, labels, note table) in process,
                     into preallocated output arrays (fresh pages would cost more than the
                     synthesis of some windows: that is the compute alone)
* ``Numba + write``  what a shard job does in process: ``write_generated_shard`` (the same,
                     a chunk at a time, streamed to the shard files: float16, CRC, deflate,
                     fsync, rename)
* ``shard job``      ``notewise generate-shard`` as a rule runs it, one ``--shard-size`` shard:
                     process start, imports, Numba cache load, synthesis, labels, writes
                     (CPU time of the child process)
* ``NumPy``          the plain NumPy reference

    .venv/bin/python bench/bench_generation.py [--quick] [--repeats 3] [--windows 256]
                     [--shard-size 4096] [--json results.json]
"""
from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the NumPy reference implementation is the tests' oracle (tests/numpy_reference.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy_reference  # noqa: E402
from timing import best_interleaved  # noqa: E402

from notewise.synth.generate import generate_range, write_generated_shard  # noqa: E402
from notewise.synth.timbres import build_timbre_library  # noqa: E402

DEFAULT_POLYPHONY = [1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6, 7, 8, 10, 12, 16]


def make_spec(kind: str) -> dict:
    spec = {"seed": 20260219, "dataset": "bench", "audio": {"sample_rate": 44100, "window": 4096},
            "bins": {"n_bins": 2048, "f_min": 20.0, "f_max": 5000.0},
            "labels": {"sigma_bins": 1.5}}
    if kind == "random_polyphony":
        spec["settings"] = {"kind": kind, "polyphony": DEFAULT_POLYPHONY,
                            "freq_range": [20.0, 5000.0], "velocity_range": [0.1, 1.0],
                            "onset_range": [-4095, 4095], "offset_max": 8192, "timbres": "all"}
    else:
        spec["settings"] = {"kind": kind, "samples_per_bin": 2, "velocity": 0.8, "timbre": 0}
    return spec


PROTOTYPE = {"numpy": 260, "numba": 25_600}  # windows/CPU-s, the figures
TARGET_RATIO = 100  # end to end, writes included, against the NumPy reference


def generate_and_write(spec, windows, timbres, directory: Path) -> None:
    write_generated_shard(spec, 0, windows, timbres, directory / "waveforms.npy",
                          directory / "targets.npz")


def shard_job_cpu(spec, shard_size: int, library: Path, directory: Path) -> float:
    """CPU seconds of one ``notewise generate-shard`` child process (start to exit)."""
    job = {**spec, "start": 0, "count": shard_size}
    command = [sys.executable, "-m", "notewise.cli", "generate-shard", "--spec", json.dumps(job),
               "--timbres", str(library), "--waveforms", str(directory / "job.npy"),
               "--targets", str(directory / "job.npz")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(kind: str, timbres, args, directory: Path) -> dict:
    """Windows per CPU-second of each path on the same samples 0..windows-1 (per-window cost
    varies a lot with polyphony: equal samples matter)."""
    spec, windows = make_spec(kind), args.windows
    generate_and_write(spec, 16, timbres, directory)  # load or compile Numba code, untimed
    numpy_reference.generate_range(spec, 0, 2, timbres)
    out = generate_range(spec, 0, windows, timbres)
    seconds = best_interleaved({
        "numba": lambda: generate_range(spec, 0, windows, timbres, out=out),
        "numba_write": lambda: generate_and_write(spec, windows, timbres, directory),
        "numpy": lambda: numpy_reference.generate_range(spec, 0, windows, timbres),
    }, args.repeats, clock=time.process_time)
    job = min(shard_job_cpu(spec, args.shard_size, directory / "timbres.npz", directory)
              for _ in range(max(1, args.repeats // 2)))
    rates = {"numba": windows / seconds["numba"], "numba_write": windows / seconds["numba_write"],
             "shard_job": args.shard_size / job, "numpy": windows / seconds["numpy"]}
    return {"kind": kind, "windows": windows, "shard_size": args.shard_size,
            "repeats": args.repeats, "windows_per_cpu_s": rates,
            "ratio_to_numpy": {k: v / rates["numpy"] for k, v in rates.items()}}


def report(results: list[dict], args) -> None:
    print(f"{'settings':<18} {'path':<32} {'win/CPU-s':>10} {'vs NumPy':>9} {'prototype':>10}")
    labels = {"numba": ("Numba synth + labels", PROTOTYPE["numba"]),
              "numba_write": ("Numba + writes (in process)", None),
              "shard_job": (f"shard job, {args.shard_size} windows", None),
              "numpy": ("NumPy reference", PROTOTYPE["numpy"])}
    for row in results:
        for key, (label, prototype) in labels.items():
            rate, ratio = row["windows_per_cpu_s"][key], row["ratio_to_numpy"][key]
            proto = f"{prototype:,}" if prototype and row["kind"] == "random_polyphony" else "-"
            print(f"{row['kind']:<18} {label:<32} {rate:>10,.0f} {ratio:>8.1f}x {proto:>10}")
    polyphony = results[0]["ratio_to_numpy"]
    verdict = "met" if min(polyphony["numba_write"], polyphony["shard_job"]) >= TARGET_RATIO else "NOT met"
    print(f"target: end to end (writes included) >= {TARGET_RATIO}x NumPy on random_polyphony:"
          f" {verdict} (Numba + write {polyphony['numba_write']:.0f}x,"
          f" shard job {polyphony['shard_job']:.0f}x)")
    print(f"({args.windows} windows in process, best of {args.repeats}; single thread;"
          f" NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']};"
          f" load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--windows", type=int, default=1024,
                        help="samples 0..N-1 of each setting, generated by both paths")
    parser.add_argument("--shard-size", type=int, default=4096,
                        help="windows of the shard job (the default config's train shards)")
    parser.add_argument("--quick", action="store_true", help="32 windows, 1 repeat, 512-window job")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.windows, args.repeats, args.shard_size = 32, 1, 512
    timbres = build_timbre_library(count=100, max_partials=48, seed=7)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        timbres.save(directory / "timbres.npz")
        results = [measure(kind, timbres, args, directory)
                   for kind in ("random_polyphony", "single_note")]
    report(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
