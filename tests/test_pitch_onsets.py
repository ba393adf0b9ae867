"""Onset strength from the audio at a window's stamp (``notewise.pitch.onsets``)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from notewise.pitch.audio import frame, stamp_offset
from notewise.pitch.notes import ATTACK_STRENGTH
from notewise.pitch.onsets import onset_strength

RATE, HOP, WINDOW, STAMP = 44100, 441, 4096, 0.375


def struck(onset_s: float, f0: float = 440.0, seconds: float = 1.0) -> np.ndarray:
    """A decaying tone of 4 partials from ``onset_s`` over quiet noise (-80 dB)."""
    t = np.arange(int(seconds * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 5))
    noise = 1e-4 * np.random.default_rng(0).standard_normal(len(t))
    return (np.where(t >= onset_s, tone * np.exp(-3 * (t - onset_s)), 0) + noise).astype(np.float32)


def strengths(audio: np.ndarray) -> np.ndarray:
    windows = frame(audio, WINDOW, HOP, STAMP)
    return onset_strength(windows, np.arange(len(windows)), stamp_offset(WINDOW, STAMP), HOP, RATE)


@settings(max_examples=12, deadline=None)
@given(st.floats(0.3, 0.7), st.sampled_from([110.0, 440.0, 1760.0]))
def test_an_attack_is_strongest_in_the_frame_of_its_hop(onset_s, f0):
    """Within a frame of the frame whose hop (``t +- 5 ms``) holds the attack, and far above
    what the ringing tone gives later."""
    found = strengths(struck(onset_s, f0))[:-20]  # not the zero padding past the end
    strongest = int(np.argmax(found[10:])) + 10  # nor the noise's own start at 0
    assert abs(strongest - onset_s * RATE / HOP) <= 1.0
    ringing = found[strongest + 10:strongest + 40]
    assert found[strongest] >= ATTACK_STRENGTH * np.median(ringing)


def test_a_steady_tone_has_no_attack_and_rows_pick_their_windows():
    t = np.arange(RATE) / RATE
    steady = strengths((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    inner = steady[20:-20]  # away from the zero padding at either end
    assert inner.max() <= 2 * np.median(inner) + 1.0
    windows = frame(struck(0.5), WINDOW, HOP, STAMP)
    rows = np.array([50, 3, 50, 7])
    every = onset_strength(windows, np.arange(len(windows)), stamp_offset(WINDOW, STAMP), HOP, RATE)
    picked = onset_strength(windows, rows, stamp_offset(WINDOW, STAMP), HOP, RATE)
    np.testing.assert_allclose(picked, every[rows], rtol=1e-5)
    assert onset_strength(windows, np.zeros(0, np.int64), 1536, HOP, RATE).shape == (0,)


def test_a_louder_file_does_not_move_its_attacks():
    quiet, loud = strengths(struck(0.5)), strengths(8 * struck(0.5))
    assert int(np.argmax(quiet[10:-20])) == int(np.argmax(loud[10:-20]))


def test_windows_taken_in_batches_give_the_same_strengths(monkeypatch):
    from notewise.pitch import onsets

    audio = struck(0.5)
    whole = strengths(audio)
    monkeypatch.setattr(onsets, "BATCH", 7)
    np.testing.assert_array_equal(strengths(audio), whole)
