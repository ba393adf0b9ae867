"""Where the synthesis time goes: Clenshaw steps per window and per nanosecond, by kernel.

    .venv/bin/python bench/bench_synth_kernel.py [--windows 1024]

Prints, for the default random-polyphony settings, the (harmonic x sample) steps a window needs
(each step is two fused multiply-adds and two subtractions in float32), then the steps per
nanosecond of the main Clenshaw pass (four and eight harmonics a pass, one 512-sample block in
L1), of whole notes (harmonic and inharmonic; a 1-sample note shows the per-note setup), and of
the whole synthesis over real windows. The
ratio of the last to the first says how much is per-note setup and the inharmonic path; the CPU's
peak (8 steps a cycle on AMD Zen 4) bounds them all. Best of several runs, wall time, one thread.
"""
from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the NumPy reference implementation is the tests' oracle (tests/numpy_reference.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy_reference  # noqa: E402
from bench_generation import make_spec  # noqa: E402
from timing import best_seconds  # noqa: E402

from notewise.synth import oscillator as synth  # noqa: E402
from notewise.synth.generate import _draw_notes, random_polyphony_params  # noqa: E402
from notewise.synth.windows import LabelGrid, note_arrays  # noqa: E402
from notewise.synth.rng import dataset_key  # noqa: E402
from notewise.synth.timbres import build_timbre_library  # noqa: E402


@njit
def _middle_passes(work, coefs, reps, eight):
    for _ in range(reps):
        k = 48
        while k > 4:
            if eight and k - 8 >= 4:
                synth._clenshaw_middle8(work[0], work[2], work[3], work[4], work[5], synth.BLOCK,
                                        coefs[0], coefs[1], k)
                k -= 8
            else:
                synth._clenshaw_middle(work[0], work[2], work[3], work[4], work[5], synth.BLOCK,
                                       coefs[0], coefs[1], k)
                k -= 4


@njit
def _notes(out, amplitudes, stretch, adsr, scratch, reps, length):
    for r in range(reps):
        synth.render_note(out, 110.0, 0.5, 0, length, amplitudes, stretch, adsr,
                          np.uint64(1000 + r), np.nan, 44100.0, scratch)


@njit
def _windows(key, samples, sampler, amplitudes, stretches, adsr, waveforms, notes):
    scratch = synth.new_scratch(waveforms.shape[1], amplitudes.shape[1])
    grid = LabelGrid(44100.0, waveforms.shape[1], 20.0, 5000.0, 1.5)
    for row in range(waveforms.shape[0]):
        count = _draw_notes(sampler, key, samples[row], adsr, grid, 2048, notes)
        synth.render_window(waveforms[row], count, notes.freqs, notes.velocities, notes.timbre_ids,
                            notes.onsets, notes.offsets, notes.phase_keys, np.nan, amplitudes,
                            stretches, adsr, 44100.0, scratch)


def steps_per_window(spec, timbres, windows: int) -> tuple[float, float]:
    """(steps, notes) per window: sounding samples x harmonics padded to four, per note."""
    key = dataset_key(spec["seed"], spec["dataset"])
    ids = np.arange(len(timbres))
    steps = notes = 0
    for sample in range(windows):
        drawn = numpy_reference.sample_random_polyphony(key, sample, spec["settings"], ids, 4096)
        for j in range(len(drawn["freq"])):
            t = drawn["timbre"][j]
            top = numpy_reference.audible_top(drawn["freq"][j], timbres.amplitudes[t].astype(float),
                                              float(timbres.inharmonicity[t]), 44100.0)
            sounding = min(drawn["offset"][j], 4096) - max(drawn["onset"][j], 0)
            steps += sounding * 4 * ((top + 3) // 4)
            notes += 1
    return steps / windows, notes / windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=1024)
    args = parser.parse_args()
    timbres = build_timbre_library(count=100, max_partials=48, seed=7)
    spec = make_spec("random_polyphony")
    steps, notes = steps_per_window(spec, timbres, args.windows)
    print(f"default random polyphony: {notes:.2f} notes and {steps:,.0f} steps a window")

    work = np.random.default_rng(0).random((6, synth.BLOCK)).astype(np.float32) * 0.01
    coefs = np.random.default_rng(1).random((2, 52)).astype(np.float32) * 0.01
    for label, eight in (("four", False), ("eight", True)):
        seconds = best_seconds(lambda: _middle_passes(work, coefs, 2000, eight), 7)
        print(f"main pass, {label} harmonics a pass: {2000 * 44 * synth.BLOCK / seconds / 1e9:.1f}"
              " steps/ns")

    partials = (timbres.amplitudes > 0).sum(axis=1)
    harmonic = int(np.argmax(np.where(timbres.inharmonicity == 0, partials, -1)))
    inharmonic = int(np.argmax(np.where(timbres.inharmonicity > 0, partials, -1)))
    out, scratch = np.zeros(4096, np.float32), synth.new_scratch(4096, 48)
    for label, t in (("harmonic", harmonic), ("inharmonic", inharmonic)):
        amplitudes = timbres.amplitudes[t]
        top = synth.audible_partial_count(110.0, amplitudes, float(timbres.inharmonicity[t]), 44100.0)
        padded = 4 * ((top + 3) // 4) if label == "harmonic" else top
        stretch = np.float64(timbres.inharmonicity[t])
        seconds = best_seconds(lambda: _notes(out, amplitudes, stretch, timbres.adsr[t], scratch,
                                              200, 4096), 7)
        print(f"whole {label} note ({top} partials, 4096 samples): {seconds / 200 * 1e6:.1f} us,"
              f" {200 * 4096 * padded / seconds / 1e9:.1f} steps/ns")
        if label == "harmonic":  # a 1-sample note costs the per-note setup and nearly nothing else
            for length in (1, 64):
                seconds = best_seconds(lambda: _notes(out, amplitudes, stretch, timbres.adsr[t],
                                                      scratch, 2000, length), 7)
                print(f"  the same note, {length} sample(s) long: {seconds / 2000 * 1e6:.2f} us")

    kind = random_polyphony_params(spec, len(timbres), args.windows)
    samples = np.arange(args.windows, dtype=np.int64)
    waveforms = np.zeros((args.windows, 4096), np.float32)
    seconds = best_seconds(lambda: _windows(
        dataset_key(spec["seed"], spec["dataset"]), samples, kind, timbres.amplitudes,
        timbres.inharmonicity, timbres.adsr, waveforms, note_arrays(kind.max_notes)), repeats=5)
    print(f"whole synthesis over {args.windows} windows: {seconds / args.windows * 1e6:.1f} us a"
          f" window, {steps * args.windows / seconds / 1e9:.1f} steps/ns")


if __name__ == "__main__":
    main()
