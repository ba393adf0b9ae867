"""Synthesis kernel: exactness against a direct float64 sum, envelope, band limit, peak limit."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notewise.synth import oscillator as synth
from notewise.synth.rng import uniform01
from notewise.synth.sampler import steady_state_span

SR = 44100.0
W = 4096



def timbre_of(lib, family):
    return next(t for t, name in enumerate(lib.names) if name.startswith(family))


def render(lib, timbre, freq, onset, offset, *, velocity=0.7, key=1, length=W,
           fixed_phase=np.nan):
    out = np.zeros(length, np.float32)
    scratch = synth.new_scratch(length, lib.max_partials)
    synth.render_note(out, freq, velocity, onset, offset, lib.amplitudes[timbre],
                      np.float64(lib.inharmonicity[timbre]), lib.adsr[timbre], np.uint64(key),
                      fixed_phase, SR, scratch)
    return out


def direct(lib, timbre, freq, onset, offset, *, velocity=0.7, key=1, length=W):
    """The defining formula, in float64 with np.sin, one partial at a time."""
    n = np.arange(length)
    attack, decay, sustain, release = synth.envelope_in_samples(lib.adsr[timbre], SR)
    env = np.array([synth.envelope_level(u, offset - onset, attack, decay, sustain, release)
                    for u in n - onset + 0.5])
    env[(n < onset) | (n >= offset)] = 0.0
    stretch = float(lib.inharmonicity[timbre])
    top = synth.audible_partial_count(freq, lib.amplitudes[timbre], stretch, SR)
    signal = np.zeros(length)
    for k in range(1, top + 1):
        phase = 2 * np.pi * uniform01(np.uint64(key), k, 0)
        omega = 2 * np.pi * synth.partial_frequency(freq, k, stretch) / SR
        signal += float(lib.amplitudes[timbre, k - 1]) * np.sin(omega * n + phase)
    return velocity * env * signal


FAMILIES = ["sine", "saw", "square", "formant", "missing_fundamental", "plucked", "pad", "piano",
            "bell"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("freq,onset,offset", [(27.5, -3000, 6000), (440.0, 100, 3000),
                                               (3951.0, -20, 4200), (1234.5, 4000, 4096)])
def test_render_matches_the_direct_sum(lib, family, freq, onset, offset):
    timbre = timbre_of(lib, family)
    got = render(lib, timbre, freq, onset, offset, key=timbre + 17)
    want = direct(lib, timbre, freq, onset, offset, key=timbre + 17)
    # float32 accumulation; Clenshaw's round-off grows with the partial count near t = 0
    assert np.abs(got - want).max() < 2e-5 * max(1.0, np.abs(want).max())


@settings(max_examples=25, deadline=None)
@given(freq=st.floats(20.0, 5000.0), onset=st.integers(-5000, 4095),
       length=st.integers(1, 9000), timbre=st.integers(0, 99))
def test_render_matches_the_direct_sum_anywhere(lib, freq, onset, length, timbre):
    got = render(lib, timbre, freq, onset, onset + length, key=3)
    want = direct(lib, timbre, freq, onset, onset + length, key=3)
    assert np.abs(got - want).max() < 2e-5 * max(1.0, np.abs(want).max())


def test_note_sounds_exactly_on_onset_to_offset(lib):
    out = render(lib, timbre_of(lib, "saw"), 300.0, 1000, 2500)
    assert not out[:1000].any() and not out[2500:].any()
    assert np.abs(out[1000:1010]).max() > 0 and np.abs(out[2490:2500]).max() > 0


def test_negative_onset_is_not_clamped(lib):
    timbre = timbre_of(lib, "pad")  # slow attack: at sample 0 it is still rising
    attack, decay, sustain, release = synth.envelope_in_samples(lib.adsr[timbre], SR)
    onset = -int(attack / 2)
    env = np.zeros(W, np.float32)
    synth.fill_envelope(env, 0, W, onset, 20000, lib.adsr[timbre], SR, 1.0)
    assert env[0] == pytest.approx((-onset + 0.5) / attack, rel=1e-6)  # not 0.5 / attack
    assert env[0] > 0.4


def test_envelope_fill_equals_the_envelope_at_sample_centres(lib):
    for timbre in range(0, 100, 7):
        attack, decay, sustain, release = synth.envelope_in_samples(lib.adsr[timbre], SR)
        for onset, offset in [(-500, 3000), (10, 9000), (-9000, 1200), (200, 230)]:
            env = np.zeros(W, np.float32)
            first, stop = max(onset, 0), min(offset, W)
            synth.fill_envelope(env, first, stop, onset, offset, lib.adsr[timbre], SR, 1.0)
            want = [synth.envelope_level(n - onset + 0.5, offset - onset, attack, decay,
                                         sustain, release) for n in range(first, stop)]
            np.testing.assert_allclose(env[first:stop], want, atol=2e-7)
            assert not env[:first].any() and not env[stop:].any()


def test_release_ends_at_zero_and_short_notes_release_at_most_half():
    attack, decay, sustain, release = 100.0, 200.0, 0.5, 1000.0
    long_note = 5000.0
    assert synth.envelope_level(long_note, long_note, attack, decay, sustain, release) == 0.0
    assert synth.envelope_level(long_note - release, long_note, attack, decay, sustain,
                                release) == pytest.approx(sustain)
    short = 400.0  # shorter than attack + decay + release
    u_rel, r_eff = synth.release_start(short, release)
    assert r_eff == short / 2 and u_rel == short / 2
    peak = synth.envelope_level(u_rel, short, attack, decay, sustain, release)
    assert peak == pytest.approx(1.0 - 0.5 * (200 - 100) / 200)  # decay reached at u = 200
    levels = [synth.envelope_level(u, short, attack, decay, sustain, release)
              for u in np.linspace(0, short, 401)]
    assert max(np.abs(np.diff(levels))) < 0.02, "continuous"


def test_partial_count_stops_below_nyquist(lib):
    saw = timbre_of(lib, "saw")
    assert synth.audible_partial_count(4000.0, lib.amplitudes[saw], 0.0, SR) == 5
    assert synth.audible_partial_count(SR / 6, lib.amplitudes[saw], 0.0, SR) == 2  # 3rd = Nyquist
    assert synth.audible_partial_count(30000.0, lib.amplitudes[saw], 0.0, SR) == 0


def spectrum_peaks_db(signal):
    windowed = signal.astype(np.float64) * np.kaiser(signal.size, 20.0)  # sidelobes < -140 dB
    magnitude = np.abs(np.fft.rfft(windowed, 4 * signal.size))
    freqs = np.fft.rfftfreq(4 * signal.size, 1 / SR)
    return freqs, 20 * np.log10(magnitude / magnitude.max() + 1e-300)


@pytest.mark.parametrize("family,freq", [("saw", 4000.0), ("bright", 3100.0), ("bell", 2500.0),
                                         ("piano", 4700.0)])
def test_band_limit_no_energy_off_the_partials(lib, family, freq):
    """Every spectral component above -110 dB sits at a partial below Nyquist: a partial at or
    above Nyquist would alias to sr - f_k, which is >= 40 Hz away from every true partial here."""
    timbre = timbre_of(lib, family)
    length = 1 << 15
    onset, offset = steady_state_span(lib.adsr[timbre], SR, length)
    if lib.adsr[timbre][2] == 0:  # no sustain: keep the decay slow enough to stay visible
        onset, offset = 0, length + 100_000
    signal = render(lib, timbre, freq, onset, offset, length=length)
    freqs, level_db = spectrum_peaks_db(signal)
    stretch = float(lib.inharmonicity[timbre])
    top = synth.audible_partial_count(freq, lib.amplitudes[timbre], stretch, SR)
    partials = np.array([synth.partial_frequency(freq, k, stretch) for k in range(1, top + 1)
                         if lib.amplitudes[timbre, k - 1] > 0])
    assert partials.max() < SR / 2
    distance = np.abs(freqs[:, None] - partials[None, :]).min(1)
    loud = level_db > -110
    assert distance[loud].max() < 25.0, f"energy at {freqs[loud][distance[loud] >= 25][:5]} Hz"
    for partial in partials:  # and every expected partial is there
        near = np.abs(freqs - partial) < 5
        amplitude = lib.amplitudes[timbre][np.argmin(np.abs(partials - partial))]
        if amplitude > 1e-2:
            assert level_db[near].max() > -60


def test_fixed_phase_gives_the_seed_sine(lib):
    out = render(lib, 0, 440.0, -1000, 10_000, velocity=0.8, fixed_phase=0.25)
    n = np.arange(W)
    np.testing.assert_allclose(out, 0.8 * np.sin(2 * np.pi * 440.0 / SR * n + 0.25), atol=2e-7)


def test_random_phases_differ_by_key_and_are_uniform():
    phases = np.zeros(48)
    synth.fill_partial_phases(phases, np.uint64(5), 48, np.nan)
    other = np.zeros(48)
    synth.fill_partial_phases(other, np.uint64(6), 48, np.nan)
    assert not np.allclose(phases, other)
    many = np.zeros(4000)
    synth.fill_partial_phases(many, np.uint64(7), 4000, np.nan)
    assert many.min() >= 0 and many.max() < 2 * np.pi
    counts, _ = np.histogram(many, bins=8, range=(0, 2 * np.pi))
    assert counts.min() > 400 and counts.max() < 600


def test_sincos_matches_libm():
    angles = np.concatenate([np.linspace(-20000, 20000, 100_001), [0.0, np.pi / 4, np.pi / 2]])
    cos_out, sin_out = np.empty_like(angles), np.empty_like(angles)
    synth.sincos_into(angles, angles.size, cos_out, sin_out)
    assert np.abs(cos_out - np.cos(angles)).max() < 5e-16
    assert np.abs(sin_out - np.sin(angles)).max() < 5e-16


def test_peak_limit():
    loud = (np.sin(np.arange(W) * 0.01) * 3.0).astype(np.float32)
    loud[123] = -4.0
    gain = synth.apply_peak_limit(loud, synth.PEAK_LIMIT)
    assert gain == pytest.approx(0.99 / 4.0)
    assert np.abs(loud).max() <= 0.99 * (1 + 1e-6) and np.abs(loud).max() < 1.0
    quiet = (np.sin(np.arange(W) * 0.01) * 0.5).astype(np.float32)
    before = quiet.copy()
    assert synth.apply_peak_limit(quiet, synth.PEAK_LIMIT) == 1.0
    assert np.array_equal(quiet, before)
    assert synth.peak_magnitude(before) == np.abs(before).max()
    assert synth.peak_magnitude(np.zeros(8, np.float32)) == 0.0


def test_render_window_mixes_and_limits(lib):
    out = np.zeros(W, np.float32)
    scratch = synth.new_scratch(W, lib.max_partials)
    count = 6
    freqs = np.array([110.0, 220.0, 330.0, 440.0, 550.0, 660.0])
    args = (freqs, np.ones(count), np.array([1, 2, 3, 4, 5, 6]), np.full(count, -100),
            np.full(count, 9000), np.arange(count, dtype=np.uint64))
    gain = synth.render_window(out, count, *args, np.nan, lib.amplitudes, lib.inharmonicity,
                               lib.adsr, SR, scratch)
    assert gain < 1.0 and np.abs(out).max() == pytest.approx(0.99, rel=1e-6)
    separate = np.zeros(W)
    for j in range(count):
        separate += render(lib, j + 1, freqs[j], -100, 9000, velocity=1.0, key=j)
    np.testing.assert_allclose(out, gain * separate, atol=1e-5)
