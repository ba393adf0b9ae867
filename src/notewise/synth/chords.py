"""Chord-structured polyphony: a setting of ``random_polyphony`` (``chords:``, off by default).

Random notes almost never stand in a musical interval, while chord tones in real music share
partials (the fifth of C is C's third harmonic). With ``chords.share > 0`` that share of the
windows draws its note *frequencies* from a chord instead of log-uniformly; everything else about
the notes (count, timbre, phase, velocity, onset, offset: ``sampler``'s draws) and every label
rule is unchanged. With ``share = 0`` no chord draw is made and the windows are byte-identical to
the design document's distribution.

A chord window (counter RNG draws of sample ``i``, after every note draw of ``sampler``:
``CHORD_DRAW_BASE = 1 + 8 * MAX_POLYPHONY``):

    base + 0   chord window iff uniform01 < share
    base + 1   family by ``weights`` (octave, fifth, third, triad, seventh, cluster), then a shape
               of the family uniformly (third: major/minor; triad: major, minor, diminished,
               augmented; seventh: dominant, major, minor, half-diminished, diminished)
    base + 2   bass: log-uniform in freq_range, snapped to the tuning grid
    base + 3   inversion: the lowest k tones of the shape moved up an octave, k uniform
    base + 4   grid offset: the whole grid shifted by uniform(-grid_offset_cents, +)
    note j, field 6 (``sampler`` reserves 6 and 7):  detune uniform(-detune_cents, +detune_cents)
    note j, field 7:  a doubling (j >= the shape's size): which chord tone and how many octaves
               (1..doubling_octaves, up or down); for a cluster the step (1 or 2 semitones) above
               the previous note

The grid is 12-tone equal temperament on ``reference_hz`` (A4), shifted per window. Notes
``j < size`` are the voicing's tones above the bass (a window with fewer notes than the shape
keeps its lowest ones); later notes double chord tones in other octaves. Every note is folded by
octaves into freq_range (when the range spans an octave), then detuned.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from notewise.synth.rng import randint, uniform, uniform01

#: Most notes one window can have (the schema's polyphony maximum); chord draws come after theirs.
MAX_POLYPHONY = 64
CHORD_DRAW_BASE = 1 + 8 * MAX_POLYPHONY
DRAW_CHORD, DRAW_SHAPE, DRAW_BASS, DRAW_INVERSION, DRAW_GRID = 0, 1, 2, 3, 4
DRAW_DETUNE, DRAW_DOUBLING = 6, 7  # per-note fields (sampler.note_draw)

FAMILIES = ("octave", "fifth", "third", "triad", "seventh", "cluster")
CLUSTER = FAMILIES.index("cluster")
#: Chord shapes of each family, semitones above the root (clusters are built note by note).
SHAPES = {
    "octave": [[0, 12]],
    "fifth": [[0, 7]],
    "third": [[0, 4], [0, 3]],
    "triad": [[0, 4, 7], [0, 3, 7], [0, 3, 6], [0, 4, 8]],
    "seventh": [[0, 4, 7, 10], [0, 4, 7, 11], [0, 3, 7, 10], [0, 3, 6, 10], [0, 3, 6, 9]],
    "cluster": [[0]],
}
MAX_SHAPE = 4


def chord_params(chords: dict, freq_range) -> tuple:
    """The Numba params of a ``chords`` setting (defaults filled in) and ``freq_range``."""
    weights = np.array([float(chords["weights"].get(f, 0.0)) for f in FAMILIES])
    if weights.min() < 0 or weights.sum() <= 0:
        raise ValueError(f"chords.weights must be >= 0 with a positive sum, got {weights}")
    family_first, family_count, tones, sizes = [], [], [], []
    for family in FAMILIES:
        family_first.append(len(tones))
        family_count.append(len(SHAPES[family]))
        for shape in SHAPES[family]:
            tones.append(shape + [0] * (MAX_SHAPE - len(shape)))
            sizes.append(len(shape))
    f_lo, f_hi = (float(f) for f in freq_range)
    return (float(chords["share"]), np.cumsum(weights) / weights.sum(),
            np.array(family_first, np.int64), np.array(family_count, np.int64),
            np.array(tones, np.int64), np.array(sizes, np.int64),
            float(chords["detune_cents"]), float(chords["grid_offset_cents"]),
            float(np.log2(chords["reference_hz"])), np.int64(chords["doubling_octaves"]),
            np.log2(f_lo), np.log2(f_hi))


def chords_off(freq_range=(20.0, 5000.0)) -> tuple:
    """Params with share 0 (chords off), for kinds that hold no chord setting."""
    return chord_params({"share": 0.0, "weights": {"triad": 1.0}, "detune_cents": 0.0,
                         "grid_offset_cents": 0.0, "reference_hz": 440.0,
                         "doubling_octaves": 1}, freq_range)


@njit(cache=True)
def chord_draw(key, sample, params):
    """``(is_chord, family, shape)`` of ``sample`` (family/shape -1 when not a chord window)."""
    share, cdf, family_first, family_count = params[0], params[1], params[2], params[3]
    if share <= 0.0 or uniform01(key, sample, CHORD_DRAW_BASE + DRAW_CHORD) >= share:
        return False, -1, -1
    u = uniform01(key, sample, CHORD_DRAW_BASE + DRAW_SHAPE)
    family = 0
    while family < cdf.shape[0] - 1 and u >= cdf[family]:
        family += 1
    # the same draw, rescaled inside the family's cdf slot, picks the shape
    low = cdf[family - 1] if family > 0 else 0.0
    inner = (u - low) / max(cdf[family] - low, 1e-300)
    shape = family_first[family] + min(np.int64(inner * family_count[family]),
                                       family_count[family] - 1)
    return True, family, shape


@njit(cache=True)
def _fold(log_f, log_lo, log_hi):
    """``log2 f`` moved by whole octaves into ``[log_lo, log_hi]`` where the range allows."""
    while log_f > log_hi and log_f - 1.0 >= log_lo:
        log_f -= 1.0
    while log_f < log_lo and log_f + 1.0 <= log_hi:
        log_f += 1.0
    return log_f


@njit(cache=True)
def chord_frequencies(key, sample, params, polyphony, first_draw, draws_per_note, out):
    """If ``sample`` is a chord window, its ``polyphony`` note frequencies (Hz) into ``out``
    and True; else False (``out`` untouched). Note ``j``'s field ``f`` is draw
    ``first_draw + draws_per_note * j + f`` (the sampler's layout)."""
    is_chord, family, shape = chord_draw(key, sample, params)
    if not is_chord:
        return False
    tones, sizes = params[4], params[5]
    detune, grid_offset, log_ref, octaves = params[6], params[7], params[8], params[9]
    log_lo, log_hi = params[10], params[11]
    offset = uniform(key, sample, CHORD_DRAW_BASE + DRAW_GRID, -grid_offset, grid_offset) / 1200.0
    log_bass = uniform(key, sample, CHORD_DRAW_BASE + DRAW_BASS, log_lo, log_hi)
    log_bass = log_ref + offset + np.round((log_bass - log_ref - offset) * 12.0) / 12.0
    size = sizes[shape]
    voicing = np.zeros(MAX_SHAPE, np.int64)
    inversion = randint(key, sample, CHORD_DRAW_BASE + DRAW_INVERSION, 0, size - 1)
    for t in range(size):
        rotated = (t + inversion) % size
        voicing[t] = tones[shape, rotated] + (12 if rotated < inversion else 0)
    for t in range(size - 1, -1, -1):
        voicing[t] -= voicing[0]
    semis = 0
    for j in range(polyphony):
        note_base = first_draw + draws_per_note * j
        if family == CLUSTER:
            if j > 0:
                semis += randint(key, sample, note_base + DRAW_DOUBLING, 1, 2)
        elif j < size:
            semis = voicing[j]
        else:
            pick = randint(key, sample, note_base + DRAW_DOUBLING, 0, size * 2 * octaves - 1)
            shift = pick // size - octaves
            semis = voicing[pick % size] + 12 * (shift if shift < 0 else shift + 1)
        log_f = _fold(log_bass + semis / 12.0, log_lo, log_hi)
        cents = uniform(key, sample, note_base + DRAW_DETUNE, -detune, detune)
        out[j] = 2.0 ** (log_f + cents / 1200.0)
    return True
