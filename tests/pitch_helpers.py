"""Small synthetic pitch data for the pitch-model tests: sums of harmonic tones with labels.

Stands in for the generator where a test needs data fast and without the timbre library: each
window holds 1-3 steady harmonic tones (random phase) labelled like the real targets (Gaussian of
sigma 1.5 bins at the fundamental's fractional bin; energy shares by mean square).
"""

from __future__ import annotations

import numpy as np

from notewise.synth.bins import Bins

SR, WINDOW, SIGMA = 44100, 4096, 1.5
BINS = Bins()


def gaussian(n_bins: int, centre: float) -> np.ndarray:
    return np.exp(-((np.arange(n_bins) - centre) ** 2) / (2 * SIGMA**2))


def tone(freq: float, phase: float, amplitude: float, partials: int = 4) -> np.ndarray:
    t = np.arange(WINDOW) / SR
    return sum(amplitude / k * np.sin(2 * np.pi * k * freq * t + k * phase)
               for k in range(1, partials + 1) if k * freq < SR / 2)


def synthetic_windows(n: int, seed: int = 0, max_notes: int = 3, f_range=(80.0, 2000.0)):
    """``(waveforms [n, 4096], confs [n, 2048], energies [n, 2048], notes)``;
    ``notes`` is a list of (window, freq, energy share)."""
    rng = np.random.default_rng(seed)
    waves = np.zeros((n, WINDOW), np.float32)
    confs = np.zeros((n, BINS.n_bins), np.float32)
    energies = np.zeros((n, BINS.n_bins), np.float32)
    notes = []
    for i in range(n):
        count = rng.integers(1, max_notes + 1)
        freqs = np.exp(rng.uniform(np.log(f_range[0]), np.log(f_range[1]), count))
        amps = rng.uniform(0.2, 0.6, count)
        power = np.array([sum((a / k) ** 2 / 2 for k in range(1, 5) if k * f < SR / 2)
                          for f, a in zip(freqs, amps)])
        for f, a, share in zip(freqs, amps, power / power.sum()):
            waves[i] += tone(f, rng.uniform(0, 2 * np.pi), a)
            centre = BINS.freq_to_bin(f)
            confs[i] = np.maximum(confs[i], gaussian(BINS.n_bins, centre))
            g = gaussian(BINS.n_bins, centre)
            energies[i] += share * g / g.sum()
            notes.append((i, f, share))
    return waves, confs, energies, notes


def spectral_peak_model():
    """A hand-wired ``PitchModel`` that marks every strong peak of the front end's ``h = 1``
    channel: no training, known behaviour (a pure tone -> one note at its frequency)."""
    import torch

    from notewise.pitch.model import PitchModel, PitchModelConfig

    model = PitchModel(PitchModelConfig(width=2, dilations=(1,), stride=1, fft_oversample=8))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.stem.weight[0, model.cfg.harmonics.index(1), 2] = 1.0  # channel 0 = the spectrum
        for norm in (model.blocks[0].norm, model.head_norm):
            norm.weight.fill_(1.0)
        level = torch.nn.functional.gelu(torch.tensor(0.93))  # about -5.6 dB below a unit sine
        model.head.weight[0, 0, 0], model.head.bias[0] = 80.0, -80.0 * level
        model.head.weight[1, 0, 0] = 60.0
    return model.eval()


def make_dataset(path, kind: str = "random_polyphony", num_samples: int = 64, seed: int = 1,
                 shard_size: int | None = None, **settings):
    """A small shard dataset written by the real generator (``generate_range`` + ``write_shard``,
    the default timbre library), as ``notewise generate-shard`` would; returns ``path``."""
    from pathlib import Path

    from notewise.workflow.specs import generation_spec, shard_plan
    from notewise.synth.generate import generate_range
    from notewise.store.layout import targets_path, waveform_path
    from notewise.store.shards import write_shard
    from notewise.synth.timbres import build_timbre_library

    path = Path(path)
    name = path.name
    dataset = {"kind": kind, "shard_size": shard_size or num_samples, **settings}
    if kind == "random_polyphony":
        dataset["num_samples"] = num_samples
    config = {"seed": seed, "datasets": {name: dataset}}
    spec = generation_spec(config, name)
    library = _library(build_timbre_library)
    (path / "waveforms").mkdir(parents=True, exist_ok=True)
    (path / "targets").mkdir(parents=True, exist_ok=True)
    for index, (start, count) in enumerate(shard_plan(config, name)):
        write_shard(waveform_path(path, index), targets_path(path, index),
                    generate_range(spec, start, count, library))
    return path


_LIBRARY = []


def _library(build):
    if not _LIBRARY:
        _LIBRARY.append(build())
    return _LIBRARY[0]


def tiny_settings(**train) -> dict:
    """``pitch_settings`` for a tiny model and a few steps."""
    from notewise.pitch.settings import pitch_settings

    base = {"epochs": 2, "batch_size": 16, "lr": 0.01, "warmup_steps": 2, "noise_prob": 0.5}
    return pitch_settings({"pitch_model": {
        "model": {"width": 8, "dilations": [1, 2]},
        "train": {**base, **train},
        "evaluate": {"position_offsets": 8, "batch_size": 64},
    }})
