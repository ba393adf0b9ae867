"""Sub-bin accuracy of a pitch model on sines: is a window-position bias the decoding's or the map's?

    .venv/bin/python bench/bench_subbin.py [--checkpoint MODEL] [--freqs 600] [--offsets 8]

Validation sines, never the test's three frequencies: ``--freqs`` log-uniform frequencies
(seeded) in 50-3000 Hz, each read at ``--offsets`` window positions
(``evaluate.window_position_waves``). Per frequency, the mean error (cents) of the strongest
note, and its mean |.| over the frequencies:

1. for sub-bin estimators of the confidence map's peak: the centroid over +-4 bins (decode's),
   +-2, floor-subtracted, and 3-, 5- and 7-point log-Gaussian fits;
2. with a correction table fitted on half the frequencies (by position in the model's 8-bin
   group, by that and the octave, by coarse position) and applied to the other half;
3. predict's f0 (the strongest note refined by ``pitch_model.decode.refine_cents``,
   ``notewise.pitch.reassign``), and the reassignment's own error on tones of 1, 4 and 8 partials
   by band, under the Hann window and under its square (the one it uses).
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from notewise.pitch import reassign
from notewise.pitch.evaluate import window_position_waves
from notewise.pitch.inference import Predictor, decode_default, strongest
from notewise.pitch.release import release_checkpoint

GROUP = 8  # bins per position of the strided model's grid


def peak_bins(conf: np.ndarray, estimator: str) -> np.ndarray:
    """Fractional bin of each row's maximum by ``estimator``."""
    peak, n, rows = conf.argmax(1), conf.shape[1], np.arange(len(conf))
    kind, radius = estimator.rsplit("_", 1)
    k = np.arange(-int(radius), int(radius) + 1)
    span = conf[rows[:, None], np.clip(peak[:, None] + k, 0, n - 1)]
    if kind == "centroid":
        return peak + (span * k).sum(1) / span.sum(1)
    if kind == "floor":
        span = span - span.min(1, keepdims=True)
        return peak + (span * k).sum(1) / span.sum(1)
    design = np.stack([k**2, k, np.ones_like(k)], 1).astype(float)
    a, b, _ = np.linalg.lstsq(design, np.log(np.clip(span, 1e-9, 1)).T, rcond=None)[0]
    return peak - b / (2 * a)


ESTIMATORS = ("centroid_4", "centroid_2", "floor_4", "gauss_1", "gauss_2", "gauss_3")


def corrected(bias: np.ndarray, key: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """``bias`` minus the mean bias of its ``key`` over the ``fit`` rows."""
    table = {k: bias[fit & (key == k)].mean() for k in np.unique(key[fit])}
    return np.array([b - table.get(k, 0.0) for b, k in zip(bias, key)])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="default: the released model")
    parser.add_argument("--freqs", type=int, default=600)
    parser.add_argument("--offsets", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    predictor = Predictor.load(args.checkpoint or release_checkpoint(), device="cpu")
    cfg = predictor.model.cfg
    freqs = np.exp(np.random.default_rng(args.seed).uniform(np.log(50), np.log(3000), args.freqs))
    bias = {name: np.zeros(len(freqs)) for name in ESTIMATORS}
    for i, freq in enumerate(freqs):
        conf, _ = predictor.maps(window_position_waves(freq, args.offsets, cfg.window,
                                                       cfg.sample_rate))
        for name in ESTIMATORS:
            bias[name][i] = np.mean(1200 * np.log2(cfg.bin_to_freq(peak_bins(conf, name)) / freq))
    print(f"{len(freqs)} validation sines, 50-3000 Hz, {args.offsets} window positions each:"
          " mean |bias| over the frequencies (cents)")
    ok = np.all([np.abs(b) < 30 for b in bias.values()], axis=0)  # octave errors left out
    for name in ESTIMATORS:
        print(f"  {name:>11}: {np.abs(bias[name][ok]).mean():.3f}"
              f"  (over 1 cent: {np.mean(np.abs(bias[name][ok]) > 1):.2f})")
    base, bins = bias["centroid_4"], np.asarray(cfg.freq_to_bin(freqs))
    fit = np.arange(len(freqs)) % 2 == 0
    held = ~fit & ok
    phase = np.floor((bins % GROUP) * 2).astype(int)
    octave = np.floor(np.log2(freqs / 50)).astype(int)
    print(f"correction tables fitted on half, the other half: uncorrected"
          f" {np.abs(base[held]).mean():.3f}")
    for name, key in (("position in the group", phase),
                      ("position x octave", phase * 16 + octave),
                      ("coarse position", np.floor(bins / GROUP).astype(int))):
        print(f"  {name:>21}: {np.abs(corrected(base, key, fit & ok)[held]).mean():.3f}")
    refine = decode_default("refine_cents")
    predictor.refine_cents = refine
    refined = np.array([np.mean(1200 * np.log2(strongest(predictor.notes(
        window_position_waves(freq, args.offsets, cfg.window, cfg.sample_rate), threshold=0.0),
        args.offsets)[0] / freq)) for freq in freqs])
    print(f"predict's f0 (refine_cents {refine:g}): mean |bias| {np.abs(refined[ok]).mean():.4f},"
          f" max {np.abs(refined[ok]).max():.4f} cents")
    print_reassignment_error(cfg.window, cfg.sample_rate)


def print_reassignment_error(window: int, sample_rate: int) -> None:
    """The reassigned fundamental's worst error (cents) on harmonic tones, by band."""
    t = np.arange(window) / sample_rate
    print("reassignment alone, worst |error| (cents) on tones of 1, 4, 8 partials, 6 phases:")
    for name, power in (("Hann", 1), ("Hann squared", 2)):
        worst = []
        for lo, hi in BANDS:
            errors = [abs(1200 * np.log2(reassign.reassigned_f0(
                harmonic_tone(f, phase, n, t, sample_rate)[None],
                np.array([0]), np.array([f]), sample_rate, 25.0, power)[0] / f))
                for f in np.geomspace(lo, hi, 30) for phase in np.linspace(0, 6.2, 6)
                for n in (1, 4, 8)]
            worst.append(f"{lo}-{hi} Hz {max(errors):.4f}")
        print(f"  {name:>12}: " + "  ".join(worst))


def harmonic_tone(freq: float, phase: float, partials: int, t: np.ndarray, sample_rate: int):
    return sum(np.sin(2 * np.pi * k * freq * t + k * phase) / k for k in range(1, partials + 1)
               if k * freq < sample_rate / 2)


BANDS = ((40, 60), (60, 80), (80, 120), (120, 200), (200, 400), (400, 4000))


if __name__ == "__main__":
    main()
