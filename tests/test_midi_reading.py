"""MIDI reading: note semantics, and every bad input of issue 4 (skipped with a reason or read)."""

from __future__ import annotations

import json
import random
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from midi_helpers import (cc, chorales, header, many_notes_file, off, on, scale_track, smf, tempo,
                          time_signature, track, vlq)
from notewise.midi.cache import load_cache
from notewise.midi.notes import RawNote
from notewise.midi.reading import MidiReader, TimedNote, parse_bytes, read_notes
from notewise.midi.smf import MidiFileError, inspect_smf
from notewise.midi.vocab import Vocabulary

pytestmark = pytest.mark.timeout(60)


def notes_of(data: bytes, **kw) -> list[RawNote]:
    (raw,) = parse_bytes(data, **kw)
    return raw.notes


# --------------------------------------------------------------------------- semantics


def test_velocity_zero_note_on_is_a_note_off_and_channels_tracks_merge():
    data = smf(track([(0, on(60)), (480, on(60, 0)), (0, on(64, 90, channel=3)),
                      (240, off(64, channel=3))]),
               track([(120, on(67)), (480, off(67))]))
    assert notes_of(data) == [RawNote(0, 480, 60, 100, 0, False),
                              RawNote(120, 600, 67, 100, 0, False, track=1),
                              RawNote(480, 720, 64, 90, 0, False)]


def test_overlapping_same_pitch_notes_pair_first_in_first_out():
    data = smf(track([(0, on(60, 80)), (100, on(60, 90)), (100, off(60)), (100, off(60))]))
    assert notes_of(data) == [RawNote(0, 200, 60, 80, 0, False),
                              RawNote(100, 300, 60, 90, 0, False)]


def test_sustain_pedal_extends_released_notes_until_pedal_up():
    data = smf(track([(0, cc(64, 127)), (0, on(60)), (100, off(60)), (300, cc(64, 0)),
                      (0, on(62)), (100, off(62))]))
    assert [(n.start, n.end) for n in notes_of(data)] == [(0, 400), (400, 500)]
    assert [(n.start, n.end) for n in notes_of(data, sustain=False)] == [(0, 100), (400, 500)]


def test_drums_are_flagged_and_programs_followed():
    data = smf(track([(0, bytes([0xC1, 40])), (0, on(50, channel=1)), (10, off(50, channel=1)),
                      (0, on(36, channel=9)), (10, off(36, channel=9))]))
    assert [(n.program, n.drum) for n in notes_of(data)] == [(40, False), (0, True)]


def test_tempo_and_time_signature_changes_are_collected():
    data = smf(track([(0, tempo(500_000)), (0, time_signature(3, 4)), (1440, tempo(400_000)),
                      (0, time_signature(6, 8))]), scale_track())
    (raw,) = parse_bytes(data)
    assert raw.tempos == [(0, 500_000), (1440, 400_000)]
    assert raw.time_signatures == [(0, 3, 4), (1440, 6, 8)]


def test_read_notes_gives_seconds_under_tempo_changes_with_tracks(tmp_path):
    # 120 bpm for two beats, then 60 bpm: beat 2 is at 1 s, beat 3 at 2 s
    conductor = track([(0, tempo(500_000)), (960, tempo(1_000_000))])
    melody = track([(0, bytes([0xC0, 19])), (480, on(60, 70)), (960, off(60)),
                    (0, on(36, 50, channel=9)), (240, off(36, channel=9))])
    path = tmp_path / "tempo.mid"
    path.write_bytes(smf(conductor, melody))
    assert read_notes(path) == [TimedNote(0.5, 2.0, 60, 70, 19, 1, False),
                                TimedNote(2.0, 2.5, 36, 50, 0, 1, True)]
    assert [n.pitch for n in read_notes(path, drums=False)] == [60]
    smpte = tmp_path / "smpte.mid"  # 25 fps x 40 = 1000 ticks per second, tempo ignored
    smpte.write_bytes(smf(melody, division=((256 - 25) << 8) | 40))
    assert read_notes(smpte, drums=False)[0][:2] == (0.48, 1.44)


def test_read_notes_raises_the_reason(tmp_path):
    (tmp_path / "empty.mid").write_bytes(b"")
    with pytest.raises(MidiFileError, match=r"^empty file \(0 bytes\)$"):
        read_notes(tmp_path / "empty.mid")


def test_events_after_end_of_track_are_ignored():
    end_of_track = b"\x00\xff\x2f\x00"
    body = vlq(0) + on(60) + vlq(10) + off(60) + end_of_track + vlq(0) + on(70) + vlq(5) + off(70)
    data = smf(b"MTrk" + len(body).to_bytes(4, "big") + body)
    assert [n.pitch for n in notes_of(data)] == [60]


# --------------------------------------------------------------------------- bad inputs


def reason(data: bytes) -> str:
    with pytest.raises(MidiFileError) as err:
        parse_bytes(data)
    return str(err.value)


def test_empty_file():
    assert reason(b"") == "empty file (0 bytes)"


def test_random_bytes_never_crash():
    rng = random.Random(4)
    for size in (1, 3, 13, 14, 100, 5000):
        data = bytes(rng.randrange(256) for _ in range(size))
        assert "not a MIDI file" in reason(data)
        # ... and behind a valid header, random track bytes are rejected or read, never crash
        for _ in range(5):
            body = bytes(rng.randrange(256) for _ in range(size))
            try:
                parse_bytes(smf(b"MTrk" + len(body).to_bytes(4, "big") + body))
            except MidiFileError as err:
                assert str(err)


def test_wrong_header():
    assert reason(b"MThx" + bytes(20)) == "not a MIDI file: header is b'MThx', expected b'MThd'"
    assert "unknown MIDI format 7" == reason(smf(scale_track(), fmt=7))
    assert "ticks per beat is 0" == reason(smf(scale_track(), division=0))


def test_truncated_at_every_offset_is_skipped_or_read(tmp_path_factory):
    data = chorales(tmp_path_factory, 1)[0].read_bytes()[:3000]
    outcomes = set()
    for cut in range(len(data)):
        try:
            parse_bytes(data[:cut])
            outcomes.add("read")
        except MidiFileError as err:
            outcomes.add(str(err).split(" ")[0])
    assert "empty" in outcomes and "truncated" in outcomes and "chunk" in outcomes


def test_track_length_past_the_end():
    data = smf(scale_track())
    data = data[:18] + (10_000).to_bytes(4, "big") + data[22:]
    assert "declares 10000 bytes but only" in reason(data)


def test_huge_meta_event_length():
    body = vlq(0) + b"\xff\x01" + vlq(2**27) + b"abc"
    data = smf(b"MTrk" + len(body).to_bytes(4, "big") + body)
    assert "corrupt track data" in reason(data)


def test_zero_tracks():
    assert reason(smf(ntracks=0)) == "no tracks"


def test_track_count_disagreeing_with_header_uses_the_tracks_present():
    for declared in (1, 40000):
        (raw,) = parse_bytes(smf(scale_track(4), scale_track(4, first=70), ntracks=declared))
        assert len(raw.notes) == 8
        assert any("header declares" in w for w in raw.warnings)


def test_format_2_gives_one_sequence_per_track():
    raws = parse_bytes(smf(scale_track(3), scale_track(5), fmt=2))
    assert [len(r.notes) for r in raws] == [3, 5]


def test_smpte_division_is_mapped_to_beats():
    # 25 fps x 40 ticks per frame = 1000 ticks per second = 500 ticks per beat at 120 bpm
    division = ((256 - 25) << 8) | 40
    (raw,) = parse_bytes(smf(track([(0, tempo(1_000_000)), (0, on(60)), (1000, off(60))]),
                             division=division))
    assert raw.ticks_per_beat == 500.0 and raw.tempos == []
    assert any("SMPTE" in w for w in raw.warnings)


def test_notes_never_released_end_with_their_track():
    (raw,) = parse_bytes(smf(track([(0, on(60)), (0, on(64)), (960, off(64))])))
    assert [(n.pitch, n.start, n.end) for n in raw.notes] == [(60, 0, 960), (64, 0, 960)]
    assert raw.warnings == ["1 notes never released: ended with their track"]


def test_mid_file_holding_json_or_text():
    assert reason(b'{"sequences": [[1, 2, 3]]}') == "not a MIDI file: looks like JSON"
    assert reason(b"MIDI file, honest\n").startswith("not a MIDI file: looks like text")


@pytest.mark.timeout(120)
def test_valid_file_with_200000_notes_is_read(tmp_path):
    path = tmp_path / "big.mid"
    path.write_bytes(many_notes_file(200_000))
    with MidiReader(timeout=90) as reader:
        (raw,) = reader.read(path)
    assert len(raw.notes) == 200_000
    assert raw.notes[-1] == RawNote(199_999 * 60, 200_000 * 60, 36 + 199_999 % 48, 80, 0, False)


def test_a_megabyte_delta_time_is_rejected_by_the_container_check():
    # mido's VLQ reader is quadratic: 1 MB of continuation bytes would take minutes (it was a
    # 60 s timeout per file); the container check stops at the fifth byte, before mido sees it
    body = b"\xff" * 1_000_000 + b"\x00" + on(60) + b"\x00" + off(60)
    with pytest.raises(MidiFileError, match="beyond the 4-byte limit at byte 0 of track 0"):
        inspect_smf(smf(b"MTrk" + len(body).to_bytes(4, "big") + body))
    late = vlq(0) + on(60) + b"\x83" + b"\x80" * 10 + b"\x00" + off(60)  # after a valid event
    with pytest.raises(MidiFileError, match="beyond the 4-byte limit at byte 4 of track 1"):
        inspect_smf(smf(scale_track(2), b"MTrk" + len(late).to_bytes(4, "big") + late))


def test_trailing_bytes_after_the_last_track_are_ignored():
    for junk in (bytes(9), b"\xde\xad\xbe\xef" * 40, b"JUNK\x00\x01\x00\x00abc", b"\n" * 3):
        (raw,) = parse_bytes(smf(scale_track(4)) + junk)
        assert len(raw.notes) == 4
        assert any("trailing bytes" in w for w in raw.warnings), junk[:8]
    assert "garbage where a chunk should start" in reason(header() + bytes(20))  # no track at all


def test_a_text_meta_over_midos_limit_is_skipped_and_the_notes_kept():
    text = b"\xff\x01" + vlq(1_200_000) + b"x" * 1_200_000
    body = vlq(0) + on(60) + vlq(0) + text + vlq(480) + off(60) + vlq(0) + on(62) + vlq(480)
    body += off(62) + b"\x00\xff\x2f\x00"
    (raw,) = parse_bytes(smf(b"MTrk" + len(body).to_bytes(4, "big") + body))
    assert [(n.pitch, n.start, n.end) for n in raw.notes] == [(60, 0, 480), (62, 480, 960)]
    assert any("skipped a meta 0x01 event of 1200000 bytes" in w for w in raw.warnings)


@given(st.lists(st.integers(0, 2**28 - 1), min_size=1, max_size=30))
def test_container_check_keeps_legal_tracks_byte_for_byte(deltas):
    notes = track([(d, on(60 + i % 12)) for i, d in enumerate(deltas)])
    texts = track([(0, b"\xff\x01" + vlq(4) + "é€".encode()[:4])] * 3)  # high bytes in a row
    data = smf(notes, texts)
    assert inspect_smf(data)[1] == data


def test_slow_parse_is_stopped_by_the_worker_timeout(tmp_path):
    # a legal but slow file: 4-byte delta times are allowed; the timeout still bounds mido
    body = (b"\x8f\xff\xff\x7f" + b"\xff\x01\x00") * 400_000 + b"\x00" + on(60) + b"\x00" + off(60)
    path = tmp_path / "slow.mid"
    path.write_bytes(smf(b"MTrk" + len(body).to_bytes(4, "big") + body))
    start = time.monotonic()
    with MidiReader(timeout=0.5) as reader:
        with pytest.raises(MidiFileError, match="longer than 0.5 s"):
            reader.read(path)
        (ok,) = reader.read_many([tmp_path / "missing.mid"])  # the reader still works after a kill
    assert time.monotonic() - start < 10
    assert "cannot read file" in str(ok[1])


def test_delta_time_beyond_four_bytes():
    body = b"\x81\x80\x80\x80\x00" + on(60) + b"\x00" + off(60)
    assert "beyond the 4-byte limit" in reason(smf(b"MTrk" + len(body).to_bytes(4, "big") + body))


def test_size_cap(tmp_path):
    path = tmp_path / "huge.mid"
    path.write_bytes(smf(scale_track()) + bytes(2000))
    with pytest.raises(MidiFileError, match="file too large"):
        MidiReader(max_bytes=1000, isolate=False).read(path)


def test_corrupt_json_cache(tmp_path):
    vocab = Vocabulary()
    cases = {
        "truncated.json": '{"format": "notewise-midi-tokens", "sequ',
        "foreign.json": '{"hello": 1}',
        "badtoken.json": json.dumps({"format": "notewise-midi-tokens", "version": 1,
                                     "vocab": vocab.digest, "sequences": [[1, 99999]]}),
        "notalist.json": json.dumps({"format": "notewise-midi-tokens", "version": 1,
                                     "vocab": vocab.digest, "sequences": [[1, "x"]]}),
        "othervocab.json": json.dumps({"format": "notewise-midi-tokens", "version": 1,
                                       "vocab": "0000", "sequences": [[1]]}),
    }
    expected = {"truncated.json": "invalid JSON", "foreign.json": "not a notewise token cache",
                "badtoken.json": "outside", "notalist.json": "not a list of integers",
                "othervocab.json": "another vocabulary"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(MidiFileError, match=expected[name]):
            load_cache(tmp_path / name, vocab)


# --------------------------------------------------------------------------- through MidiDataset


def bad_corpus(good: bytes) -> dict[str, tuple[bytes, str | None]]:
    """file name -> (bytes, expected skip reason, or None when the file must be read)."""
    meta = vlq(0) + b"\xff\x01" + vlq(2**27) + b"abc"
    past_end = good[:18] + (10_000).to_bytes(4, "big") + good[22:]
    return {
        "empty.mid": (b"", "empty file (0 bytes)"),
        "random.mid": (random.Random(1).randbytes(3000), "not a MIDI file"),
        "wrong_header.mid": (b"MThx" + good[4:], "not a MIDI file: header is"),
        "truncated.mid": (good[:len(good) // 2], "truncated file?"),
        "past_end.mid": (past_end, "declares 10000 bytes"),
        "huge_meta.mid": (smf(b"MTrk" + len(meta).to_bytes(4, "big") + meta),
                          "corrupt track data"),
        "zero_tracks.mid": (smf(ntracks=0), "no tracks"),
        "format2.mid": (smf(scale_track(20), scale_track(20, first=50), fmt=2), None),
        "smpte.mid": (smf(scale_track(20), division=((256 - 25) << 8) | 40), None),
        "unreleased.mid": (smf(track([(0, on(60))] + [(240, on(62 + i % 5)) for i in range(20)])),
                           None),
        "json.mid": (b'{"sequences": [[1, 2, 3]]}', "looks like JSON"),
        "text.mid": (b"just some text\n", "looks like text"),
        "corrupt_cache.json": (b'{"format": "notewise-midi-tokens", "seq', "invalid JSON"),
        "good.mid": (good, None),
    }


def test_dataset_skips_each_bad_input_with_a_logged_reason(tmp_path, caplog):
    good = smf(scale_track(40))
    corpus = bad_corpus(good)
    for name, (data, _) in corpus.items():
        (tmp_path / name).write_bytes(data)
    from notewise.midi import MidiDataset

    start = time.monotonic()
    with caplog.at_level("WARNING", logger="notewise.midi.dataset"):
        ds = MidiDataset(tmp_path, min_sequence_length=2, workers=2, timeout=20)
    assert time.monotonic() - start < 30
    expected_skips = {str(tmp_path / n): why for n, (_, why) in corpus.items() if why}
    assert set(ds.summary["skipped"]) == set(expected_skips)
    for path, why in expected_skips.items():
        assert why in ds.summary["skipped"][path]
        assert any(path in r.getMessage() and why in r.getMessage() for r in caplog.records)
    read = len(corpus) - len(expected_skips)
    assert ds.summary["files"] == len(corpus) and ds.summary["files_read"] == read
    assert ds.summary["sequences"] == read + 1  # format 2: one sequence per track
    unreleased = ds.summary["warnings"][str(tmp_path / "unreleased.mid")]
    assert any("never released" in w for w in unreleased)
