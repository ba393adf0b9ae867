"""mido messages -> timed notes (ticks), with the semantics a listener hears.

* All tracks and channels; per (track, channel, pitch) note-ons are paired with note-offs first in,
  first out; a note-on with velocity 0 is a note-off.
* Sustain pedal (CC64 >= 64 down): a note released while the pedal is down sounds until the
  pedal comes up (or its track ends).
* Notes never released end when their track ends (counted in ``warnings``).
* Events after a track's End-of-Track are ignored (mido keeps them).
* Channel 10 (index 9) notes are flagged ``drum``; the tokenizer keeps or drops them.
* Format 2 files hold independent sequences: each track becomes its own :class:`RawMidi`.

This module imports only mido and the standard library: it runs inside the reader's worker.
"""

from __future__ import annotations

import bisect
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import NamedTuple

import mido

from .smf import MidiFileError, SmfInfo

DEFAULT_TEMPO = 500_000  # microseconds per beat (120 bpm)
DRUM_CHANNEL = 9
MAX_DELTA = 0x0FFFFFFF  # the largest 4-byte variable-length quantity the standard allows


class RawNote(NamedTuple):
    start: int  # ticks
    end: int
    pitch: int
    velocity: int
    program: int
    drum: bool
    track: int = 0  # index of the track (MTrk chunk) in the file


@dataclass
class RawMidi:
    """One note sequence in ticks, before quantisation."""

    ticks_per_beat: float
    notes: list[RawNote]
    tempos: list[tuple[int, int]]  # (tick, microseconds per beat), empty for SMPTE files
    time_signatures: list[tuple[int, int, int]]  # (tick, numerator, denominator)
    warnings: list[str] = field(default_factory=list)


@dataclass
class TrackEvents:
    notes: list[RawNote] = field(default_factory=list)
    tempos: list[tuple[int, int]] = field(default_factory=list)
    time_signatures: list[tuple[int, int, int]] = field(default_factory=list)
    unreleased: int = 0


def _sustain_end(pedal: list[tuple[int, bool]], end: int, track_end: int) -> int:
    """Where a note released at ``end`` stops sounding, given (tick, down) pedal changes."""
    i = bisect.bisect_right(pedal, (end, True)) - 1
    if i < 0 or not pedal[i][1]:
        return end
    for tick, down in pedal[i + 1:]:
        if not down:
            return tick
    return max(end, track_end)


def read_track(track: mido.MidiTrack, sustain: bool, index: int = 0) -> TrackEvents:
    """Notes (tagged with track ``index``), tempo and time-signature events of one track."""
    out = TrackEvents()
    tick = 0
    program = [0] * 16
    open_notes: dict[tuple[int, int], deque] = defaultdict(deque)
    pedals: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    released: list[tuple[int, int, int, int, int, int]] = []  # start, end, pitch, vel, prog, ch
    for msg in track:
        if msg.time > MAX_DELTA:
            raise MidiFileError(f"delta time {msg.time:.3g} beyond the 4-byte limit")
        tick += msg.time
        kind = msg.type
        if kind == "end_of_track":
            break
        if kind == "note_on" and msg.velocity > 0:
            open_notes[(msg.channel, msg.note)].append((tick, msg.velocity, program[msg.channel]))
        elif kind == "note_off" or kind == "note_on":
            queue = open_notes.get((msg.channel, msg.note))
            if queue:
                start, velocity, prog = queue.popleft()
                released.append((start, tick, msg.note, velocity, prog, msg.channel))
        elif kind == "program_change":
            program[msg.channel] = msg.program
        elif kind == "control_change" and msg.control == 64:
            pedals[msg.channel].append((tick, msg.value >= 64))
        elif kind == "set_tempo":
            out.tempos.append((tick, msg.tempo))
        elif kind == "time_signature":
            out.time_signatures.append((tick, msg.numerator, msg.denominator))
    for (channel, pitch), queue in open_notes.items():
        for start, velocity, prog in queue:
            released.append((start, tick, pitch, velocity, prog, channel))
            out.unreleased += 1
    for start, end, pitch, velocity, prog, channel in released:
        if sustain and pedals.get(channel):
            end = _sustain_end(pedals[channel], end, tick)
        out.notes.append(RawNote(start, end, pitch, velocity, prog, channel == DRUM_CHANNEL,
                                 index))
    return out


def _merge(parts: list[TrackEvents], info: SmfInfo, warnings: list[str]) -> RawMidi:
    notes = sorted(n for part in parts for n in part.notes)
    tempos = [] if info.smpte else sorted(t for part in parts for t in part.tempos)
    signatures = sorted(s for part in parts for s in part.time_signatures)
    unreleased = sum(part.unreleased for part in parts)
    warnings = list(warnings)
    if unreleased:
        warnings.append(f"{unreleased} notes never released: ended with their track")
    return RawMidi(info.ticks_per_beat, notes, tempos, signatures, warnings)


def extract(midi: mido.MidiFile, info: SmfInfo, sustain: bool = True) -> list[RawMidi]:
    """Note sequences of a parsed file: one, or one per track for format 2."""
    parts = [read_track(track, sustain, index) for index, track in enumerate(midi.tracks)]
    if info.format == 2:
        return [_merge([part], info, info.warnings) for part in parts]
    return [_merge(parts, info, info.warnings)]


# --------------------------------------------------------------------------- seconds


class TempoMap:
    """Ticks -> seconds under a file's tempo changes (120 bpm until the first one; of several
    changes at one tick the last wins). SMPTE files have no tempo changes and a
    ``ticks_per_beat`` already mapped at 120 bpm, so the same arithmetic gives their seconds."""

    def __init__(self, tempos: list[tuple[int, int]], ticks_per_beat: float):
        self.ticks, self.tempos = [0], [DEFAULT_TEMPO]
        for tick, tempo in tempos:  # sorted by tick
            if tick == self.ticks[-1]:
                self.tempos[-1] = tempo
            else:
                self.ticks.append(tick)
                self.tempos.append(tempo)
        self.ticks_per_beat = ticks_per_beat
        self.seconds = [0.0]  # at each change
        for i in range(1, len(self.ticks)):
            self.seconds.append(self.seconds[-1] + self._span(i - 1, self.ticks[i]))

    def _span(self, i: int, tick: int) -> float:
        return (tick - self.ticks[i]) * self.tempos[i] / 1e6 / self.ticks_per_beat

    def __call__(self, tick: int) -> float:
        i = bisect.bisect_right(self.ticks, tick) - 1
        return self.seconds[i] + self._span(i, tick)
