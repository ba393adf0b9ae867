"""Frames to note events (hysteresis, minimum duration, velocity) and note events to MIDI."""

from __future__ import annotations

import io

import mido
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notewise.pitch.notes import (ATTACK_SEARCH_S, ATTACK_STRENGTH, MELODY_COLUMNS,
                                  MELODY_ENERGY, NOTE_COLUMNS, TICKS_PER_SECOND, frames_to_notes,
                                  melody, midi_bytes)

FRAME_S = 0.01


def frames(*runs):
    """Frame rows of ``(f0_hz, first_frame, last_frame, confidence, share)`` runs."""
    rows = [(k * FRAME_S, f0, conf, share) for f0, a, b, conf, share in runs for k in range(a, b + 1)]
    return pd.DataFrame(rows, columns=["time", "f0_hz", "confidence", "energy_share"])


def with_attacks(table: pd.DataFrame, *attacks: int, strength: float = 1.0) -> pd.DataFrame:
    """``table`` with an onset strength of 1 in every frame, and ``2 * ATTACK_STRENGTH`` in the
    frames ``attacks``."""
    frame = np.rint(table["time"] / FRAME_S).astype(int)
    return table.assign(onset_strength=np.where(frame.isin(attacks), 2 * ATTACK_STRENGTH, strength))


def by_frame(line: pd.DataFrame) -> dict:
    return dict(zip(np.rint(line["time"] / FRAME_S).astype(int), line["pitch"]))


def test_runs_become_notes_with_hysteresis_and_a_minimum_duration():
    table = frames((440.0, 0, 49, 0.8, 0.25),     # A4, 0.5 s: kept
                   (523.25, 10, 11, 0.9, 0.5),    # C5, 0.02 s: shorter than min_duration
                   (329.63, 20, 40, 0.35, 0.5),   # E4: never reaches the onset threshold
                   (440.0, 60, 69, 0.6, 1.0),     # A4 again after a gap: a second note
                   (441.0, 60, 69, 0.4, 1.0))     # a second detection snapped to the same pitch
    notes = frames_to_notes(table, FRAME_S, onset_threshold=0.5, min_duration=0.05)
    assert list(notes.columns) == NOTE_COLUMNS
    assert notes["pitch"].tolist() == [69, 69]
    np.testing.assert_allclose(notes["onset"], [0.0, 0.595])
    np.testing.assert_allclose(notes["offset"], [0.495, 0.695])
    assert notes["velocity"].tolist() == [64, 127]  # 127 * sqrt(share)
    np.testing.assert_allclose(notes["confidence"], [0.8, 0.6], rtol=1e-6)
    assert frames_to_notes(table, FRAME_S, onset_threshold=0.3)["pitch"].tolist() == [69, 64, 69]


def test_no_frames_no_notes():
    empty = frames()
    assert frames_to_notes(empty, FRAME_S).empty
    assert len(mido.MidiFile(file=io.BytesIO(midi_bytes(frames_to_notes(empty, FRAME_S)))).tracks) == 1
    with pytest.raises(ValueError, match="frame_s"):
        frames_to_notes(empty, 0)


run_st = st.tuples(st.sampled_from([220.0, 233.08, 440.0, 880.0]), st.integers(0, 80),
                   st.integers(0, 30), st.floats(0.3, 1.0), st.floats(0.0, 1.0))


@settings(max_examples=60, deadline=None)
@given(st.lists(run_st, max_size=8), st.floats(0.0, 0.2))
def test_notes_of_one_pitch_never_overlap_and_last_long_enough(runs, min_duration):
    table = frames(*[(f0, a, a + n, c, s) for f0, a, n, c, s in runs])
    notes = frames_to_notes(table, FRAME_S, onset_threshold=0.5, min_duration=min_duration)
    assert (notes["offset"] - notes["onset"] >= min_duration - 1e-12).all()
    assert notes["velocity"].between(1, 127).all()
    for _, group in notes.groupby("pitch"):
        group = group.sort_values("onset")
        assert (group["onset"].to_numpy()[1:] >= group["offset"].to_numpy()[:-1] - 1e-12).all()


def test_midi_holds_the_notes_at_their_times():
    notes = frames_to_notes(frames((440.0, 0, 49, 0.8, 0.25), (261.63, 30, 89, 0.9, 0.64)), FRAME_S)
    midi = mido.MidiFile(file=io.BytesIO(midi_bytes(notes)))
    now, sounding, found = 0, {}, []
    for message in midi.tracks[0]:
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            sounding[message.note] = (now, message.velocity)
        elif message.type in ("note_on", "note_off"):
            start, velocity = sounding.pop(message.note)
            found.append((message.note, start / TICKS_PER_SECOND, now / TICKS_PER_SECOND, velocity))
    expected = [(int(n.pitch), n.onset, n.offset, int(n.velocity)) for n in notes.itertuples()]
    assert sorted(p for p, *_ in found) == sorted(p for p, *_ in expected) == [60, 69]
    for (p, on, off, v), (p2, on2, off2, v2) in zip(sorted(found), sorted(expected)):
        assert v == v2 and abs(on - on2) <= 1 / TICKS_PER_SECOND and abs(off - off2) <= 1 / TICKS_PER_SECOND
    assert abs(midi.length - notes["offset"].max()) < 0.01


def test_the_melody_takes_the_newest_note_and_no_partial_of_another():
    table = frames((440.0, 0, 59, 0.9, 0.5),     # A4 0-0.6 s, ringing on under the next note
                   (493.88, 30, 59, 0.7, 0.5),   # B4 from 0.3 s: the newer note wins
                   (987.77, 35, 59, 0.95, 0.3),  # B5: the octave of B4, a partial, never picked
                   (739.99, 40, 59, 0.9, 0.2),   # F#5: a fifth above B4 (3/2), a partial too
                   (261.63, 50, 59, 0.45, 0.1))  # C4 from 0.5 s: under 0.5 of the top (0.95)
    line = melody(table, FRAME_S)
    assert list(line.columns) == MELODY_COLUMNS
    assert line["time"].is_monotonic_increasing and line["time"].is_unique
    by_frame = dict(zip(np.rint(line["time"] / FRAME_S).astype(int), line["pitch"]))
    assert [by_frame[k] for k in (0, 29)] == [69, 69]
    assert {by_frame[k] for k in range(30, 60)} == {71}
    assert melody(frames(), FRAME_S).empty


def test_a_melody_leaping_a_fifth_or_an_octave_over_a_ringing_note_is_no_partial():
    """A new note 7 or 12 semitones above the previous one, which still rings, started later
    and outlasts it: a melody note, not that note's partial."""
    table = frames((440.0, 0, 44, 0.9, 0.6),     # A4 0-0.45 s, ringing under the next note
                   (659.26, 30, 79, 0.8, 0.4),   # E5 (a fifth up) from 0.3 s
                   (1318.5, 60, 99, 0.8, 0.4))   # E6 (an octave up) from 0.6 s, E5 ringing on
    line = melody(table, FRAME_S)
    by_frame = dict(zip(np.rint(line["time"] / FRAME_S).astype(int), line["pitch"]))
    assert {by_frame[k] for k in range(0, 30)} == {69}
    assert {by_frame[k] for k in range(30, 60)} == {76}
    assert {by_frame[k] for k in range(60, 100)} == {88}


def test_a_new_note_takes_the_melody_once_it_carries_energy():
    """Detected while its attack is still at the window's edge, a new note holds a small share
    of the window's energy: the melody moves to it once it has MELODY_ENERGY of the loudest."""
    loud, quiet = 0.6, 0.6 * MELODY_ENERGY * 0.9
    table = frames((440.0, 0, 49, 0.9, loud),     # A4 0-0.5 s
                   (493.88, 40, 44, 0.9, quiet),  # B4 detected from 0.4 s, quiet until 0.45 s
                   (493.88, 45, 79, 0.9, loud))
    line = melody(table, FRAME_S)
    by_frame = dict(zip(np.rint(line["time"] / FRAME_S).astype(int), line["pitch"]))
    assert {by_frame[k] for k in range(0, 45)} == {69}
    assert {by_frame[k] for k in range(45, 80)} == {71}


@settings(max_examples=60, deadline=None)
@given(st.lists(run_st, max_size=8))
def test_a_melody_note_is_a_detection_of_its_frame(runs):
    table = frames(*[(f0, a, a + n, c, s) for f0, a, n, c, s in runs])
    line = melody(table, FRAME_S)
    assert line["time"].is_unique
    detected = set(zip(table["time"], table["f0_hz"]))
    assert all(key in detected for key in zip(line["time"], line["f0_hz"]))
    notes = frames_to_notes(table, FRAME_S)
    for t, pitch in zip(line["time"], line["pitch"]):
        sounding = notes[(notes["onset"] <= t) & (t < notes["offset"])]
        assert pitch in set(sounding["pitch"])


def test_a_note_starts_at_its_attack_and_the_melody_holds_the_note_before():
    """B4 is detected 3 frames before its attack (the model sees it in the window's future), and
    A4 stops being detected there: B4's note starts at the attack, and the melody keeps A4."""
    table = frames((440.0, 0, 46, 0.9, 0.8), (493.88, 47, 99, 0.9, 0.8))
    notes = frames_to_notes(with_attacks(table, 0, 50), FRAME_S)
    np.testing.assert_allclose(notes["onset"], [0.0, 0.495])
    assert notes["pitch"].tolist() == [69, 71]
    line = by_frame(melody(with_attacks(table, 0, 50), FRAME_S))
    assert {line[k] for k in range(0, 50)} == {69} and {line[k] for k in range(50, 100)} == {71}
    # no attack strong enough, or none within ATTACK_SEARCH_S: the note starts where detected
    late = 47 + round(ATTACK_SEARCH_S / FRAME_S) + 1
    for weak in (with_attacks(table, 0, 50, strength=ATTACK_STRENGTH), with_attacks(table, 0, late),
                 table):
        assert frames_to_notes(weak, FRAME_S)["onset"].tolist()[1] == pytest.approx(0.465)
        assert by_frame(melody(weak, FRAME_S))[47] == 71


def test_a_note_ringing_on_takes_the_melody_back_when_attacked_again():
    """A4 rings on under B4 (share 0.1) and is played again at 0.6 s, its share jumping to 0.6:
    the melody goes back to A4 though B4 started later."""
    table = frames((440.0, 0, 29, 0.9, 0.8), (440.0, 30, 59, 0.8, 0.1), (440.0, 60, 99, 0.9, 0.6),
                   (493.88, 30, 99, 0.9, 0.5))
    line = by_frame(melody(table, FRAME_S))
    assert {line[k] for k in range(30, 60)} == {71}
    assert {line[k] for k in range(61, 100)} == {69}


@settings(max_examples=60, deadline=None)
@given(st.lists(run_st, max_size=8), st.lists(st.integers(0, 110), max_size=6))
def test_a_melody_note_is_detected_in_its_frame_or_held_from_the_one_before(runs, attacks):
    table = with_attacks(frames(*[(f0, a, a + n, c, s) for f0, a, n, c, s in runs]), *attacks)
    line = melody(table, FRAME_S)
    assert line["time"].is_unique
    detected = set(zip(np.rint(table["time"] / FRAME_S).astype(int), table["f0_hz"]))
    picked = dict(zip(np.rint(line["time"] / FRAME_S).astype(int), line["f0_hz"]))
    for k, f0 in picked.items():
        assert (k, f0) in detected or picked.get(k - 1) == f0
