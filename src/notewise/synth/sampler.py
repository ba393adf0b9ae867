"""Note samplers driven by the counter RNG: every draw of sample ``i`` is ``rng(key, i, draw)``.

``random_polyphony`` (seed section 6.1, with the SPEC's corrections). Draw numbers for sample i:

    draw 0                      polyphony = polyphony_choices[randint(0, len - 1)]
    draw 1 + 8 j + 0            f0 = exp(uniform(log f_lo, log f_hi))      (log-uniform)
    draw 1 + 8 j + 1            timbre = timbre_choices[randint(0, len - 1)]
    draw 1 + 8 j + 2            phase key (64 bits; partial k's phase is 2 pi uniform(phase key, k))
    draw 1 + 8 j + 3            velocity = uniform(v_lo, v_hi)
    draw 1 + 8 j + 4            onset = randint(onset_lo, onset_hi)         (inclusive, unclamped)
    draw 1 + 8 j + 5            offset = randint(max(onset, 0), offset_max) (inclusive)

for notes ``j = 0..polyphony-1`` (draws 6 and 7 of each note are reserved: chord detune and
doubling). With the ``chords`` setting (``notewise.synth.chords``) a share of the windows takes
its frequencies from a chord instead of draw ``1 + 8 j``; off (share 0), nothing changes. Notes
whose visible span ``[max(onset, 0), min(offset, W))`` is empty (zero length, or entirely outside
the window) are then dropped; the survivors keep their draws, so a note never depends on another's fate.

``single_note`` (the sanity set): sample ``i`` is bin ``i // samples_per_bin`` at exactly the bin
centre, one note of the configured timbre and velocity, phase key = draw 0. Its onset and offset
put the whole window in the steady state: ``onset = -ceil(attack + decay)`` (the sustain has
begun before sample 0; ``onset = 0`` instead when the sustain level is 0, so that plucked timbres
are audible), ``offset = W + ceil(release)`` (the release, at most that long, starts at or after
the window's end). So the note is class 4, and with the pure sine timbre the window is exactly
``velocity * sin(2 pi f n / sr + phase)`` like the design document's sanity data.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from notewise.synth.bin_kernels import bin_to_freq_scalar
from notewise.synth.chords import chord_frequencies
from notewise.synth.rng import randint, random_u64, uniform

DRAWS_PER_NOTE = 8
DRAW_FREQ, DRAW_TIMBRE, DRAW_PHASE, DRAW_VELOCITY, DRAW_ONSET, DRAW_OFFSET = 0, 1, 2, 3, 4, 5


@njit(cache=True)
def note_draw(note, field):
    """Draw number of ``field`` of note ``note`` (0-based)."""
    return 1 + DRAWS_PER_NOTE * note + field


@njit(cache=True)
def is_visible(onset, offset, window):
    """Whether the note has at least one sample in ``[0, window)``."""
    return min(offset, window) > max(onset, 0)


@njit(cache=True)
def sample_random_polyphony(key, sample, params, window, freqs, velocities, timbre_ids, onsets,
                            offsets, phase_keys):
    """Draw the notes of ``sample`` into the output arrays; returns how many are kept.

    ``params = (polyphony_choices int64[:], log_f_lo, log_f_hi, v_lo, v_hi, onset_lo, onset_hi,
    offset_max, timbre_choices int64[:], chord params (chords.chord_params))``.
    """
    (polyphony_choices, log_f_lo, log_f_hi, v_lo, v_hi, onset_lo, onset_hi, offset_max,
     timbre_choices, chord) = params
    polyphony = polyphony_choices[randint(key, sample, 0, 0, polyphony_choices.shape[0] - 1)]
    chord_freqs = np.empty(max(polyphony, 1))
    is_chord = chord_frequencies(key, sample, chord, polyphony, note_draw(0, 0), DRAWS_PER_NOTE,
                                 chord_freqs)
    kept = 0
    for note in range(polyphony):
        if is_chord:
            freq = chord_freqs[note]
        else:
            freq = np.exp(uniform(key, sample, note_draw(note, DRAW_FREQ), log_f_lo, log_f_hi))
        timbre = timbre_choices[randint(key, sample, note_draw(note, DRAW_TIMBRE), 0,
                                        timbre_choices.shape[0] - 1)]
        phase_key = random_u64(key, sample, note_draw(note, DRAW_PHASE))
        velocity = uniform(key, sample, note_draw(note, DRAW_VELOCITY), v_lo, v_hi)
        onset = randint(key, sample, note_draw(note, DRAW_ONSET), onset_lo, onset_hi)
        offset_lo = max(onset, 0)
        offset = offset_lo
        if offset_max > offset_lo:
            offset = randint(key, sample, note_draw(note, DRAW_OFFSET), offset_lo, offset_max)
        if not is_visible(onset, offset, window):
            continue
        freqs[kept], velocities[kept], timbre_ids[kept] = freq, velocity, timbre
        onsets[kept], offsets[kept], phase_keys[kept] = onset, offset, phase_key
        kept += 1
    return kept


@njit(cache=True)
def steady_state_span(adsr_row, sample_rate, window):
    """(onset, offset) that keep the whole window in the envelope's steady state (see module)."""
    attack = np.float64(adsr_row[0]) * sample_rate
    decay = np.float64(adsr_row[1]) * sample_rate
    release = np.float64(adsr_row[3]) * sample_rate
    onset = -np.int64(np.ceil(attack + decay)) if adsr_row[2] > 0.0 else np.int64(0)
    return onset, window + np.int64(np.ceil(release))


@njit(cache=True)
def sample_single_note(key, sample, params, adsr, window, sample_rate, f_min, f_max, n_bins,
                       freqs, velocities, timbre_ids, onsets, offsets, phase_keys):
    """The one note of sanity sample ``sample``; returns 1.

    ``params = (samples_per_bin, velocity, timbre)``.
    """
    samples_per_bin, velocity, timbre = params
    bin_index = sample // samples_per_bin
    freqs[0] = bin_to_freq_scalar(np.float64(bin_index), f_min, f_max, n_bins)
    velocities[0] = velocity
    timbre_ids[0] = timbre
    onsets[0], offsets[0] = steady_state_span(adsr[timbre], sample_rate, window)
    phase_keys[0] = random_u64(key, sample, 0)
    return 1
