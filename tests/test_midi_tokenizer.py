"""Tokenizer: exact round trips on real music, bounded silence, canonical quantisation."""

from __future__ import annotations

import pytest

from midi_helpers import chorales, on, off, smf, tempo, time_signature, track
from notewise.midi.notes import RawMidi, RawNote
from notewise.midi.reading import parse_bytes, parse_file
from notewise.midi.score import Note, Score, TimeSignature, quantize, write_midi
from notewise.midi.tokenizer import Tokenizer
from notewise.midi.vocab import BOS, EOS, TokenizerConfig, Vocabulary

pytestmark = pytest.mark.timeout(60)
TOK = Tokenizer()
CFG = TOK.config


def test_round_trip_on_real_chorales(tmp_path_factory, tmp_path):
    for path in chorales(tmp_path_factory):
        (raw,) = parse_file(path)
        score = quantize(raw, CFG)
        ids = TOK.encode(score)
        assert ids[0] == BOS and ids[-1] == EOS and len(score.notes) > 50
        assert TOK.decode(ids) == score
        # ... and through a written MIDI file
        write_midi(TOK.decode(ids), CFG.steps_per_beat, tmp_path / "rt.mid")
        assert quantize(parse_file(tmp_path / "rt.mid")[0], CFG) == score
        # the grid is the only loss: onsets within half a step of the original
        tpb = raw.ticks_per_beat
        originals = sorted({(round(n.start * 4 / tpb), n.pitch) for n in raw.notes})
        assert {(n.start, n.pitch) for n in score.notes} <= set(originals)
        assert 2.0 < len(ids) / len(score.notes) < 3.0  # tokens per note


def test_tokens_read_as_documented():
    data = smf(track([(0, tempo(500_000)), (0, time_signature(3, 4))]),
               track([(0, on(60, 100)), (480, off(60)), (0, on(62, 100)), (240, off(62))]))
    ids = TOK.encode(quantize(parse_bytes(data)[0], CFG))
    assert TOK.tokens_to_strings(ids) == [
        "BOS", "Bar", "TimeSig_3/4", "Pos_0", f"Tempo_{CFG.tempo_bin(120)}", "Program_0",
        f"Vel_{CFG.velocity_bin(100)}", "Pitch_60", "Dur_4", "Pos_4", "Pitch_62", "Dur_2", "EOS"]


def test_far_apart_notes_cost_logarithmic_tokens(tmp_path):
    gap_beats = 4 * 1_000_000  # a million bars of 4/4
    raw = RawMidi(480, [RawNote(0, 480, 60, 100, 0, False),
                        RawNote(gap_beats * 480, gap_beats * 480 + 480, 62, 100, 0, False)], [], [])
    score = quantize(raw, CFG)
    ids = TOK.encode(score)
    assert len(ids) < 40
    assert TOK.decode(ids) == score
    assert score.notes[1].start == gap_beats * CFG.steps_per_beat
    # the written file bridges the gap with markers (each delta stays within 4 bytes)
    write_midi(score, CFG.steps_per_beat, tmp_path / "far.mid")
    assert quantize(parse_file(tmp_path / "far.mid")[0], CFG) == score
    # sampled sequences can cap silences
    capped = TOK.decode(ids, max_gap_bars=2)
    assert capped.notes[1].start == 3 * 4 * CFG.steps_per_beat  # bar 0, two empty bars, bar 3


def test_quantisation_is_canonical():
    raw = RawMidi(480, [
        RawNote(0, 960, 60, 100, 0, False),
        RawNote(0, 480, 60, 50, 0, False),  # same key and onset: the longer one stays
        RawNote(240, 1200, 64, 100, 0, False),
        RawNote(480, 600, 64, 100, 0, False),  # cuts the previous E at its onset
        RawNote(5, 7, 67, 127, 0, False),  # shorter than a step: one step
        RawNote(0, 100_000, 72, 64, 0, False),  # longer than the maximum: clamped
        RawNote(0, 10, 36, 90, 0, True),  # drum, dropped by default
    ], [(0, 600_000)], [(0, 7, 8), (100, 3, 4)])
    score = quantize(raw, CFG)
    assert [(n.start, n.duration, n.pitch) for n in score.notes] == [
        (0, 8, 60), (0, 1, 67), (0, CFG.max_duration, 72), (2, 2, 64), (4, 1, 64)]
    # 3/4 given mid-bar moves to the next bar line of 7/8 (14 steps)
    assert score.time_signatures == [TimeSignature(0, 7, 8)]  # after the last onset: dropped
    assert score.tempos == [(0, CFG.tempo_value(CFG.tempo_bin(100)))]
    assert TOK.decode(TOK.encode(score)) == score


def test_drums_kept_as_their_own_tokens():
    tok = Tokenizer(Vocabulary(TokenizerConfig(drums="keep")))
    raw = RawMidi(480, [RawNote(0, 480, 36, 100, 0, True), RawNote(0, 480, 60, 100, 5, False)],
                  [], [])
    score = quantize(raw, tok.config)
    strings = tok.tokens_to_strings(tok.encode(score))
    assert "Drum_36" in strings and "Program_5" in strings
    assert tok.decode(tok.encode(score)) == score


def test_time_signature_and_tempo_changes_round_trip():
    score = Score([Note(0, 4, 60, 100, 0, False), Note(12, 4, 62, 100, 0, False),
                   Note(40, 2, 64, 20, 3, False)],
                  [(0, CFG.tempo_value(5)), (12, CFG.tempo_value(9))],
                  [TimeSignature(0, 3, 4), TimeSignature(24, 6, 8)])
    assert TOK.decode(TOK.encode(score)) == score


def test_decode_accepts_any_sequence_and_the_file_reads_back(tmp_path):
    import random

    rng = random.Random(0)
    for i in range(50):
        ids = [rng.randrange(len(TOK.vocab)) for _ in range(200)]
        score = TOK.decode(ids, max_gap_bars=2)
        assert all(n.duration >= 1 and 0 <= n.pitch < 128 for n in score.notes)
        if i < 10:  # what midi-generate writes: the same notes come back from the file
            write_midi(score, CFG.steps_per_beat, tmp_path / "sampled.mid")
            assert quantize(parse_file(tmp_path / "sampled.mid")[0], CFG).notes == score.notes
            assert len(score.notes) > 5


def test_bins_invert_and_vocabulary_round_trips(tmp_path):
    assert all(CFG.velocity_bin(CFG.velocity_value(i)) == i for i in range(CFG.velocity_bins))
    assert all(CFG.tempo_bin(CFG.tempo_value(i)) == i for i in range(CFG.tempo_bins))
    vocab = Vocabulary(TokenizerConfig(steps_per_beat=6))
    vocab.save(tmp_path / "vocab.json")
    loaded = Vocabulary.load(tmp_path / "vocab.json")
    assert loaded.tokens == vocab.tokens and loaded.digest == vocab.digest != Vocabulary().digest
    assert TOK.vocab.tokens[0] == "PAD" and len(set(TOK.vocab.tokens)) == len(TOK.vocab)
