"""A guarded pre-parser for the Standard MIDI File container (chunks, header), before mido.

mido 1.3.3 trusts the header: a track count below the tracks present drops tracks, one above
32767 is read as negative, an SMPTE division becomes a negative ticks-per-beat, and a chunk that
runs past the end of the file raises deep inside the parser. :func:`inspect_smf` walks the chunk
structure (linear time, no allocation beyond the input), rejects what cannot be read with a
one-line reason, and returns a *sanitised* copy of the bytes whose header states exactly what
follows (only complete ``MTrk`` chunks, their true count, a positive division), plus the timing
facts mido would get wrong. The event streams inside the tracks are left to mido, whose time is
bounded by the reader's worker timeout (see :mod:`notewise.midi.reading`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

SMPTE_FPS = {24: 24.0, 25: 25.0, 29: 29.97, 30: 30.0}
#: SMPTE times are absolute; they are mapped to beats at this tempo (beats per minute).
SMPTE_BPM = 120.0


class MidiFileError(Exception):
    """A MIDI file that cannot be read; ``str(err)`` is the logged reason."""


@dataclass
class SmfInfo:
    """What the container says, once checked."""

    format: int  # 0, 1 or 2 (0 with several tracks is reported as 1)
    n_tracks: int  # complete MTrk chunks actually present
    ticks_per_beat: float  # for SMPTE files: ticks per second * 60 / SMPTE_BPM
    smpte: bool  # True: ignore tempo events, time is absolute
    warnings: list[str] = field(default_factory=list)


def _describe_non_midi(data: bytes) -> str:
    head = data[:64].lstrip()
    if head[:1] in (b"{", b"["):
        return "not a MIDI file: looks like JSON"
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return f"not a MIDI file: looks like text ({data[:16]!r})"
    return f"not a MIDI file: header is {data[:4]!r}, expected b'MThd'"


def _unwrap_riff(data: bytes) -> bytes:
    """RIFF-RMID files wrap an SMF in a ``data`` chunk."""
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if cid == b"data":
            return data[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)
    raise MidiFileError("RIFF file without a MIDI data chunk")


def _division(raw: int) -> tuple[float, bool]:
    if raw & 0x8000:
        fps_code = 256 - (raw >> 8)
        if fps_code not in SMPTE_FPS or (raw & 0xFF) == 0:
            raise MidiFileError(f"invalid SMPTE division 0x{raw:04x}")
        ticks_per_second = SMPTE_FPS[fps_code] * (raw & 0xFF)
        return ticks_per_second * 60.0 / SMPTE_BPM, True
    if raw == 0:
        raise MidiFileError("ticks per beat is 0")
    return float(raw), False


def inspect_smf(data: bytes) -> tuple[SmfInfo, bytes]:
    """Check the container of ``data``; return its facts and sanitised bytes for mido."""
    if not data:
        raise MidiFileError("empty file (0 bytes)")
    if data[:4] == b"RIFF" and data[8:12] == b"RMID":
        data = _unwrap_riff(data)
    if data[:4] != b"MThd":
        raise MidiFileError(_describe_non_midi(data))
    if len(data) < 14:
        raise MidiFileError(f"truncated header ({len(data)} bytes)")
    header_len, fmt, declared, raw_division = struct.unpack(">IHHH", data[4:14])
    if header_len < 6:
        raise MidiFileError(f"header length {header_len} < 6")
    if fmt > 2:
        raise MidiFileError(f"unknown MIDI format {fmt}")
    ticks_per_beat, smpte = _division(raw_division)
    tracks, warnings = _track_chunks(data, 8 + header_len)
    if not tracks:
        raise MidiFileError("no tracks")
    if declared != len(tracks):
        warnings.append(f"header declares {declared} tracks, file holds {len(tracks)}")
    if fmt == 0 and len(tracks) > 1:
        warnings.append(f"format 0 with {len(tracks)} tracks, read as format 1")
        fmt = 1
    if smpte:
        warnings.append("SMPTE time division: mapped to beats at 120 bpm")
    sanitised = b"".join([
        b"MThd", struct.pack(">IHHH", 6, fmt, len(tracks), 480 if smpte else raw_division),
        *tracks,
    ])
    return SmfInfo(fmt, len(tracks), ticks_per_beat, smpte, warnings), sanitised


def _track_chunks(data: bytes, pos: int) -> tuple[list[bytes], list[str]]:
    """Complete ``MTrk`` chunks (header included) from ``pos`` on; other chunk types skipped."""
    tracks, warnings = [], []
    if pos > len(data):
        raise MidiFileError("truncated header")
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack(">I", data[pos + 4:pos + 8])[0]
        end = pos + 8 + size
        if end > len(data):
            raise MidiFileError(
                f"chunk {len(tracks)} ({cid!r}) declares {size} bytes but only "
                f"{len(data) - pos - 8} remain (truncated file?)")
        if cid == b"MTrk":
            tracks.append(data[pos:end])
        elif not cid.isalnum():
            raise MidiFileError(f"garbage where a chunk should start at byte {pos}: {cid!r}")
        else:
            warnings.append(f"skipped unknown chunk {cid!r}")
        pos = end
    if pos != len(data):
        warnings.append(f"ignored {len(data) - pos} trailing bytes")
    return tracks, warnings
