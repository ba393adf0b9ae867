"""Plain NumPy implementation of the generation algorithm, for the speed ratio and cross-checks.

The same algorithm as ``notewise.synth.generate`` (same counter-RNG draws, envelope, Clenshaw
recurrence across harmonics in float32, peak limit and labels) written the way one writes
NumPy: one array operation over a note's visible samples per step, Python loops over windows,
notes and harmonics. It is honest (no deliberate slowness: buffers are preallocated and the
ufuncs write in place) and independent of the Numba code: it imports only the timbre library
and the SHA-256 dataset key. Where the Numba kernel uses a cheaper equivalent it uses the direct
NumPy form: ``np.sin``/``np.cos`` of the sample phases instead of the block phasor, ``np.sin``
per partial for inharmonic timbres, ``np.interp`` for the envelope, ``np.exp`` for each Gaussian.
The outputs agree with the Numba path to float32 round-off (see tests/test_generate.py).
"""
from __future__ import annotations

import numpy as np

from notewise.synth.rng import dataset_key

MASK64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
DRAW_GAMMA = 0xD1B54A32D192ED03
PEAK_LIMIT = 0.99
DRAWS_PER_NOTE = 8
GAUSS_RADIUS_SIGMAS = 6.0


# ----------------------------------------------------------------------------- counter RNG


def mix64(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def random_u64(key, sample, draws) -> np.ndarray:
    """64-bit words for the draw numbers ``draws`` (array) of ``sample``."""
    sample_word = mix64(np.uint64(key) ^ mix64(np.array([sample], np.uint64)
                                               * np.uint64(GOLDEN_GAMMA)))
    return mix64(sample_word + np.asarray(draws, np.uint64) * np.uint64(DRAW_GAMMA))


def uniform01(key, sample, draws) -> np.ndarray:
    return (random_u64(key, sample, draws) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def randint(key, sample, draws, low, high) -> np.ndarray:
    low, high = np.asarray(low, np.int64), np.asarray(high, np.int64)
    span = high - low + 1
    return low + np.minimum((uniform01(key, sample, draws) * span).astype(np.int64), span - 1)


# ----------------------------------------------------------------------------- sampler


def sample_random_polyphony(key, sample, settings, timbre_ids, window):
    """Notes of one window as a dict of arrays (same draws as notewise.synth.sampler)."""
    choices = np.asarray(settings["polyphony"], np.int64)
    polyphony = int(choices[randint(key, sample, [0], 0, len(choices) - 1)[0]])
    base = 1 + DRAWS_PER_NOTE * np.arange(polyphony)
    log_lo, log_hi = np.log(settings["freq_range"][0]), np.log(settings["freq_range"][1])
    freqs = np.exp(log_lo + (log_hi - log_lo) * uniform01(key, sample, base))
    timbres = timbre_ids[randint(key, sample, base + 1, 0, len(timbre_ids) - 1)]
    phase_keys = random_u64(key, sample, base + 2)
    v_lo, v_hi = settings["velocity_range"]
    velocities = v_lo + (v_hi - v_lo) * uniform01(key, sample, base + 3)
    onsets = randint(key, sample, base + 4, *settings["onset_range"])
    offset_lo = np.maximum(onsets, 0)
    offset_max = settings["offset_max"]
    offsets = np.where(offset_max > offset_lo,
                       randint(key, sample, base + 5, offset_lo, max(offset_max, 0)), offset_lo)
    keep = np.minimum(offsets, window) > np.maximum(onsets, 0)
    return {"freq": freqs[keep], "velocity": velocities[keep], "timbre": timbres[keep],
            "onset": onsets[keep], "offset": offsets[keep], "phase_key": phase_keys[keep]}


def sample_single_note(key, sample, settings, timbres, window, sample_rate, bins):
    n_bins, f_min, f_max = bins["n_bins"], bins["f_min"], bins["f_max"]
    timbre = int(settings.get("timbre", 0))
    bin_index = sample // settings["samples_per_bin"]
    attack, decay, sustain, release = (float(v) for v in timbres.adsr[timbre])
    onset = -int(np.ceil(attack * sample_rate + decay * sample_rate)) if sustain > 0 else 0
    return {"freq": np.array([f_min * (f_max / f_min) ** (bin_index / (n_bins - 1))]),
            "velocity": np.array([float(settings.get("velocity", 0.8))]),
            "timbre": np.array([timbre]), "onset": np.array([onset]),
            "offset": np.array([window + int(np.ceil(release * sample_rate))]),
            "phase_key": random_u64(key, sample, [0])}


# ----------------------------------------------------------------------------- envelope


def envelope_points(length, adsr_row, sample_rate):
    """Breakpoints (note time in samples) and levels of the piecewise-linear envelope."""
    attack, decay = float(adsr_row[0]) * sample_rate, float(adsr_row[1]) * sample_rate
    sustain, release = float(adsr_row[2]), float(adsr_row[3]) * sample_rate
    release_eff = min(release, 0.5 * length)
    u_rel = length - release_eff

    def attack_decay(u):
        if u < attack:
            return u / attack
        if u < attack + decay:
            return 1.0 - (1.0 - sustain) * (u - attack) / decay
        return sustain

    points = np.array([0.0, min(attack, u_rel), min(attack + decay, u_rel), u_rel, length])
    levels = np.array([attack_decay(u) for u in points[:4]] + [0.0])
    return points, levels


def envelope_mean_square(onset, offset, window, adsr_row, sample_rate):
    first, stop = max(onset, 0), min(offset, window)
    points, levels = envelope_points(offset - onset, adsr_row, sample_rate)
    lo, hi = first - onset, stop - onset
    u = np.clip(points, lo, hi)
    y = np.interp(u, points, levels)
    widths = np.diff(u)
    return float(np.sum(widths * (y[:-1] ** 2 + y[:-1] * y[1:] + y[1:] ** 2) / 3.0) / (hi - lo))


# ----------------------------------------------------------------------------- synthesis


def partial_frequencies(freq, count, stretch):
    k = np.arange(1, count + 1, dtype=np.float64)
    return k * freq * (np.sqrt(1.0 + stretch * k * k) if stretch else 1.0)


def audible_top(freq, amplitudes_row, stretch, sample_rate):
    below = partial_frequencies(freq, len(amplitudes_row), stretch) < 0.5 * sample_rate
    nonzero = np.flatnonzero(below & (amplitudes_row > 0))
    return int(nonzero[-1]) + 1 if nonzero.size else 0


class _Buffers:
    """Preallocated float32 work arrays for the Clenshaw recurrence."""

    def __init__(self, window):
        self.b = [np.zeros(window, np.float32) for _ in range(4)]
        self.tmp = np.zeros(window, np.float32)
        self.x2 = np.zeros(window, np.float32)


def clenshaw(c_re, c_im, x2, sin_t, buffers, span):
    """``sum_k Im(c_k e^{ikt})`` over a span, harmonics outer loop, samples as arrays."""
    b1_re, b2_re, b1_im, b2_im = (b[:span] for b in buffers.b)
    tmp = buffers.tmp[:span]
    for b in (b1_re, b2_re, b1_im, b2_im):
        b[:] = 0.0
    for k in range(len(c_re) - 1, -1, -1):
        for c, b1, b2 in ((c_re[k], b1_re, b2_re), (c_im[k], b1_im, b2_im)):
            np.subtract(c, b2, out=b2)  # b2 <- c_k - b_{k+2}
            np.multiply(x2, b1, out=tmp)
            np.add(b2, tmp, out=b2)  # b2 <- b_k
        b1_re, b2_re, b1_im, b2_im = b2_re, b1_re, b2_im, b1_im
    # Im(e^{it} b_1 - b_2), cos t = x / 2
    return sin_t * b1_re + np.float32(0.5) * x2 * b1_im - b2_im


def render_note(out, note, timbres, sample_rate, buffers, fixed_phase=None):
    window = out.shape[0]
    first, stop = max(note["onset"], 0), min(note["offset"], window)
    timbre = note["timbre"]
    amplitudes = timbres.amplitudes[timbre].astype(np.float64)
    stretch = float(timbres.inharmonicity[timbre])
    top = audible_top(note["freq"], amplitudes, stretch, sample_rate)
    if stop <= first or top == 0:
        return
    if fixed_phase is None:
        phases = 2 * np.pi * _partial_uniforms(note["phase_key"], top)
    else:
        phases = np.full(top, float(fixed_phase))
    n = np.arange(first, stop)
    points, levels = envelope_points(note["offset"] - note["onset"], timbres.adsr[timbre],
                                     sample_rate)
    env = (note["velocity"] * np.interp(n - note["onset"] + 0.5, points, levels))
    if stretch == 0.0:
        t = (2 * np.pi * note["freq"] / sample_rate) * n
        x2 = (2.0 * np.cos(t)).astype(np.float32)
        sin_t = np.sin(t).astype(np.float32)
        c_re = (amplitudes[:top] * np.cos(phases)).astype(np.float32)
        c_im = (amplitudes[:top] * np.sin(phases)).astype(np.float32)
        signal = clenshaw(c_re, c_im, x2, sin_t, buffers, stop - first)
    else:
        omegas = 2 * np.pi * partial_frequencies(note["freq"], top, stretch) / sample_rate
        signal = np.zeros(stop - first)
        for k in np.flatnonzero(amplitudes[:top] > 0):
            signal += amplitudes[k] * np.sin(omegas[k] * n + phases[k])
    out[first:stop] += env.astype(np.float32) * signal.astype(np.float32)


def _partial_uniforms(phase_key, count):
    """``uniform01(phase_key, k, 0)`` for partials ``k = 1..count``."""
    keys = np.uint64(phase_key)
    words = mix64(mix64(keys ^ mix64(np.arange(1, count + 1, dtype=np.uint64)
                                     * np.uint64(GOLDEN_GAMMA))))
    return (words >> np.uint64(11)).astype(np.float64) * 2.0**-53


def apply_peak_limit(out):
    peak = np.abs(out).max()
    if peak > PEAK_LIMIT:
        out *= np.float32(PEAK_LIMIT / peak)


# ----------------------------------------------------------------------------- labels


def classify_note(onset, offset, window):
    if onset <= 0 and offset >= window:
        return 4
    if onset > 0 and offset >= window:
        return 2
    if onset <= 0 and offset < window:
        return 1
    return 3


def label_window(notes, timbres, sample_rate, window, bins, sigma, conf_row, energy_row):
    """Targets of one window; returns the note-table rows (list of dicts) of labelled notes."""
    n_bins, f_min, f_max = bins["n_bins"], bins["f_min"], bins["f_max"]
    rows = []
    for j in range(len(notes["freq"])):
        onset, offset, freq = int(notes["onset"][j]), int(notes["offset"][j]), notes["freq"][j]
        timbre = int(notes["timbre"][j])
        note_class = classify_note(onset, offset, window)
        ratio = max(min(offset, window) - max(onset, 0), 0) / window
        weight = 1.0 if note_class in (2, 4) else min(ratio * 0.5, 0.3)
        amplitudes = timbres.amplitudes[timbre].astype(np.float64)
        top = audible_top(freq, amplitudes, float(timbres.inharmonicity[timbre]), sample_rate)
        coeff = 0.5 * np.sum(amplitudes[:top] ** 2)
        energy = coeff * notes["velocity"][j] ** 2 * envelope_mean_square(
            onset, offset, window, timbres.adsr[timbre], sample_rate)
        if note_class in (1, 3):
            energy *= ratio * 0.5
        in_range = f_min * (1 - 1e-9) <= freq <= f_max * (1 + 1e-9)
        if in_range and energy > 0:
            rows.append({"bin": (n_bins - 1) * np.log(freq / f_min) / np.log(f_max / f_min),
                         "j": j, "class": note_class, "weight": weight, "energy": energy})
    total = sum(row["energy"] for row in rows)
    radius = GAUSS_RADIUS_SIGMAS * sigma
    for row in rows:
        lo = max(int(np.ceil(row["bin"] - radius)), 0)
        hi = min(int(np.floor(row["bin"] + radius)) + 1, n_bins)
        gauss = np.exp(-((np.arange(lo, hi) - row["bin"]) ** 2) / (2 * sigma**2))
        row["share"] = row["energy"] / total
        np.maximum(conf_row[lo:hi], (row["weight"] * gauss).astype(np.float32),
                   out=conf_row[lo:hi])
        energy_row[lo:hi] += (row["share"] * gauss / gauss.sum()).astype(np.float32)
    return rows


# ----------------------------------------------------------------------------- driver


def generate_range(spec, start, count, timbres, fixed_phase=None):
    """Same contract as ``notewise.synth.generate.generate_range`` (returns a dict)."""
    window, sample_rate = spec["audio"]["window"], float(spec["audio"]["sample_rate"])
    bins, sigma, settings = spec["bins"], spec["labels"]["sigma_bins"], spec["settings"]
    key = dataset_key(spec["seed"], spec["dataset"])
    timbre_ids = settings.get("timbres", "all")
    timbre_ids = np.arange(len(timbres)) if timbre_ids == "all" else np.asarray(timbre_ids)
    waveforms = np.zeros((count, window), np.float32)
    confs = np.zeros((count, bins["n_bins"]), np.float32)
    energies = np.zeros((count, bins["n_bins"]), np.float32)
    buffers = _Buffers(window)
    table = []
    for row in range(count):
        sample = start + row
        if settings["kind"] == "random_polyphony":
            notes = sample_random_polyphony(key, sample, settings, timbre_ids, window)
        else:
            notes = sample_single_note(key, sample, settings, timbres, window, sample_rate,
                                       bins)
        for j in range(len(notes["freq"])):
            render_note(waveforms[row], {name: values[j] for name, values in notes.items()},
                        timbres, sample_rate, buffers, fixed_phase)
        apply_peak_limit(waveforms[row])
        for label in label_window(notes, timbres, sample_rate, window, bins, sigma, confs[row],
                                  energies[row]):
            j = label["j"]
            table.append((row, notes["freq"][j], notes["velocity"][j], notes["timbre"][j],
                          notes["onset"][j], notes["offset"][j], label["class"],
                          label["weight"], label["share"]))
    columns = list(zip(*table)) if table else [[]] * 9
    names = ["note_sample", "note_freq", "note_velocity", "note_timbre", "note_onset",
             "note_offset", "note_class", "note_weight", "note_energy_share"]
    dtypes = [np.int32, np.float32, np.float32, np.int16, np.int32, np.int32, np.int8,
              np.float32, np.float32]
    notes_table = {name: np.asarray(column, dtype) for name, column, dtype
                   in zip(names, columns, dtypes)}
    return {"waveforms": waveforms, "confs": confs, "energies": energies, "notes": notes_table}
