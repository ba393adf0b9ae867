"""Label math: note classes, confidence weights, power-consistent energies, target vectors.

Per note (window of ``W`` samples, onset/offset window-relative, onset possibly negative):

* class (seed section 3, ``classify_note``): ``onset <= 0 & offset >= W`` -> 4 (sounds
  throughout), ``onset > 0 & offset >= W`` -> 2 (starts inside), ``onset <= 0 & offset < W`` -> 1
  (ends inside), else 3 (starts and ends inside).
* ``visible_ratio = (min(offset, W) - max(onset, 0)) / W``.
* confidence weight: 1.0 for classes 2 and 4, else ``min(visible_ratio * 0.5, 0.3)``.
* energy ``E = coeff * velocity**2 * mean(env**2 over the visible samples)``, times
  ``visible_ratio * 0.5`` for classes 1 and 3, with ``coeff = sum(A_k**2) / 2`` over the partials
  that are actually synthesised (``A_k > 0`` and ``f_k < sr / 2``, see ``synth``). For classes
  2/4 this *is* the time-domain mean square of the note over the visible samples (a sinusoid of
  amplitude ``A`` has mean square ``A**2 / 2``; distinct partials are orthogonal over whole
  periods), which is why it is ``mean(env**2)`` and not the design document's ``mean(env)``.
* ``mean(env**2)`` over the visible samples is computed in closed form, with no per-sample pass:
  ``env`` is piecewise linear (``synth`` docstring), so on each of its four pieces the samples
  are ``y_j = y0 + s j`` (``j < m``) and ``sum_j y_j**2 = m y0**2 + s y0 m (m - 1) +
  s**2 m (m - 1) (2m - 1) / 6``. The pieces' sample ranges and levels come from the same function
  the synthesis uses (``synth.envelope_piece_samples``), so this is the exact sample mean of the
  synthesised envelope up to float round-off (1e-6 relative: the envelope is stored as float32),
  short notes and kinks included. (It equals the integral ``(u1 - u0)(y0**2 + y0 y1 + y1**2) / 3``
  per piece up to ``s**2 / 12`` per sample, the midpoint rule's error.)

Targets of a window (``n_bins`` bins, ``b`` the fractional bin of the fundamental,
``sigma = sigma_bins``):

* ``confidence[i] = max over notes of weight * exp(-(i - b)**2 / (2 sigma**2))``;
* ``energy[i] = sum over notes of (E / sum E) * g(i)``, ``g`` the same Gaussian normalised to unit
  sum over the bins that exist, so ``energy`` sums to 1 (all zeros for a silent window).

Both are evaluated only for ``|i - b| <= GAUSS_RADIUS_SIGMAS * sigma`` (6 sigma: the tail beyond is
below 1.6e-8, under float16's smallest subnormal, so the stored targets are unchanged).

Only fundamentals are labelled. Notes whose ``f0`` lies outside ``[f_min, f_max]`` are synthesised
but not labelled (``labelled[j] = False``), and so are inaudible notes (``E == 0``: every partial
above Nyquist, or an envelope that is zero over the visible span, e.g. a plucked note whose decay
ended before the window); neither adds to ``sum E``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from notewise.synth.bin_kernels import freq_to_bin_scalar
from notewise.synth.oscillator import audible_partial_count, envelope_in_samples, envelope_piece_samples

GAUSS_RADIUS_SIGMAS = 6.0
RANGE_TOLERANCE = 1e-9  # relative slack on [f_min, f_max] for float round-off


@njit(cache=True)
def classify_note(onset, offset, window):
    """Note class 1-4 exactly as the design document's ``classify_note``: 4 sounds throughout,
    1 ends inside, 2 starts inside, 3 both."""
    if onset <= 0:
        return 4 if offset >= window else 1
    return 2 if offset >= window else 3


@njit(cache=True)
def visible_ratio(onset, offset, window):
    """Fraction of the window the note covers (0 when invisible)."""
    return max(min(offset, window) - max(onset, 0), 0) / window


@njit(cache=True)
def confidence_weight(note_class, ratio):
    """1.0 for classes 2/4, else ``min(visible_ratio * 0.5, 0.3)``."""
    if note_class == 2 or note_class == 4:
        return 1.0
    return min(ratio * 0.5, 0.3)


@njit(cache=True)
def energy_coeff(freq, amplitudes_row, stretch, sample_rate):
    """``sum(A_k**2) / 2`` over the partials the synthesis renders (below Nyquist)."""
    top = audible_partial_count(freq, amplitudes_row, stretch, sample_rate)
    total = 0.0
    for k in range(top):
        total += np.float64(amplitudes_row[k]) ** 2
    return 0.5 * total


@njit(cache=True)
def linear_sum_of_squares(base, slope, count):
    """``sum_{j < count} (base + slope j)**2`` in closed form."""
    m = np.float64(count)
    sum_j = m * (m - 1.0) / 2.0
    sum_j2 = m * (m - 1.0) * (2.0 * m - 1.0) / 6.0
    return m * base * base + 2.0 * base * slope * sum_j + slope * slope * sum_j2


@njit(cache=True)
def envelope_mean_square(onset, offset, window, adsr_row, sample_rate):
    """Mean of ``env**2`` over the visible samples, in closed form (0 if invisible)."""
    first, stop = max(onset, 0), min(offset, window)
    if stop <= first:
        return 0.0
    attack, decay, sustain, release = envelope_in_samples(adsr_row, sample_rate)
    total = 0.0
    for piece in range(4):
        n_lo, n_hi, base, slope = envelope_piece_samples(piece, first, stop, onset, offset,
                                                         attack, decay, sustain, release)
        total += linear_sum_of_squares(base, slope, n_hi - n_lo)
    return total / (stop - first)


@njit(cache=True)
def note_energy(note_class, ratio, velocity, coeff, mean_square):
    """``E = coeff * v**2 * mean(env**2)``, times ``visible_ratio * 0.5`` for classes 1/3."""
    energy = coeff * velocity * velocity * mean_square
    if note_class == 1 or note_class == 3:
        energy *= ratio * 0.5
    return energy


@njit(cache=True)
def in_label_range(freq, f_min, f_max):
    """Whether ``freq`` lies in ``[f_min, f_max]`` (the labelled range)."""
    return f_min * (1.0 - RANGE_TOLERANCE) <= freq <= f_max * (1.0 + RANGE_TOLERANCE)


@njit(cache=True)
def label_notes(count, notes, timbres, grid, n_bins):
    """Per-note labels of notes ``0..count-1`` of ``notes`` (``synth.windows.NoteArrays``) into
    its label arrays, timbres and scalars from ``timbres`` (``TimbreArrays``) and ``grid``
    (``LabelGrid``); returns ``sum E`` over the labelled notes. ``notes.shares[j]`` is ``E``
    (not yet divided by the sum)."""
    freqs, velocities, timbre_ids = notes.freqs, notes.velocities, notes.timbre_ids
    onsets, offsets = notes.onsets, notes.offsets
    amplitudes, stretches, adsr = timbres.amplitudes, timbres.stretches, timbres.adsr
    sample_rate, window, f_min, f_max = grid.sample_rate, grid.window, grid.f_min, grid.f_max
    classes, weights, energies, bins, labelled = (notes.classes, notes.weights, notes.shares,
                                                  notes.bins, notes.labelled)
    total = 0.0
    for j in range(count):
        timbre = timbre_ids[j]
        note_class = classify_note(onsets[j], offsets[j], window)
        ratio = visible_ratio(onsets[j], offsets[j], window)
        coeff = energy_coeff(freqs[j], amplitudes[timbre], np.float64(stretches[timbre]),
                             sample_rate)
        mean_square = envelope_mean_square(onsets[j], offsets[j], window, adsr[timbre],
                                           sample_rate)
        classes[j] = note_class
        weights[j] = confidence_weight(note_class, ratio)
        energies[j] = note_energy(note_class, ratio, velocities[j], coeff, mean_square)
        bins[j] = freq_to_bin_scalar(freqs[j], f_min, f_max, n_bins)
        labelled[j] = in_label_range(freqs[j], f_min, f_max) and energies[j] > 0.0
        if labelled[j]:
            total += energies[j]
    return total


@njit(cache=True)
def gaussian_span(centre, sigma, n_bins):
    """Bins ``[lo, hi)`` within ``GAUSS_RADIUS_SIGMAS * sigma`` of ``centre``, clipped."""
    radius = GAUSS_RADIUS_SIGMAS * sigma
    lo = max(np.int64(np.ceil(centre - radius)), 0)
    hi = min(np.int64(np.floor(centre + radius)) + 1, n_bins)
    return lo, hi


@njit(cache=True)
def fill_gaussian(gauss, lo, hi, centre, sigma):
    """``gauss[i - lo] = exp(-(i - centre)**2 / (2 sigma**2))`` for ``lo <= i < hi``; returns the
    sum. Two ``exp`` calls instead of one per bin: consecutive values differ by the factor
    ``r_i = exp(-(2 (i - centre) + 1) / (2 sigma**2))``, and ``r_{i+1} = r_i * exp(-1 / sigma**2)``
    (relative round-off below 1e-14 over the 6-sigma span)."""
    scale = -0.5 / (sigma * sigma)
    offset = lo - centre
    value = np.exp(scale * offset * offset)
    ratio = np.exp(scale * (2.0 * offset + 1.0))
    ratio_step = np.exp(2.0 * scale)
    total = 0.0
    for i in range(hi - lo):
        gauss[i] = value
        total += value
        value *= ratio
        ratio *= ratio_step
    return total


@njit(cache=True)
def write_targets(confidence, energy, count, bins, weights, energies, labelled, total, sigma):
    """Fill one window's ``confidence`` and ``energy`` rows (zeroed here) from note labels."""
    confidence[:] = 0.0
    energy[:] = 0.0
    n_bins = confidence.shape[0]
    gauss = np.empty(2 * np.int64(np.ceil(GAUSS_RADIUS_SIGMAS * sigma)) + 2)
    for j in range(count):
        if not labelled[j]:
            continue
        lo, hi = gaussian_span(bins[j], sigma, n_bins)
        if hi <= lo:
            continue
        norm = fill_gaussian(gauss, lo, hi, bins[j], sigma)
        share = energies[j] / total
        for i in range(lo, hi):
            confidence[i] = max(confidence[i], np.float32(weights[j] * gauss[i - lo]))
            energy[i] += np.float32(share * gauss[i - lo] / norm)


@njit(cache=True)
def label_window(count, notes, timbres, grid, confidence, energy):
    """Labels and target rows of one window of notes ``0..count-1`` of ``notes``
    (``synth.windows.NoteArrays``; timbre rows ``timbres``, a ``TimbreArrays``; scalars
    ``grid``, a ``LabelGrid``).

    Writes per note: ``notes.classes`` (1-4), ``weights``, ``shares`` (``E / sum E``, 0 if
    unlabelled), ``bins`` (fractional bin of f0), ``labelled``; and the window's ``confidence``
    and ``energy`` rows. Returns the number of labelled notes.
    """
    n_bins = confidence.shape[0]
    total = label_notes(count, notes, timbres, grid, n_bins)
    shares, labelled = notes.shares, notes.labelled
    write_targets(confidence, energy, count, notes.bins, notes.weights, shares, labelled, total,
                  grid.sigma)
    n_labelled = 0
    for j in range(count):
        if labelled[j]:
            shares[j] /= total
            n_labelled += 1
        else:
            shares[j] = 0.0
    return n_labelled


@njit(cache=True)
def label_window_powers(count, freqs, onsets, offsets, powers, window, f_min, f_max, sigma,
                        confidence, energy, classes, weights, shares, bins, labelled):
    """``label_window`` for notes whose power is known (measured): ``powers[j]`` is note ``j``'s
    mean square over its visible samples, standing for ``coeff * v**2 * mean(env**2)``, so
    ``E = powers[j]`` times ``visible_ratio * 0.5`` for classes 1/3. Same outputs."""
    n_bins = confidence.shape[0]
    total = 0.0
    for j in range(count):
        classes[j] = classify_note(onsets[j], offsets[j], window)
        ratio = visible_ratio(onsets[j], offsets[j], window)
        weights[j] = confidence_weight(classes[j], ratio)
        shares[j] = note_energy(classes[j], ratio, 1.0, 1.0, powers[j])
        bins[j] = freq_to_bin_scalar(freqs[j], f_min, f_max, n_bins)
        labelled[j] = in_label_range(freqs[j], f_min, f_max) and shares[j] > 0.0
        if labelled[j]:
            total += shares[j]
    write_targets(confidence, energy, count, bins, weights, shares, labelled, total, sigma)
    for j in range(count):
        shares[j] = shares[j] / total if labelled[j] else 0.0
