"""Builders of MIDI bytes (valid and broken) and a small real corpus for the MIDI tests."""

from __future__ import annotations

import struct
from pathlib import Path

import mido


def vlq(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def track(events: list[tuple[int, bytes]], end: bool = True) -> bytes:
    """An MTrk chunk from (delta ticks, event bytes), End-of-Track appended."""
    body = b"".join(vlq(dt) + ev for dt, ev in events)
    if end:
        body += b"\x00\xff\x2f\x00"
    return b"MTrk" + struct.pack(">I", len(body)) + body


def header(fmt: int = 1, ntracks: int = 1, division: int = 480) -> bytes:
    return b"MThd" + struct.pack(">IHHH", 6, fmt, ntracks, division)


def smf(*tracks: bytes, fmt: int = 1, division: int = 480, ntracks: int | None = None) -> bytes:
    return header(fmt, len(tracks) if ntracks is None else ntracks, division) + b"".join(tracks)


def on(pitch: int, velocity: int = 100, channel: int = 0) -> bytes:
    return bytes([0x90 | channel, pitch, velocity])


def off(pitch: int, channel: int = 0) -> bytes:
    return bytes([0x80 | channel, pitch, 0])


def cc(control: int, value: int, channel: int = 0) -> bytes:
    return bytes([0xB0 | channel, control, value])


def tempo(us_per_beat: int) -> bytes:
    return b"\xff\x51\x03" + us_per_beat.to_bytes(3, "big")


def time_signature(numerator: int, denominator: int) -> bytes:
    return b"\xff\x58\x04" + bytes([numerator, denominator.bit_length() - 1, 24, 8])


def scale_track(n_notes: int = 8, step: int = 480, first: int = 60) -> bytes:
    events = []
    for i in range(n_notes):
        events += [(0, on(first + i % 12)), (step, off(first + i % 12))]
    return track(events)


def many_notes_file(n_notes: int) -> bytes:
    """A valid file with ``n_notes`` notes (running status keeps it compact)."""
    body = bytearray()
    for i in range(n_notes):
        pitch = 36 + i % 48
        body += b"\x00" + (bytes([0x90, pitch, 80]) if i == 0 else bytes([pitch, 80]))
        body += b"\x3c" + bytes([pitch, 0])  # velocity-0 note-on (running status) = note-off
    body += b"\x00\xff\x2f\x00"
    return header(0, 1) + b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def export_chorales(out_dir: Path, count: int) -> list[Path]:
    """The first ``count`` Bach scores of music21's corpus as MIDI (cached in ``out_dir``)."""
    from notewise.midi.corpus import bach_sources, _export_one

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, source in list(bach_sources().items())[:count]:
        target = out_dir / f"{name}.mid"
        if not target.exists():
            assert _export_one((str(source), str(target))) is None
        paths.append(target)
    return paths


def chorales(tmp_path_factory, count: int = 6) -> list[Path]:
    """A session-wide small real corpus (exported once per test session)."""
    return export_chorales(tmp_path_factory.getbasetemp() / "chorales", count)


def write_midi_file(path, tempo_us, tracks):
    """A type-1 MIDI file: a tempo, then one track per list of (start, end, pitch, velocity) ticks."""
    midi = mido.MidiFile(ticks_per_beat=480)
    for index, notes in enumerate(tracks):
        track = mido.MidiTrack()
        if index == 0:
            track.append(mido.MetaMessage("set_tempo", tempo=tempo_us, time=0))
        events = sorted([(s, "note_on", p, v) for s, e, p, v in notes]
                        + [(e, "note_off", p, 0) for s, e, p, v in notes], key=lambda x: x[0])
        now = 0
        for tick, kind, pitch, velocity in events:
            track.append(mido.Message(kind, note=pitch, velocity=velocity, time=tick - now))
            now = tick
        midi.tracks.append(track)
    midi.save(path)
