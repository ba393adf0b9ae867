"""A guarded pre-parser for the Standard MIDI File container (chunks, header), before mido.

mido 1.3.3 trusts the header: a track count below the tracks present drops tracks, one above
32767 is read as negative, an SMPTE division becomes a negative ticks-per-beat, and a chunk that
runs past the end of the file raises deep inside the parser. :func:`inspect_smf` walks the chunk
structure (linear time, no allocation beyond the input), rejects what cannot be read with a
one-line reason, and returns a *sanitised* copy of the bytes whose header states exactly what
follows (only complete ``MTrk`` chunks, their true count, a positive division), plus the timing
facts mido would get wrong. Bytes after the last complete track that do not form a chunk
(padding, junk: common in files from the wild) are ignored with a warning.

Inside each track, :func:`check_events` walks the event stream (linear time; skipped for tracks
that cannot hold what it looks for) and rejects a variable-length quantity longer than the
standard's 4 bytes (mido's reader is quadratic in its length: a 1 MB delta time would take
minutes), and replaces a meta or sysex event longer than mido's limit (1,000,000 bytes, which
mido refuses the whole file for) by an empty text event at the same time, keeping the notes.
Anything else in the event streams is left to mido, whose time is bounded by the reader's worker
timeout (see :mod:`notewise.midi.reading`).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

#: File name suffixes of Standard MIDI Files, as corpora name them.
MIDI_SUFFIXES = (".mid", ".midi", ".kar", ".rmi", ".smf")

SMPTE_FPS = {24: 24.0, 25: 25.0, 29: 29.97, 30: 30.0}
#: SMPTE times are absolute; they are mapped to beats at this tempo (beats per minute).
SMPTE_BPM = 120.0
#: mido 1.3.3 refuses a file holding a meta or sysex event longer than this (MAX_MESSAGE_LENGTH).
MIDO_MAX_MESSAGE = 1_000_000
#: A variable-length quantity over 4 bytes needs 4 bytes >= 0x80 in a row.
_FOUR_HIGH_BYTES = re.compile(rb"[\x80-\xff]{4}")
#: Data bytes after a channel status (high nibble) or a system common status.
_DATA_BYTES = {0x8: 2, 0x9: 2, 0xA: 2, 0xB: 2, 0xC: 1, 0xD: 1, 0xE: 2,
               0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0}
_EMPTY_TEXT = b"\xff\x01\x00"


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
    tracks = [check_events(t, i, warnings) for i, t in enumerate(tracks)]
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
        if tracks and (not cid.isalnum() or (end > len(data) and cid != b"MTrk")):
            break  # junk after the last track (a cut MTrk is a truncated file): ignored below
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


def _vlq(data: bytes, pos: int, track: int) -> tuple[int, int]:
    """(value, next position) of the variable-length quantity at ``pos``; at most 4 bytes."""
    value = 0
    for i in range(pos, min(pos + 4, len(data))):
        value = (value << 7) | (data[i] & 0x7F)
        if data[i] < 0x80:
            return value, i + 1
    if pos + 4 <= len(data):
        raise MidiFileError(f"variable-length quantity beyond the 4-byte limit at byte {pos - 8} "
                            f"of track {track}")
    raise _Unwalkable


class _Unwalkable(Exception):
    """The event stream is not what the walker understands: mido gets it unchanged."""


def check_events(chunk: bytes, track: int, warnings: list[str]) -> bytes:
    """``chunk`` (an MTrk chunk, header included) checked and, if needed, rewritten (see the
    module docstring); raises :class:`MidiFileError` on a variable-length quantity over 4 bytes."""
    if len(chunk) <= MIDO_MAX_MESSAGE and not _FOUR_HIGH_BYTES.search(chunk, 8):
        return chunk  # neither an over-long quantity nor an over-long event can be in it
    try:
        kept, dropped = _walk(chunk, track)
    except _Unwalkable:
        return chunk
    if not dropped:
        return chunk
    warnings += [f"skipped a {kind} event of {size} bytes in track {track} (over mido's "
                 f"{MIDO_MAX_MESSAGE}-byte limit)" for kind, size in dropped]
    body = b"".join(kept)
    return b"MTrk" + struct.pack(">I", len(body)) + body


def _walk(chunk: bytes, track: int) -> tuple[list[bytes], list[tuple[str, int]]]:
    """The track body as byte pieces with over-long events replaced, and what was replaced."""
    pos, status, start = 8, None, 8
    kept, dropped = [], []
    while pos < len(chunk):
        _, pos = _vlq(chunk, pos, track)
        if pos >= len(chunk):
            raise _Unwalkable
        byte = chunk[pos]
        if byte in (0xFF, 0xF0, 0xF7):
            event = pos
            length, pos = _vlq(chunk, pos + (2 if byte == 0xFF else 1), track)
            if pos + length > len(chunk):
                raise _Unwalkable
            if length > MIDO_MAX_MESSAGE:
                kind = f"meta 0x{chunk[event + 1]:02x}" if byte == 0xFF else "sysex"
                kept += [chunk[start:event], _EMPTY_TEXT]
                dropped.append((kind, length))
                start = pos + length
            pos += length
            status = None if byte == 0xFF else status
            continue
        if byte >= 0x80:
            status, pos = byte, pos + 1
        if status is None:
            raise _Unwalkable
        data_bytes = _DATA_BYTES.get(status >> 4 if status < 0xF0 else status)
        if data_bytes is None:
            raise _Unwalkable
        pos += data_bytes
    kept.append(chunk[start:])
    return kept, dropped
