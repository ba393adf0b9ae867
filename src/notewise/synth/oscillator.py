"""The synthesis kernel: band-limited additive notes with ADSR envelopes, mixed per window.

A note is ``(freq f0, velocity v, timbre, onset, offset, partial phases phi_k)``; its waveform at
window sample ``n`` is

    x(n) = v * env(n - onset + 1/2) * sum_k A_k * sin(w_k * n + phi_k),   onset <= n < offset,

with ``w_k = 2 pi f_k / sr`` and ``f_k = k f0 sqrt(1 + B k^2)`` (``B = 0`` for harmonic timbres).
Only partials with ``A_k > 0`` and ``f_k < sr / 2`` are synthesised (band limit: nothing at or above
Nyquist, so nothing aliases). The phase reference is window sample 0.

Envelope (times in samples, ``a, d, r`` = attack, decay, release seconds times ``sr``; ``s`` the
sustain level; ``L = offset - onset`` the note length; ``u`` the time since the onset). Sample
``n`` is evaluated at the *centre* of its sample interval, ``u = n - onset + 1/2`` (symmetric:
the first and the last sample of a note are equally far from level 0)::

    r_eff   = min(r, L / 2)                 # release shortened for short notes
    u_rel   = L - r_eff                     # release starts here, inside the note
    ad(u)   = u / a                              0 <= u < a        (attack, linear from 0)
            = 1 - (1 - s) (u - a) / d            a <= u < a + d    (decay to sustain)
            = s                                  u >= a + d        (sustain)
    env(u)  = ad(u)                              u < u_rel
            = ad(u_rel) * (L - u) / r_eff        u_rel <= u <= L   (release to 0 at the offset)

So the note ends at level 0 exactly at its offset and never lasts longer than ``[onset, offset)``.
If a note is shorter than ``a + d + r``, the release takes at most half the note and begins from
wherever attack/decay had reached (``ad(u_rel)``), which keeps the envelope continuous. The onset
is never clamped: a note that began before the window (negative onset) is in the right envelope
phase at sample 0.

Harmonic partials are summed with a Clenshaw recurrence across harmonics (no ``sin`` in the inner
loop): ``sum_k c_k e^{ikt}`` with ``c_k = A_k e^{i phi_k}`` and ``e^{i(k+1)t} = 2 cos t e^{ikt} -
e^{i(k-1)t}`` gives ``b_k = (c_k - b_{k+2}) + 2 cos(t) b_{k+1}`` (``b_{K+1} = b_{K+2} = 0``) and
``x = Im(e^{it} b_1 - b_2)``: per harmonic and sample, two fused multiply-adds and two subtractions
in float32 (real and imaginary part). The loops run harmonics outer and samples inner, over blocks
of ``BLOCK`` samples whose six float32 buffers stay in L1 and which LLVM vectorises, eight
harmonics per pass where it can, else four (harmonics are zero-padded to a multiple of four; zero
coefficients leave the recurrence exactly unchanged). The first pass also forms the per-sample
``2 cos t, sin t``, the last one mixes into the window, so nothing but the recurrence touches
memory in between.

``e^{i w n}`` per sample is ``e^{i w n0} * T[n - n0]`` for the block start ``n0``, in float64 and
rounded to float32 once: the table ``T[j] = e^{i w j}``, ``j < BLOCK``, is the product of 16 + 32
exact sines and cosines (two levels), and ``e^{i w n0}`` advances by an exact rotation per block.
The few dozen sines and cosines a note needs (table, partial phases) come from ``sincos_into``,
a vectorised polynomial accurate to libm's last bit or so.

Inharmonic partials cannot use Clenshaw (``f_k`` are not multiples of ``f0``): every partial
keeps a float64 phasor ``z = A_k e^{i(w_k n0 + phi_k)}`` per block of ``PHASOR_BLOCK`` samples and
a float32 table ``e^{i w_k j}``; the block contributes ``Im(z e^{i w_k j})``, two partials per pass.
Again no ``sin`` per sample.

After all notes are mixed, one gain per window brings the peak to ``PEAK_LIMIT`` if (and only if)
it exceeds it.

Determinism: same inputs give bit-identical output on the same machine. The only fast-math flag is
``contract`` (fusing ``a * b + c`` into one FMA) on the inner loops; nothing is reassociated and
the loop order is fixed. A CPU without FMA, or another LLVM, may round differently in the last
float32 bit; that is the "same CPU family and library versions" caveat of shard reproducibility.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from notewise.synth.rng import uniform01

BLOCK = 512  # samples per Clenshaw block (6 float32 buffers of this size stay in L1)
TABLE_FINE, TABLE_COARSE = 16, 32  # BLOCK = fine * coarse: rotation table from 48 sin/cos
PHASOR_BLOCK = 64  # samples per block of the inharmonic phasor path
PHASOR_FINE = PHASOR_COARSE = 8  # PHASOR_BLOCK = fine * coarse
PEAK_LIMIT = 0.99
TWO_PI = 2.0 * np.pi


# ----------------------------------------------------------------------------- envelope


@njit(cache=True)
def envelope_in_samples(adsr_row, sample_rate):
    """(attack, decay, sustain_level, release) with the times converted to samples."""
    return (np.float64(adsr_row[0]) * sample_rate, np.float64(adsr_row[1]) * sample_rate,
            np.float64(adsr_row[2]), np.float64(adsr_row[3]) * sample_rate)


@njit(cache=True)
def attack_decay_level(u, attack, decay, sustain):
    """The attack/decay/sustain part of the envelope at note time ``u`` (samples)."""
    if u < attack:
        return u / attack
    if u < attack + decay:
        return 1.0 - (1.0 - sustain) * (u - attack) / decay
    return sustain


@njit(cache=True)
def release_start(length, release):
    """(u_rel, r_eff): where the release starts and how long it lasts in a note of ``length``."""
    effective = min(release, 0.5 * length)
    return length - effective, effective


@njit(cache=True)
def envelope_level(u, length, attack, decay, sustain, release):
    """The envelope at note time ``u`` (samples, continuous) of a note ``length`` samples long."""
    if u < 0.0 or u > length:
        return 0.0
    u_rel, r_eff = release_start(length, release)
    if u < u_rel:
        return attack_decay_level(u, attack, decay, sustain)
    return attack_decay_level(u_rel, attack, decay, sustain) * (length - u) / r_eff


@njit(cache=True)
def envelope_piece(piece, length, attack, decay, release):
    """Note-time bounds ``(u_lo, u_hi)`` of linear piece 0..3 (attack, decay, sustain, release),
    the first three clipped to the release start; empty pieces have ``u_hi <= u_lo``."""
    u_rel, _ = release_start(length, release)
    attack_end = min(attack, u_rel)
    decay_end = min(attack + decay, u_rel)
    if piece == 0:
        return 0.0, attack_end
    if piece == 1:
        return attack_end, decay_end
    if piece == 2:
        return decay_end, u_rel
    return u_rel, length


@njit(cache=True)
def envelope_piece_samples(piece, first, stop, onset, offset, attack, decay, sustain, release):
    """Samples ``n_lo <= n < n_hi`` (within ``[first, stop)``) whose centre ``n - onset + 1/2``
    lies on linear piece ``piece`` of the envelope, and the level there as ``base + slope * j``
    with ``j = n - n_lo``. Shared by the synthesis and the closed-form label energy."""
    length = np.float64(offset - onset)
    u_lo, u_hi = envelope_piece(piece, length, attack, decay, release)
    n_lo = max(first, np.int64(np.ceil(u_lo + onset - 0.5)))
    n_hi = min(stop, np.int64(np.ceil(u_hi + onset - 0.5)))
    if n_hi <= n_lo:
        return n_lo, n_lo, 0.0, 0.0
    level_lo = envelope_level(u_lo, length, attack, decay, sustain, release)
    level_hi = envelope_level(u_hi, length, attack, decay, sustain, release)
    slope = (level_hi - level_lo) / (u_hi - u_lo)
    return n_lo, n_hi, level_lo + slope * (n_lo - onset + 0.5 - u_lo), slope


@njit(cache=True)
def fill_envelope(env, first, stop, onset, offset, adsr_row, sample_rate, gain):
    """Write ``gain * env(n - onset + 1/2)`` into ``env[n]`` for ``first <= n < stop``."""
    attack, decay, sustain, release = envelope_in_samples(adsr_row, sample_rate)
    for piece in range(4):
        n_lo, n_hi, base, slope = envelope_piece_samples(piece, first, stop, onset, offset,
                                                         attack, decay, sustain, release)
        base, slope = gain * base, gain * slope
        piece_env = env[n_lo:n_hi]
        for j in range(n_hi - n_lo):
            piece_env[j] = np.float32(base + slope * j)


# ----------------------------------------------------------------------------- sin and cos


# fdlibm's Cody-Waite split of pi/2 and its kernel polynomials on [-pi/4, pi/4]
_INV_HALF_PI = 2.0 / np.pi
_PIO2_1 = 1.57079632673412561417e+00
_PIO2_1T = 6.07710050650619224932e-11
_S1, _S2, _S3 = -1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04
_S4, _S5, _S6 = 2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10
_C1, _C2, _C3 = 4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05
_C4, _C5, _C6 = -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11


@njit(cache=True)
def sincos_into(angles, count, cos_out, sin_out):
    """``cos`` and ``sin`` of ``angles[:count]`` (|angle| < 1e6), within 2 ulp of libm.

    A branch-free loop (quadrant by selects) that LLVM vectorises: a note needs a few dozen
    sines and cosines (partial phases, rotation tables), and libm's scalar calls would cost
    more than the synthesis of a short note.
    """
    for i in range(count):
        x = angles[i]
        n = np.floor(x * _INV_HALF_PI + 0.5)
        r = (x - n * _PIO2_1) - n * _PIO2_1T
        z = r * r
        s = r + r * z * (_S1 + z * (_S2 + z * (_S3 + z * (_S4 + z * (_S5 + z * _S6)))))
        c = 1.0 - 0.5 * z + z * z * (_C1 + z * (_C2 + z * (_C3 + z * (_C4 + z * (_C5 + z * _C6)))))
        quadrant = np.int64(n) & 3
        swap = (quadrant & 1) == 1
        cos_sign = 1.0 - 2.0 * (((quadrant + 1) >> 1) & 1)
        sin_sign = 1.0 - 2.0 * ((quadrant >> 1) & 1)
        cos_out[i] = cos_sign * (s if swap else c)
        sin_out[i] = sin_sign * (c if swap else s)


# ----------------------------------------------------------------------------- partials


@njit(cache=True)
def partial_frequency(freq, k, stretch):
    """Frequency of partial ``k`` (1-based): ``k f0 sqrt(1 + B k^2)``."""
    if stretch == 0.0:
        return k * freq
    return k * freq * np.sqrt(1.0 + stretch * k * k)


@njit(cache=True)
def audible_partial_count(freq, amplitudes_row, stretch, sample_rate):
    """Highest partial index ``k`` with ``A_k > 0`` and ``f_k < sr / 2`` (0 if none)."""
    nyquist = 0.5 * sample_rate
    top = 0
    for k in range(1, amplitudes_row.shape[0] + 1):
        if partial_frequency(freq, k, stretch) >= nyquist:
            break
        if amplitudes_row[k - 1] > 0.0:
            top = k
    return top


@njit(cache=True)
def fill_partial_phases(phases, phase_key, count, fixed_phase):
    """Phase of partial ``k`` into ``phases[k-1]``, ``k = 1..count``: ``2 pi * uniform(phase_key,
    k)``, or ``fixed_phase`` for every partial when that is not NaN."""
    for k in range(1, count + 1):
        if np.isnan(fixed_phase):
            phases[k - 1] = TWO_PI * uniform01(phase_key, k, 0)
        else:
            phases[k - 1] = fixed_phase


@njit(cache=True)
def two_level_angles(angles, at, omega, fine, coarse):
    """Write ``omega * j`` (``j < fine``) then ``omega * fine * m`` (``m < coarse``) at
    ``angles[at:]``: their sines and cosines give ``e^{i omega n}`` for every
    ``n < fine * coarse`` by one complex product (``expand_two_level``)."""
    for j in range(fine):
        angles[at + j] = omega * j
    for m in range(coarse):
        angles[at + fine + m] = omega * (fine * m)


@njit(cache=True)
def expand_two_level(trig, at, fine, coarse, table_re, table_im):
    """``table[fine*m + j] = e^{i omega fine m} e^{i omega j}`` from the sines and cosines of
    ``two_level_angles(angles, at, ...)`` in ``trig``; the table may be float64 or float32."""
    fine_re, fine_im = trig[0, at:at + fine], trig[1, at:at + fine]
    coarse_re = trig[0, at + fine:at + fine + coarse]
    coarse_im = trig[1, at + fine:at + fine + coarse]
    for m in range(coarse):
        c_re, c_im = coarse_re[m], coarse_im[m]
        row_re = table_re[fine * m:fine * m + fine]
        row_im = table_im[fine * m:fine * m + fine]
        for j in range(fine):
            row_re[j] = c_re * fine_re[j] - c_im * fine_im[j]
            row_im[j] = c_re * fine_im[j] + c_im * fine_re[j]


# ----------------------------------------------------------------------------- Clenshaw path


@njit(inline="always")
def _four_harmonics(x, b1, b2, c0, c1, c2, c3):
    """Four Clenshaw steps ``b_k = (c_k - b_{k+2}) + x b_{k+1}`` (the subtraction is off the
    critical path); in: ``b1 = b_{k+1}, b2 = b_{k+2}``, out: ``b_{k-3}, b_{k-2}``."""
    b2 = (c0 - b2) + x * b1
    b1 = (c1 - b1) + x * b2
    b2 = (c2 - b2) + x * b1
    b1 = (c3 - b1) + x * b2
    return b1, b2


@njit(inline="always")
def _block_phasor(start_re, start_im, table_re, table_im, j):
    """(2 cos t, sin t) as float32 for ``t = omega (block_start + j)`` by angle addition."""
    cos_t = start_re * table_re[j] - start_im * table_im[j]
    sin_t = start_im * table_re[j] + start_re * table_im[j]
    return np.float32(2.0 * cos_t), np.float32(sin_t)


@njit(inline="always")
def _signal(x, sin_t, b1_re, b1_im, b2_im):
    """``Im(e^{it} b_1 - b_2)`` with ``cos t = x / 2`` (exact in binary)."""
    return sin_t * b1_re + np.float32(0.5) * x * b1_im - b2_im


@njit(inline="always")
def _four_coefficients(coef, k):
    """``coef[k-1], coef[k-2], coef[k-3], coef[k-4]`` as scalars (loaded once, outside the
    sample loop: LLVM cannot hoist them past stores that might alias)."""
    return coef[k - 1], coef[k - 2], coef[k - 3], coef[k - 4]


@njit(cache=True, fastmath={"contract"})
def _single_partial_pass(out, env, count, start_re, start_im, table_re, table_im, c_re, c_im):
    """A lone first partial (the pure sine): ``Im(c_1 e^{it})``, no recurrence needed."""
    coef_re, coef_im = c_re[0], c_im[0]
    for j in range(count):
        x, sin_t = _block_phasor(start_re, start_im, table_re, table_im, j)
        value = sin_t * coef_re + np.float32(0.5) * x * coef_im
        out[j] += env[j] * value


@njit(cache=True, fastmath={"contract"})
def _clenshaw_single_pass(out, env, count, start_re, start_im, table_re, table_im, c_re, c_im):
    """Blocks of notes with at most 4 (zero-padded) harmonics: one pass does everything.
    ``out`` and ``env`` are the block's slices."""
    zero = np.float32(0.0)
    r3, r2, r1, r0 = _four_coefficients(c_re, 4)
    m3, m2, m1, m0 = _four_coefficients(c_im, 4)
    for j in range(count):
        x, sin_t = _block_phasor(start_re, start_im, table_re, table_im, j)
        b1_re, b2_re = _four_harmonics(x, zero, zero, r3, r2, r1, r0)
        b1_im, b2_im = _four_harmonics(x, zero, zero, m3, m2, m1, m0)
        out[j] += env[j] * _signal(x, sin_t, b1_re, b1_im, b2_im)


@njit(cache=True, fastmath={"contract"})
def _clenshaw_head(two_cos, sines, br1, bi1, br2, bi2, count, start_re, start_im, table_re,
                   table_im, c_re, c_im, k):
    """First pass: per-sample phasor (kept in ``two_cos, sines``) and harmonics ``k..k-3``
    from zero."""
    zero = np.float32(0.0)
    r3, r2, r1, r0 = _four_coefficients(c_re, k)
    m3, m2, m1, m0 = _four_coefficients(c_im, k)
    for j in range(count):
        x, sin_t = _block_phasor(start_re, start_im, table_re, table_im, j)
        two_cos[j] = x
        sines[j] = sin_t
        br1[j], br2[j] = _four_harmonics(x, zero, zero, r3, r2, r1, r0)
        bi1[j], bi2[j] = _four_harmonics(x, zero, zero, m3, m2, m1, m0)


@njit(cache=True, fastmath={"contract"})
def _clenshaw_middle(two_cos, br1, bi1, br2, bi2, count, c_re, c_im, k):
    """Harmonics ``k..k-3`` continuing from ``b_{k+1}, b_{k+2}`` in ``br1, br2`` (``bi`` imag)."""
    r3, r2, r1, r0 = _four_coefficients(c_re, k)
    m3, m2, m1, m0 = _four_coefficients(c_im, k)
    for j in range(count):
        x = two_cos[j]
        br1[j], br2[j] = _four_harmonics(x, br1[j], br2[j], r3, r2, r1, r0)
        bi1[j], bi2[j] = _four_harmonics(x, bi1[j], bi2[j], m3, m2, m1, m0)


@njit(cache=True, fastmath={"contract"})
def _clenshaw_middle8(two_cos, br1, bi1, br2, bi2, count, c_re, c_im, k):
    """Harmonics ``k..k-7`` in one pass: the same steps as two ``_clenshaw_middle`` passes, with
    half their loads and stores."""
    r3, r2, r1, r0 = _four_coefficients(c_re, k)
    m3, m2, m1, m0 = _four_coefficients(c_im, k)
    r7, r6, r5, r4 = _four_coefficients(c_re, k - 4)
    m7, m6, m5, m4 = _four_coefficients(c_im, k - 4)
    for j in range(count):
        x = two_cos[j]
        b1, b2 = _four_harmonics(x, br1[j], br2[j], r3, r2, r1, r0)
        br1[j], br2[j] = _four_harmonics(x, b1, b2, r7, r6, r5, r4)
        b1, b2 = _four_harmonics(x, bi1[j], bi2[j], m3, m2, m1, m0)
        bi1[j], bi2[j] = _four_harmonics(x, b1, b2, m7, m6, m5, m4)


@njit(cache=True, fastmath={"contract"})
def _clenshaw_tail(out, env, two_cos, sines, br1, bi1, br2, bi2, count, c_re, c_im):
    """Harmonics 4..1, then ``out += env * Im(e^{it} b_1 - b_2)`` (block slices)."""
    r3, r2, r1, r0 = _four_coefficients(c_re, 4)
    m3, m2, m1, m0 = _four_coefficients(c_im, 4)
    for j in range(count):
        x = two_cos[j]
        b1_re, _ = _four_harmonics(x, br1[j], br2[j], r3, r2, r1, r0)
        b1_im, b2_im = _four_harmonics(x, bi1[j], bi2[j], m3, m2, m1, m0)
        out[j] += env[j] * _signal(x, sines[j], b1_re, b1_im, b2_im)


@njit(cache=True)
def render_harmonic(out, env, first, stop, freq, amplitudes_row, top, sample_rate, scratch):
    """Add ``env[n] * sum_{k<=top} A_k sin(k w n + phi_k)`` to ``out[n]`` for ``first <= n < stop``.

    The partial phases are in ``scratch.angles[:top]``. Harmonics are zero-padded up to a multiple
    of four (zero coefficients leave the recurrence exactly unchanged).
    """
    work, angles, trig, coefs, table = (scratch.work, scratch.angles, scratch.trig, scratch.coefs,
                                        scratch.rotation)
    omega = TWO_PI * freq / sample_rate
    padded = 4 * ((top + 3) // 4)
    # only as many table rows as the longest block needs (short notes, vibrato segments)
    coarse = min(TABLE_COARSE, (min(BLOCK, stop - first) + TABLE_FINE - 1) // TABLE_FINE)
    table_angles = TABLE_FINE + coarse
    two_level_angles(angles, top, omega, TABLE_FINE, coarse)
    angles[top + table_angles] = omega * first
    angles[top + table_angles + 1] = omega * BLOCK
    sincos_into(angles, top + table_angles + 2, trig[0], trig[1])
    c_re, c_im = coefs[0], coefs[1]
    for k in range(padded):
        amplitude = amplitudes_row[k] if k < top else 0.0
        c_re[k] = np.float32(amplitude * trig[0, k])
        c_im[k] = np.float32(amplitude * trig[1, k])
    table_re, table_im = table[0], table[1]
    expand_two_level(trig, top, TABLE_FINE, coarse, table_re, table_im)
    start_re, start_im = trig[0, top + table_angles], trig[1, top + table_angles]
    step_re, step_im = trig[0, top + table_angles + 1], trig[1, top + table_angles + 1]
    two_cos, sines, br1, bi1, br2, bi2 = work[0], work[1], work[2], work[3], work[4], work[5]
    for block_start in range(first, stop, BLOCK):
        count = min(BLOCK, stop - block_start)
        block_out = out[block_start:block_start + count]
        block_env = env[block_start:block_start + count]
        if top == 1:
            _single_partial_pass(block_out, block_env, count, start_re, start_im, table_re,
                                 table_im, c_re, c_im)
        elif padded == 4:
            _clenshaw_single_pass(block_out, block_env, count, start_re, start_im, table_re,
                                  table_im, c_re, c_im)
        else:
            _clenshaw_head(two_cos, sines, br1, bi1, br2, bi2, count, start_re, start_im,
                           table_re, table_im, c_re, c_im, padded)
            k = padded - 4
            while k > 4:  # eight harmonics a pass while at least four remain for the tail
                if k - 8 >= 4:
                    _clenshaw_middle8(two_cos, br1, bi1, br2, bi2, count, c_re, c_im, k)
                    k -= 8
                else:
                    _clenshaw_middle(two_cos, br1, bi1, br2, bi2, count, c_re, c_im, k)
                    k -= 4
            _clenshaw_tail(block_out, block_env, two_cos, sines, br1, bi1, br2, bi2, count,
                           c_re, c_im)
        start_re, start_im = (start_re * step_re - start_im * step_im,
                              start_re * step_im + start_im * step_re)


# ----------------------------------------------------------------------------- inharmonic path


@njit(cache=True)
def _prepare_partial_phasors(freq, amplitudes_row, stretch, top, first, sample_rate, scratch):
    """Per audible partial: a float32 table ``e^{i w_k j}`` (``j < PHASOR_BLOCK``) and the float64
    state (block-start phasor ``A_k e^{i(w_k first + phi_k)}``, block step ``e^{i w_k B}``).
    Returns the number of partials prepared."""
    angles, trig, tables, state = (scratch.angles, scratch.trig, scratch.phasor_tables,
                                   scratch.phasor_state)
    table_angles = PHASOR_FINE + PHASOR_COARSE
    stride = table_angles + 2  # per partial: table angles, start phase, block step
    count = 0
    for k in range(1, top + 1):
        if amplitudes_row[k - 1] == 0.0:
            continue
        omega = TWO_PI * partial_frequency(freq, k, stretch) / sample_rate
        state[count, 0] = amplitudes_row[k - 1]
        state[count, 1] = omega * first + angles[k - 1]  # angles[:top] hold the phases
        state[count, 2] = omega
        count += 1
    base = top  # the sin/cos arguments go after the phases
    for p in range(count):
        at = base + stride * p
        two_level_angles(angles, at, state[p, 2], PHASOR_FINE, PHASOR_COARSE)
        angles[at + table_angles] = state[p, 1]
        angles[at + table_angles + 1] = state[p, 2] * PHASOR_BLOCK
    sincos_into(angles[base:], stride * count, trig[0, base:], trig[1, base:])
    for p in range(count):
        at = base + stride * p
        table = tables[p]
        expand_two_level(trig, at, PHASOR_FINE, PHASOR_COARSE, table[0], table[1])
        amplitude = state[p, 0]
        state[p, 0] = amplitude * trig[0, at + table_angles]
        state[p, 1] = amplitude * trig[1, at + table_angles]
        state[p, 2] = trig[0, at + table_angles + 1]
        state[p, 3] = trig[1, at + table_angles + 1]
    return count


@njit(inline="always")
def _rotate(state):
    """Advance a partial's block-start phasor ``state[0:2]`` by its step ``state[2:4]``."""
    state[0], state[1] = (state[0] * state[2] - state[1] * state[3],
                          state[0] * state[3] + state[1] * state[2])


@njit(inline="always")
def _add_one_partial(acc, length, table, state):
    """``acc[j] += Im(z T[j])`` for one partial; then advance its phasor ``z``."""
    z_re, z_im = np.float32(state[0]), np.float32(state[1])
    table_re, table_im = table[0], table[1]
    _rotate(state)
    for j in range(length):
        acc[j] += z_re * table_im[j] + z_im * table_re[j]


@njit(inline="always")
def _add_two_partials(acc, length, table_a, table_b, state_a, state_b):
    """``_add_one_partial`` for two partials in one pass (half the loads and stores of acc)."""
    a_re, a_im = np.float32(state_a[0]), np.float32(state_a[1])
    b_re, b_im = np.float32(state_b[0]), np.float32(state_b[1])
    a_tre, a_tim, b_tre, b_tim = table_a[0], table_a[1], table_b[0], table_b[1]
    _rotate(state_a)
    _rotate(state_b)
    for j in range(length):
        acc[j] += (a_re * a_tim[j] + a_im * a_tre[j]) + (b_re * b_tim[j] + b_im * b_tre[j])


@njit(cache=True, fastmath={"contract"})
def render_inharmonic(out, env, first, stop, freq, amplitudes_row, stretch, top, sample_rate,
                      scratch):
    """Like ``render_harmonic`` for stretched partials: per partial and block of
    ``PHASOR_BLOCK`` samples, ``Im(z_block * e^{i w_k j})`` from a float32 table, the block-start
    phasor ``z_block`` advanced by a float64 rotation."""
    count = _prepare_partial_phasors(freq, amplitudes_row, stretch, top, first, sample_rate,
                                     scratch)
    acc, tables, state = scratch.work[0], scratch.phasor_tables, scratch.phasor_state
    for block_start in range(first, stop, PHASOR_BLOCK):
        length = min(PHASOR_BLOCK, stop - block_start)
        for j in range(length):
            acc[j] = 0.0
        for p in range(0, count - 1, 2):  # two partials per pass halve the traffic on acc
            _add_two_partials(acc, length, tables[p], tables[p + 1], state[p], state[p + 1])
        if count % 2 == 1:
            _add_one_partial(acc, length, tables[count - 1], state[count - 1])
        block_out = out[block_start:block_start + length]
        block_env = env[block_start:block_start + length]
        for j in range(length):
            block_out[j] += block_env[j] * acc[j]


# ----------------------------------------------------------------------------- notes and windows


class Scratch(NamedTuple):
    """Scratch arrays of the oscillator, reused across notes (see ``new_scratch``)."""

    env: np.ndarray
    work: np.ndarray
    angles: np.ndarray
    trig: np.ndarray
    coefs: np.ndarray
    rotation: np.ndarray
    phasor_tables: np.ndarray
    phasor_state: np.ndarray


@njit(cache=True)
def new_scratch(window, max_partials):
    """Scratch arrays reused across notes (allocating per note would cost more than a short
    note's synthesis): env float32 [window]; work float32 [6, BLOCK]; angles and trig float64
    (phases, then sin/cos arguments); Clenshaw coefficients float32 [2, K+4]; rotation table
    float64 [2, BLOCK]; per-partial phasor tables float32 [K, 2, PHASOR_BLOCK]; phasor state
    float64 [K, 4]."""
    trig_size = (max_partials + (PHASOR_FINE + PHASOR_COARSE + 2) * max_partials
                 + TABLE_FINE + TABLE_COARSE + 2)
    return Scratch(np.zeros(window, dtype=np.float32),
                   np.zeros((6, BLOCK), dtype=np.float32),
                   np.zeros(trig_size),
                   np.zeros((2, trig_size)),
                   np.zeros((2, max_partials + 4), dtype=np.float32),
                   np.zeros((2, BLOCK)),
                   np.zeros((max_partials, 2, PHASOR_BLOCK), dtype=np.float32),
                   np.zeros((max_partials, 4)))


@njit(cache=True)
def render_note(out, freq, velocity, onset, offset, amplitudes_row, stretch, adsr_row,
                phase_key, fixed_phase, sample_rate, scratch):
    """Add one note to the window ``out`` (float32, window-relative samples)."""
    first, stop = max(onset, 0), min(offset, out.shape[0])
    if stop <= first:
        return
    top = audible_partial_count(freq, amplitudes_row, stretch, sample_rate)
    if top == 0:
        return
    env = scratch.env
    fill_partial_phases(scratch.angles, phase_key, top, fixed_phase)
    fill_envelope(env, first, stop, onset, offset, adsr_row, sample_rate, velocity)
    if stretch == 0.0:
        render_harmonic(out, env, first, stop, freq, amplitudes_row, top, sample_rate, scratch)
    else:
        render_inharmonic(out, env, first, stop, freq, amplitudes_row, stretch, top,
                          sample_rate, scratch)


@njit(cache=True)
def peak_magnitude(out):
    """``max |out[n]|`` of a finite float32 array, as the integer maximum of the bit patterns
    with the sign bit cleared (same order as the magnitudes; an integer reduction vectorises
    without fast-math, a float ``max`` does not)."""
    bits = out.view(np.int32)
    peak = np.int32(0)
    for n in range(bits.shape[0]):
        peak = max(peak, bits[n] & np.int32(0x7FFFFFFF))
    return np.array([peak], dtype=np.int32).view(np.float32)[0]


@njit(cache=True)
def apply_peak_limit(out, limit):
    """Scale ``out`` in place so its peak is ``limit`` if it exceeds it; returns the gain."""
    peak = peak_magnitude(out)
    if peak <= limit:
        return np.float32(1.0)
    gain = np.float32(limit / peak)
    for n in range(out.shape[0]):
        out[n] *= gain
    return gain


@njit(cache=True)
def render_window(out, count, freqs, velocities, timbre_ids, onsets, offsets, phase_keys,
                  fixed_phase, amplitudes, stretches, adsr, sample_rate, scratch):
    """Mix notes ``0..count-1`` into ``out`` (overwritten), then limit the peak.

    Returns the window gain (1.0 when no scaling was needed).
    """
    out[:] = 0.0
    for j in range(count):
        timbre = timbre_ids[j]
        render_note(out, freqs[j], velocities[j], onsets[j], offsets[j], amplitudes[timbre],
                    np.float64(stretches[timbre]), adsr[timbre], phase_keys[j], fixed_phase,
                    sample_rate, scratch)
    return apply_peak_limit(out, PEAK_LIMIT)
