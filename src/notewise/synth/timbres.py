"""The deterministic timbre library every synthesised note draws its sound from.

A timbre is:

* ``amplitudes[t, k-1]``: amplitude ``A_k`` of partial ``k = 1..K`` (float32), normalised so
  that ``sum_k A_k**2 == 1`` over all ``K`` partials. A note of velocity ``v`` with sustained
  envelope 1 then has mean square ``v**2 * sum(A_k**2) / 2`` over the partials that are actually
  synthesised (those below Nyquist), which keeps notes of different timbres comparable.
  Amplitudes below -80 dB of the strongest partial are set to exactly zero so that the synthesis
  loop stops at the last audible partial.
* ``inharmonicity[t]``: the stiff-string coefficient ``B``; partial ``k`` sounds at
  ``f_k = k * f0 * sqrt(1 + B * k**2)`` (piano ``B ~ 1e-4..1e-3``, bells much larger). ``B == 0``
  for harmonic timbres, which the synthesis renders with the fast Clenshaw path.
* ``adsr[t] = (attack_s, decay_s, sustain_level, release_s)``: the piecewise-linear envelope that
  ``notewise.synth.oscillator`` defines precisely.

Timbre 0 is always the pure sine (one partial, 2 ms attack, full sustain). The others are drawn
from families (saw-like, square/clarinet-like, triangle-like, dark, bright, formant-ish, missing
fundamental, weak fundamental, plucked, pads, piano-like and bell-like inharmonic) in fixed
proportions of ``count``; every random parameter of timbre ``t`` comes from the counter RNG keyed by
``(seed, "timbres")`` at sample index ``t``, so the library is identical on every machine and
NumPy version. ``save`` writes a byte-deterministic ``.npz`` (fixed zip timestamps).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from notewise.atomicio import atomic_save_figure, atomic_write_bytes
from notewise.config import section_defaults

from notewise.store.npzfile import npz_bytes
from notewise.synth.rng import dataset_key, uniform01

AMPLITUDE_FLOOR = 1e-4  # -80 dB relative to the strongest partial
SINE_ADSR = (0.002, 0.0, 1.0, 0.005)

# family name, share of the non-sine timbres
FAMILIES = (
    ("saw", 0.12),
    ("square", 0.10),
    ("triangle", 0.07),
    ("dark", 0.09),
    ("bright", 0.09),
    ("formant", 0.10),
    ("missing_fundamental", 0.08),
    ("weak_fundamental", 0.06),
    ("plucked", 0.08),
    ("pad", 0.08),
    ("piano", 0.07),
    ("bell", 0.06),
)


@dataclass
class TimbreLibrary:
    """Timbre tables, row ``t`` = timbre id ``t``."""

    amplitudes: np.ndarray  # float32 [T, K]
    inharmonicity: np.ndarray  # float32 [T]
    adsr: np.ndarray  # float32 [T, 4]: attack_s, decay_s, sustain_level, release_s
    names: list[str]

    def __post_init__(self):
        self.amplitudes = np.ascontiguousarray(self.amplitudes, dtype=np.float32)
        self.inharmonicity = np.ascontiguousarray(self.inharmonicity, dtype=np.float32)
        self.adsr = np.ascontiguousarray(self.adsr, dtype=np.float32)
        self.names = [str(n) for n in self.names]
        count = self.amplitudes.shape[0]
        if not (self.inharmonicity.shape == (count,) and self.adsr.shape == (count, 4)
                and len(self.names) == count):
            raise ValueError("timbre tables disagree on the number of timbres")

    def __len__(self) -> int:
        return self.amplitudes.shape[0]

    @property
    def max_partials(self) -> int:
        return self.amplitudes.shape[1]

    def save(self, path) -> None:
        """Write a byte-deterministic ``.npz`` (atomic: temporary file, then rename)."""
        arrays = {
            "amplitudes": self.amplitudes,
            "inharmonicity": self.inharmonicity,
            "adsr": self.adsr,
            "names": np.array(self.names, dtype=str),
        }
        atomic_write_bytes(path, npz_bytes(arrays, compresslevel=0))

    @classmethod
    def load(cls, path) -> "TimbreLibrary":
        with np.load(path, allow_pickle=False) as data:
            return cls(data["amplitudes"], data["inharmonicity"], data["adsr"],
                       list(data["names"]))


class _Draws:
    """Sequential uniform draws for one timbre from the counter RNG (pure in (key, timbre))."""

    def __init__(self, key, timbre: int):
        self.key, self.timbre, self.count = key, timbre, 0

    def uniform(self, low: float, high: float) -> float:
        value = uniform01(self.key, self.timbre, self.count)
        self.count += 1
        return low + (high - low) * value

    def log_uniform(self, low: float, high: float) -> float:
        return float(np.exp(self.uniform(np.log(low), np.log(high))))


def _power_law(k, slope):
    return 1.0 / k**slope


def _harmonic_spectrum(family: str, k: np.ndarray, draw: _Draws) -> np.ndarray:
    """Unnormalised partial amplitudes for the harmonic families (k = 1..K)."""
    odd = (k % 2) == 1
    if family == "saw":
        return _power_law(k, draw.uniform(0.8, 1.5))
    if family == "square":
        even_level = draw.uniform(0.0, 0.3)
        return _power_law(k, draw.uniform(0.9, 1.3)) * np.where(odd, 1.0, even_level)
    if family == "triangle":
        return _power_law(k, draw.uniform(1.7, 2.3)) * np.where(odd, 1.0, draw.uniform(0.0, 0.1))
    if family == "dark":
        return np.exp(-(k - 1) / draw.uniform(0.6, 3.0))
    if family == "bright":
        return _power_law(k, draw.uniform(0.2, 0.6)) * (1 + 0.3 * np.sin(k * draw.uniform(0.3, 2.0)))
    if family == "formant":
        return _formant_spectrum(k, draw)
    if family == "missing_fundamental":
        spectrum = _formant_spectrum(k, draw)
        spectrum[0] = 0.0
        return spectrum
    if family == "weak_fundamental":
        spectrum = _power_law(k, draw.uniform(0.7, 1.2))
        spectrum[0] *= draw.uniform(0.03, 0.2)
        return spectrum
    if family in ("plucked", "pad"):
        return _power_law(k, draw.uniform(0.9, 2.0)) * np.exp(-(k - 1) / draw.uniform(3.0, 20.0))
    raise ValueError(family)


def _formant_spectrum(k: np.ndarray, draw: _Draws) -> np.ndarray:
    """A gentle power law times two or three resonance bumps over the partial index."""
    spectrum = _power_law(k, draw.uniform(0.8, 1.6))
    bumps = np.ones_like(spectrum)
    for _ in range(2 + int(draw.uniform(0, 2))):
        centre, width, gain = draw.uniform(2, 14), draw.uniform(0.8, 3.0), draw.uniform(2, 10)
        bumps += gain * np.exp(-0.5 * ((k - centre) / width) ** 2)
    return spectrum * bumps


def _inharmonic_spectrum(family: str, k: np.ndarray, draw: _Draws) -> tuple[np.ndarray, float]:
    """(amplitudes, B) for the stretched-partial families."""
    if family == "piano":
        spectrum = _power_law(k, draw.uniform(1.0, 1.8)) * np.exp(-(k - 1) / draw.uniform(8, 25))
        return spectrum, draw.log_uniform(1e-4, 1e-3)
    spectrum = np.where(k <= int(draw.uniform(6, 13)), _power_law(k, draw.uniform(0.3, 0.9)), 0.0)
    return spectrum, draw.log_uniform(3e-3, 2e-2)


def _envelope(family: str, draw: _Draws) -> tuple[float, float, float, float]:
    """(attack_s, decay_s, sustain_level, release_s) by family."""
    if family == "plucked":
        return draw.uniform(0.001, 0.005), draw.uniform(0.15, 1.5), 0.0, draw.uniform(0.01, 0.08)
    if family == "pad":
        return (draw.uniform(0.08, 0.5), draw.uniform(0.1, 0.5), draw.uniform(0.6, 0.95),
                draw.uniform(0.1, 0.5))
    if family == "piano":
        return draw.uniform(0.001, 0.004), draw.uniform(0.3, 1.5), draw.uniform(0.0, 0.3), \
            draw.uniform(0.05, 0.2)
    if family == "bell":
        return draw.uniform(0.001, 0.003), draw.uniform(0.5, 2.0), 0.0, draw.uniform(0.1, 0.4)
    return draw.uniform(0.002, 0.03), draw.uniform(0.03, 0.3), draw.uniform(0.5, 1.0), \
        draw.uniform(0.02, 0.2)


def family_of(timbre: int, count: int) -> str:
    """The family of timbre ``timbre`` in a library of ``count`` timbres (0 is the sine)."""
    if timbre == 0:
        return "sine"
    position = (timbre - 1) / max(count - 1, 1)
    cumulative = 0.0
    total = sum(share for _, share in FAMILIES)
    for name, share in FAMILIES:
        cumulative += share / total
        if position < cumulative:
            return name
    return FAMILIES[-1][0]


def _normalised(spectrum: np.ndarray) -> np.ndarray:
    spectrum = np.abs(spectrum)
    spectrum = np.where(spectrum >= AMPLITUDE_FLOOR * spectrum.max(), spectrum, 0.0)
    return spectrum / np.sqrt(np.sum(spectrum**2))


def build_timbre_library(count: int | None = None, max_partials: int | None = None,
                         seed: int | None = None) -> TimbreLibrary:
    """Build the deterministic library of ``count`` timbres with up to ``max_partials`` partials
    (each argument not given: the config schema's ``timbres`` default)."""
    defaults = section_defaults("timbres")
    count = defaults["count"] if count is None else count
    max_partials = defaults["max_partials"] if max_partials is None else max_partials
    seed = defaults["seed"] if seed is None else seed
    if count < 1 or max_partials < 1:
        raise ValueError("timbres need count >= 1 and max_partials >= 1")
    key = dataset_key(seed, "timbres")
    k = np.arange(1, max_partials + 1, dtype=np.float64)
    amplitudes = np.zeros((count, max_partials))
    inharmonicity = np.zeros(count)
    adsr = np.zeros((count, 4))
    names = []
    family_counts: dict[str, int] = {}
    for timbre in range(count):
        family = family_of(timbre, count)
        draw = _Draws(key, timbre)
        if family == "sine":
            spectrum, stretch, envelope = np.eye(1, max_partials)[0], 0.0, SINE_ADSR
        elif family in ("piano", "bell"):
            spectrum, stretch = _inharmonic_spectrum(family, k, draw)
            envelope = _envelope(family, draw)
        else:
            spectrum, stretch = _harmonic_spectrum(family, k, draw), 0.0
            envelope = _envelope(family, draw)
        if not np.any(spectrum > 0):  # max_partials == 1 with a missing fundamental
            spectrum = np.eye(1, max_partials)[0]
        amplitudes[timbre] = _normalised(spectrum)
        inharmonicity[timbre] = stretch
        adsr[timbre] = envelope
        family_counts[family] = family_counts.get(family, 0) + 1
        names.append(f"{family}_{family_counts[family]:02d}" if family != "sine" else "sine")
    return TimbreLibrary(amplitudes, inharmonicity, adsr, names)


def load_or_build(path=None, **build_args) -> TimbreLibrary:
    """Load the library at ``path`` if given, else build one with ``build_args``."""
    return TimbreLibrary.load(path) if path is not None else build_timbre_library(**build_args)


def envelope_curve(adsr_row, note_seconds: float, sample_rate: float = 1000.0):
    """(time_s, level) of the envelope of a note lasting ``note_seconds`` (for plots)."""
    from notewise.synth.oscillator import envelope_level

    length = note_seconds * sample_rate
    times = np.linspace(0.0, length, 400)
    levels = np.array([envelope_level(u, length, adsr_row[0] * sample_rate,
                                      adsr_row[1] * sample_rate, adsr_row[2],
                                      adsr_row[3] * sample_rate) for u in times])
    return times / sample_rate, levels


def plot_timbres(lib: TimbreLibrary, png_path, note_seconds: float = 0.6) -> None:
    """Overview figure: spectra heat map, every ADSR shape, and a few example spectra."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(14, 10), constrained_layout=True)
    grid = fig.add_gridspec(2, 3, height_ratios=[1.3, 1])
    _plot_heat_map(fig, fig.add_subplot(grid[0, :2]), lib)
    _plot_envelopes(fig.add_subplot(grid[0, 2]), lib, note_seconds)
    _plot_examples(fig, grid[1, :], lib)
    fig.suptitle(f"Timbre library: {len(lib)} timbres, up to {lib.max_partials} partials")
    atomic_save_figure(fig, png_path, dpi=110)


def _plot_heat_map(fig, ax, lib: TimbreLibrary) -> None:
    with np.errstate(divide="ignore"):
        level_db = 20 * np.log10(lib.amplitudes.astype(np.float64))
    image = ax.imshow(np.maximum(level_db, -80), aspect="auto", origin="lower", cmap="magma",
                      vmin=-80, vmax=0, interpolation="nearest",
                      extent=(0.5, lib.max_partials + 0.5, -0.5, len(lib) - 0.5))
    fig.colorbar(image, ax=ax, label="partial amplitude (dB)")
    ax.set_xlabel("partial k")
    ax.set_ylabel("timbre id")
    ax.set_title("Harmonic spectra (normalised: sum A_k^2 = 1)")
    _label_families(ax, lib)


def _label_families(ax, lib: TimbreLibrary) -> None:
    families = [name.rsplit("_", 1)[0] if name != "sine" else "sine" for name in lib.names]
    start = 0
    for timbre in range(1, len(families) + 1):
        if timbre == len(families) or families[timbre] != families[start]:
            label = families[start]
            if lib.inharmonicity[start] > 0:
                label += " (inharmonic)"
            ax.axhline(timbre - 0.5, color="white", lw=0.5, alpha=0.6)
            ax.text(lib.max_partials + 0.3, (start + timbre - 1) / 2, label, color="white",
                    ha="right", va="center", fontsize=7)
            start = timbre


def _plot_envelopes(ax, lib: TimbreLibrary, note_seconds: float) -> None:
    colours = {"plucked": "tab:red", "pad": "tab:green", "piano": "tab:purple",
               "bell": "tab:orange", "sine": "black"}
    for timbre in range(len(lib)):
        family = lib.names[timbre].rsplit("_", 1)[0]
        times, levels = envelope_curve(lib.adsr[timbre], note_seconds)
        ax.plot(times * 1000, levels, lw=0.8, alpha=0.7, color=colours.get(family, "tab:blue"))
    for family, colour in colours.items():
        ax.plot([], [], color=colour, label=family)
    ax.plot([], [], color="tab:blue", label="other")
    ax.axvline(4096 / 44.1, color="grey", ls=":", lw=1, label="one window (93 ms)")
    ax.set_xlabel(f"time in a {note_seconds:.1f} s note (ms)")
    ax.set_ylabel("envelope level")
    ax.set_title("ADSR envelopes")
    ax.legend(fontsize=7, loc="upper right")


def _plot_examples(fig, cell, lib: TimbreLibrary) -> None:
    wanted = ["sine", "saw", "square", "formant", "missing_fundamental", "bell"]
    examples = []
    for family in wanted:
        match = [t for t, name in enumerate(lib.names) if name.rsplit("_", 1)[0] == family
                 or name == family]
        if match:
            examples.append(match[0])
    sub = cell.subgridspec(1, max(len(examples), 1))
    for column, timbre in enumerate(examples):
        ax = fig.add_subplot(sub[0, column])
        k = np.arange(1, lib.max_partials + 1, dtype=np.float64)
        stretch = np.sqrt(1 + lib.inharmonicity[timbre] * k**2)
        ax.vlines(k * stretch, 0, lib.amplitudes[timbre], lw=1.5)
        ax.set_title(f"{timbre}: {lib.names[timbre]}", fontsize=9)
        ax.set_xlabel("frequency / f0")
        ax.set_xlim(0, min(lib.max_partials, 24) + 1)
        if column == 0:
            ax.set_ylabel("A_k")
