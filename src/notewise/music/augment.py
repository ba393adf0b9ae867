"""Realistic augmentations of music-driven windows, each a config switch, labels kept consistent.

Every random value comes from the counter RNG (``rng``), so an augmented sample is still a pure
function of (seed, dataset, sample index). Draw numbers are fixed per augmentation (see
``WINDOW_DRAWS`` and ``NOTE_DRAWS``), so switching one augmentation on or off never changes the
draws of another.

Window-level (drawn per sample ``i`` with the dataset key):

* **gain**: ``x *= 10**(g / 20)``, ``g`` uniform in ``gain.db``. Targets are unchanged (shares are
  relative; confidences do not depend on level).
* **noise**: white or pink Gaussian noise at an SNR uniform in ``noise.snr_db`` relative to the
  window's mean square (silent windows get none). Noise is not a note: targets are unchanged.
* **room**: the dry window is convolved with a synthetic impulse response ``h`` (a unit direct
  path, then Gaussian noise decaying exponentially at 60 dB per ``rt60``, cut where it is
  ``ROOM_TAIL_DB`` = 40 dB down, its energy ``drr_db`` below the direct path; normalised to
  ``sum h**2 = 1``). A tail labelled down to -60 dB would put confidence 0.3 on notes nobody
  hears; cut at -40 dB, nothing sounds after a labelled offset. The tail is the note's release:
  a note's labelled offset becomes ``offset + len(h) - 1`` (the end of its convolved support),
  so notes that ended before the window but ring into it are labelled (classes 1/3) and classes
  follow the extended offset.
  Its energy ``E = coeff_room * v**2 * mean(p over the visible span)`` (times ``visible / 2`` for
  classes 1/3, as in SPEC section 2) with ``coeff_room = sum_k A_k**2 |H(f_k)|**2 / 2`` (the
  exact steady-state power of the partials through ``h``) and ``p`` the convolution of ``env**2``
  with ``h**2`` (the power envelope spread by the room's power decay; exact in expectation over
  the noise's phases). Only the mean of ``p`` over the visible span is needed, and that is
  ``sum_m env(m)**2 (C(stop - m) - C(first - m)) / (stop - first)`` with ``C`` the cumulative sum
  of ``h**2`` (``room_mean_square``): one pass over the note's samples, no convolution.

Note-level (drawn per (piece, note) with the piece's key, so a note sounds the same in every
window that cuts it, and a window is a cut of one rendered performance):

* **detune**: a constant offset uniform in ``[-detune.cents, cents]``;
* **vibrato**: ``f(t) = f_c * 2**(depth * sin(2 pi rate t + phi) / 1200)``, rendered by the
  synthesis kernels of ``synth`` in segments of ``VIBRATO_SEGMENT`` samples at constant frequency
  with phase-continuous partials (no kernel is duplicated). The label is the mean f0 over the
  visible samples; the note table's ``note_detune_cents`` is the label's deviation from the MIDI
  pitch and ``note_vibrato_cents`` the depth;
* **timbre mixture**: the note's harmonic amplitudes are a random convex blend of 2..max
  library timbres (renormalised to ``sum A_k**2 = 1``), with the primary timbre's envelope and
  stretch. Partials of one note at the same frequency add coherently, so the blend *is* a timbre
  and SPEC's closed-form energy holds exactly (``energy_coeff`` of the blended row).
"""
from __future__ import annotations

import numpy as np
import scipy.fft
from numba import njit

from notewise.music.checks import enabled
from notewise.synth.rng import randint, random_u64, uniform, uniform01
from notewise.synth.oscillator import (TWO_PI, audible_partial_count, envelope_in_samples, envelope_piece_samples,
                    fill_envelope, fill_partial_phases, partial_frequency, render_harmonic,
                    render_inharmonic)

VIBRATO_SEGMENT = 128  # samples at one frequency (2.9 ms at 44.1 kHz)
RT60_DECAY_DB = 60.0
ROOM_TAIL_DB = 40.0  # the impulse response ends this far down (its end is the labelled offset)

# window-level draw numbers (sample i, dataset key); 0 is the window position (music.py)
DRAW_GAIN, DRAW_NOISE_ON, DRAW_NOISE_SNR, DRAW_NOISE_COLOR, DRAW_NOISE_KEY = 1, 2, 3, 4, 5
DRAW_ROOM_ON, DRAW_ROOM_RT60, DRAW_ROOM_KEY, DRAW_ROOM_DRR = 6, 7, 8, 9
# note-level draw numbers (note index in its piece, piece key)
(DRAW_PHASE, DRAW_DETUNE, DRAW_VIB_ON, DRAW_VIB_RATE, DRAW_VIB_DEPTH, DRAW_VIB_PHASE,
 DRAW_MIX_ON, DRAW_MIX_KEY) = range(8)


# ----------------------------------------------------------------------------- settings


def _probability(augment, name) -> float:
    return float(augment[name].get("prob", 1.0)) if enabled(augment, name) else 0.0


# ----------------------------------------------------------------------------- note draws


class NoteAugment:
    """Per-note draws of a window's notes: detune (cents), vibrato (rate Hz, depth cents,
    phase rad) and the mixture partners (timbre ids, weights; empty when unmixed)."""

    def __init__(self, count: int):
        self.detune = np.zeros(count)
        self.vib_rate = np.zeros(count)
        self.vib_depth = np.zeros(count)
        self.vib_phase = np.zeros(count)
        self.mix: list[tuple[np.ndarray, np.ndarray]] = [None] * count


def draw_note_augment(augment: dict, note_keys: np.ndarray, note_ids: np.ndarray,
                      timbre_choices: np.ndarray) -> NoteAugment:
    """Augmentation draws of notes ``note_ids`` (indices in their pieces, keys per note's piece)."""
    out = NoteAugment(len(note_ids))
    detune = float(augment["detune"]["cents"]) if enabled(augment, "detune") else 0.0
    vib_p, mix_p = _probability(augment, "vibrato"), _probability(augment, "timbre_mix")
    for j, (key, note) in enumerate(zip(note_keys, note_ids)):
        if detune > 0:
            out.detune[j] = uniform(key, note, DRAW_DETUNE, -detune, detune)
        if vib_p > 0 and uniform01(key, note, DRAW_VIB_ON) < vib_p:
            vib = augment["vibrato"]
            out.vib_rate[j] = uniform(key, note, DRAW_VIB_RATE, *vib["rate_hz"])
            out.vib_depth[j] = uniform(key, note, DRAW_VIB_DEPTH, *vib["depth_cents"])
            out.vib_phase[j] = uniform(key, note, DRAW_VIB_PHASE, 0.0, TWO_PI)
        if mix_p > 0 and uniform01(key, note, DRAW_MIX_ON) < mix_p:
            out.mix[j] = mixture_partners(np.uint64(random_u64(key, note, DRAW_MIX_KEY)),
                                          int(augment["timbre_mix"]["max_timbres"]),
                                          timbre_choices)
    return out


def mixture_partners(key, max_timbres: int, choices: np.ndarray):
    """1..max_timbres-1 partner timbres and the convex weights of (primary, partners...)."""
    count = int(randint(key, 0, 0, 2, max(max_timbres, 2)))
    partners = np.array([choices[randint(key, 0, 1 + m, 0, len(choices) - 1)]
                         for m in range(count - 1)], np.int64)
    raw = np.array([0.2 + uniform01(key, 0, 16 + m) for m in range(count)])
    return partners, raw / raw.sum()


def blend_amplitudes(amplitudes: np.ndarray, primary: int, partners: np.ndarray,
                     weights: np.ndarray) -> np.ndarray:
    """The convex blend of the rows' amplitudes, renormalised to ``sum A_k**2 = 1``."""
    ids = np.concatenate([[primary], partners]).astype(np.int64)
    row = (weights[:, None] * amplitudes[ids].astype(np.float64)).sum(axis=0)
    return (row / np.sqrt(np.sum(row**2))).astype(np.float32)


# ----------------------------------------------------------------------------- rendering


@njit(cache=True)
def segment_frequency(freq, rate, depth_cents, phase, onset, seg_start, sample_rate):
    """Vibrato frequency of the segment holding window sample ``seg_start``: the vibrato at the
    centre of the whole segment (note time from the onset), so that a segment has one frequency
    whichever part of it a window sees."""
    centre = ((seg_start - onset) // VIBRATO_SEGMENT + 0.5) * VIBRATO_SEGMENT
    cents = depth_cents * np.sin(TWO_PI * rate * centre / sample_rate + phase)
    return freq * 2.0 ** (cents / 1200.0)


@njit(cache=True)
def segment_stop(seg_start, stop, onset):
    """End of the vibrato segment holding ``seg_start``: segments are ``VIBRATO_SEGMENT``
    samples of note time (from the onset), so they do not depend on where the window is."""
    return min(stop, onset + ((seg_start - onset) // VIBRATO_SEGMENT + 1) * VIBRATO_SEGMENT)


@njit(cache=True)
def advance_phases(phases, freq, amplitudes_row, stretch, count, sample_rate):
    """Advance every partial's phase by ``count`` samples at ``freq`` (wrapped to [0, 2 pi))."""
    for k in range(1, amplitudes_row.shape[0] + 1):
        omega = TWO_PI * partial_frequency(freq, k, stretch) / sample_rate
        phases[k - 1] = (phases[k - 1] + omega * count) % TWO_PI


@njit(cache=True)
def _render_segment(out, env, first, stop, freq, amplitudes_row, stretch, sample_rate, scratch,
                    phases):
    """One constant-frequency segment whose partial phases at sample ``first`` are ``phases``
    (the kernels take phases at sample 0: ``phi_k - w_k first``); advances ``phases`` to
    ``stop``."""
    top = audible_partial_count(freq, amplitudes_row, stretch, sample_rate)
    angles = scratch.angles
    for k in range(1, top + 1):
        omega = TWO_PI * partial_frequency(freq, k, stretch) / sample_rate
        angles[k - 1] = (phases[k - 1] - (omega * first) % TWO_PI) % TWO_PI
    if top > 0 and stretch == 0.0:
        render_harmonic(out, env, first, stop, freq, amplitudes_row, top, sample_rate, scratch)
    elif top > 0:
        render_inharmonic(out, env, first, stop, freq, amplitudes_row, stretch, top,
                          sample_rate, scratch)
    advance_phases(phases, freq, amplitudes_row, stretch, stop - first, sample_rate)


@njit(cache=True)
def render_performed_note(out, freq, velocity, onset, offset, amplitudes_row, stretch, adsr_row,
                          phase_key, rate, depth_cents, vib_phase, sample_rate, scratch, phases):
    """Add one note to ``out`` with its partial phases drawn *at its onset* (``phase_key``) and
    carried forward, so the note is the same whatever window cuts it; with ``depth_cents > 0``
    the frequency follows the vibrato in segments of ``VIBRATO_SEGMENT`` samples of note time
    (phase-continuous). Returns the mean f0 over the samples rendered."""
    first, stop = max(onset, 0), min(offset, out.shape[0])
    if stop <= first:
        return freq
    env = scratch.env
    fill_envelope(env, first, stop, onset, offset, adsr_row, sample_rate, velocity)
    fill_partial_phases(phases, phase_key, amplitudes_row.shape[0], np.nan)
    if depth_cents == 0.0:
        advance_phases(phases, freq, amplitudes_row, stretch, first - onset, sample_rate)
        _render_segment(out, env, first, stop, freq, amplitudes_row, stretch, sample_rate,
                        scratch, phases)
        return freq
    # the phases the vibrato reached before the first sample: partial frequencies are linear in
    # f0, so the segments' sum of f0 x length advances every partial at once
    seg_start, f0_samples = onset, 0.0
    while seg_start < first:
        seg_stop = segment_stop(seg_start, first, onset)
        f0_samples += (segment_frequency(freq, rate, depth_cents, vib_phase, onset, seg_start,
                                         sample_rate) * (seg_stop - seg_start))
        seg_start = seg_stop
    advance_phases(phases, f0_samples, amplitudes_row, stretch, 1, sample_rate)
    total = 0.0
    while seg_start < stop:
        seg_stop = segment_stop(seg_start, stop, onset)
        seg_freq = segment_frequency(freq, rate, depth_cents, vib_phase, onset, seg_start,
                                     sample_rate)
        _render_segment(out, env, seg_start, seg_stop, seg_freq, amplitudes_row, stretch,
                        sample_rate, scratch, phases)
        total += seg_freq * (seg_stop - seg_start)
        seg_start = seg_stop
    return total / (stop - first)


@njit(cache=True)
def mean_vibrato_frequency(freq, rate, depth_cents, vib_phase, onset, first, stop, sample_rate):
    """Mean of the segment frequencies over samples ``[first, stop)`` (as ``render_performed_note``
    renders them), without rendering."""
    if stop <= first or depth_cents == 0.0:
        return freq
    total = 0.0
    seg_start = first
    while seg_start < stop:
        seg_stop = segment_stop(seg_start, stop, onset)
        seg_freq = segment_frequency(freq, rate, depth_cents, vib_phase, onset, seg_start,
                                     sample_rate)
        total += seg_freq * (seg_stop - seg_start)
        seg_start = seg_stop
    return total / (stop - first)


# ----------------------------------------------------------------------------- room


def room_impulse_response(key, sample: int, rt60_s: float, drr_db: float,
                          sample_rate: float) -> np.ndarray:
    """Unit direct path plus exponentially decaying Gaussian noise (-60 dB at ``rt60_s``, cut
    where it is ``ROOM_TAIL_DB`` down), the tail ``drr_db`` below the direct path in energy;
    normalised to ``sum h**2 = 1``. Pure in ``(key, sample)``."""
    length = max(int(np.ceil(rt60_s * sample_rate * ROOM_TAIL_DB / RT60_DECAY_DB)), 2)
    noise = gaussian_noise(random_u64(key, sample, DRAW_ROOM_KEY), length - 1)
    per_sample_db = RT60_DECAY_DB / (rt60_s * sample_rate)
    decay = 10.0 ** (-per_sample_db * np.arange(1, length) / 20.0)
    tail = noise * decay
    tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / np.sum(tail**2))
    ir = np.concatenate([[1.0], tail])
    return ir / np.sqrt(np.sum(ir**2))


@njit(cache=True, fastmath={"contract"})
def room_energy_coeff(freq, amplitudes_row, stretch, sample_rate, ir):
    """``sum_k A_k**2 |H(f_k)|**2 / 2`` over the synthesised partials, with ``|H(f_k)|**2`` of
    the impulse response exact at each partial's frequency: one Goertzel recurrence per partial
    (``s_n = h_n + 2 cos(w_k) s_{n-1} - s_{n-2}``, then ``|H|**2 = s_1**2 + s_2**2 - 2 cos(w_k)
    s_1 s_2``), all partials side by side in the inner loop (vectorised)."""
    top = audible_partial_count(freq, amplitudes_row, stretch, sample_rate)
    two_cos, s1, s2 = np.empty(top), np.zeros(top), np.zeros(top)
    for k in range(top):
        two_cos[k] = 2.0 * np.cos(TWO_PI * partial_frequency(freq, k + 1, stretch) / sample_rate)
    for n in range(ir.shape[0]):
        h = ir[n]
        for k in range(top):
            s0 = (h - s2[k]) + two_cos[k] * s1[k]  # the subtraction off the critical path
            s2[k] = s1[k]
            s1[k] = s0
    total = 0.0
    for k in range(top):
        power = s1[k] * s1[k] + s2[k] * s2[k] - two_cos[k] * s1[k] * s2[k]
        total += np.float64(amplitudes_row[k]) ** 2 * power
    return 0.5 * total


def room_window(dry: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """Samples ``shift .. len(dry) - 1`` (``shift = len(ir) - 1``) of the linear convolution of
    ``dry`` with ``ir``, float64: the wet window of a dry signal that starts ``shift`` samples
    before it. One real FFT of ``next_fast_len(len(dry))`` points: a circular convolution of that
    size wraps nothing into these samples."""
    shift = len(ir) - 1
    if len(dry) < len(ir):
        raise ValueError(f"dry signal of {len(dry)} samples is shorter than the impulse response")
    n_fft = scipy.fft.next_fast_len(len(dry), real=True)
    spectrum = scipy.fft.rfft(dry, n_fft) * scipy.fft.rfft(ir, n_fft)
    return scipy.fft.irfft(spectrum, n_fft)[shift:len(dry)]


@njit(cache=True)
def room_mean_square(first, stop, onset, offset, adsr_row, sample_rate, h2_cumsum):
    """Mean over window samples ``first <= n < stop`` of ``p = env**2 * h**2`` (convolution) for
    a note sounding on ``[onset, offset)`` (velocity 1): ``sum_m env(m)**2 (C(stop - m) -
    C(first - m)) / (stop - first)``, where ``C(j) = h2_cumsum[clip(j, 0, L)]`` is the sum of the
    first ``j`` values of ``h**2`` (``h2_cumsum[0] = 0``, ``L = len(h)``). Only ``m`` with a
    non-zero weight, ``first - L < m < stop``, are visited."""
    length = h2_cumsum.shape[0] - 1
    attack, decay, sustain, release = envelope_in_samples(adsr_row, sample_rate)
    lo, hi = max(onset, first - length + 1), min(offset, stop)
    total = 0.0
    for piece in range(4):
        n_lo, n_hi, base, slope = envelope_piece_samples(piece, lo, hi, onset, offset, attack,
                                                         decay, sustain, release)
        for j in range(n_hi - n_lo):
            m = n_lo + j
            level = np.float64(np.float32(base + slope * j))  # as fill_envelope stores it
            weight = (h2_cumsum[min(max(stop - m, 0), length)]
                      - h2_cumsum[min(max(first - m, 0), length)])
            total += level * level * weight
    return total / (stop - first)


# ----------------------------------------------------------------------------- noise and gain


@njit(cache=True)
def _gaussian_fill(out, key):
    """Standard normal values (Box-Muller on counter draws ``(key, n, 0..1)``)."""
    for n in range(out.shape[0]):
        u1 = 1.0 - uniform01(key, n, 0)
        u2 = uniform01(key, n, 1)
        out[n] = np.sqrt(-2.0 * np.log(u1)) * np.cos(TWO_PI * u2)


def gaussian_noise(key, length: int) -> np.ndarray:
    out = np.empty(length)
    _gaussian_fill(out, np.uint64(key))
    return out


def coloured_noise(key, length: int, pink: bool) -> np.ndarray:
    """Unit-variance white, or pink (power ~ 1/f, no DC) Gaussian noise."""
    noise = gaussian_noise(key, length)
    if pink:
        spectrum = np.fft.rfft(noise)
        scale = np.zeros(len(spectrum))
        scale[1:] = 1.0 / np.sqrt(np.arange(1, len(spectrum)))
        noise = np.fft.irfft(spectrum * scale, length)
    return noise / np.sqrt(np.mean(noise**2))


def apply_gain_and_noise(wave: np.ndarray, augment: dict, key, sample: int) -> dict:
    """Window-level gain then noise, in place (float32); returns what was applied."""
    applied = {}
    if enabled(augment, "gain"):
        db = uniform(key, sample, DRAW_GAIN, *augment["gain"]["db"])
        wave *= np.float32(10.0 ** (db / 20.0))
        applied["gain_db"] = db
    noise = augment.get("noise", {})
    power = float(np.mean(wave.astype(np.float64) ** 2))
    drawn = enabled(augment, "noise") and uniform01(key, sample, DRAW_NOISE_ON) < noise["prob"]
    if drawn and power > 0:
        snr = uniform(key, sample, DRAW_NOISE_SNR, *noise["snr_db"])
        colors = noise["colors"]
        color = colors[randint(key, sample, DRAW_NOISE_COLOR, 0, len(colors) - 1)]
        added = coloured_noise(random_u64(key, sample, DRAW_NOISE_KEY), len(wave), color == "pink")
        wave += (added * np.sqrt(power / 10.0 ** (snr / 10.0))).astype(np.float32)
        applied.update(snr_db=snr, color=color)
    return applied


def room_draw(augment: dict, key, sample: int, sample_rate: float) -> np.ndarray | None:
    """The window's impulse response, or None (room off, or not drawn for this window)."""
    if not enabled(augment, "room"):
        return None
    if uniform01(key, sample, DRAW_ROOM_ON) >= augment["room"]["prob"]:
        return None
    room = augment["room"]
    rt60 = uniform(key, sample, DRAW_ROOM_RT60, *room["rt60_s"])
    drr = uniform(key, sample, DRAW_ROOM_DRR, *room["drr_db"])
    return room_impulse_response(key, sample, rt60, drr, sample_rate)
