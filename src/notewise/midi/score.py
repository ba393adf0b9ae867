"""Scores: note sequences quantised to the tokenizer's grid, and back to MIDI files.

:func:`quantize` is the only lossy step of the pipeline; what it returns is canonical, so
``decode(encode(score)) == score`` exactly. It:

* rounds onsets and offsets to the grid (``steps_per_beat`` steps per quarter note), durations at
  least one step and at most ``max_duration_beats`` beats; drum hits last one step;
* keeps one note per (program or drum, pitch) at a time: a note is cut where the next one of the
  same key starts, and of notes starting together the longest is kept (a keyboard per program);
* bins velocities and tempi; maps time signatures to ones whose bars fill whole grid steps, and
  moves a change that falls inside a bar to the next bar line;
* drops tempo and time-signature changes after the last onset, and drums if configured.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

import mido

from .notes import DEFAULT_TEMPO, MAX_DELTA, RawMidi
from .vocab import TokenizerConfig

TICKS_PER_STEP = 120  # ticks per grid step in written files


class Note(NamedTuple):
    start: int  # grid steps from the start of the piece
    duration: int  # grid steps
    pitch: int
    velocity: int  # a velocity bin centre
    program: int  # -1 for drums
    drum: bool


class TimeSignature(NamedTuple):
    step: int
    numerator: int
    denominator: int


@dataclass
class Score:
    notes: list[Note]  # sorted by (start, drum, program, pitch)
    tempos: list[tuple[int, float]] = field(default_factory=list)  # (step, bpm), first at 0
    time_signatures: list[TimeSignature] = field(default_factory=list)  # first at step 0


# --------------------------------------------------------------------------- bars


@dataclass(frozen=True)
class BarSegment:
    """A run of bars of one time signature."""

    start_step: int
    first_bar: int
    bar_steps: int
    signature: TimeSignature


class BarGrid:
    """Bar index <-> grid step under a list of time signatures (first at step 0)."""

    def __init__(self, signatures: list[TimeSignature], config: TokenizerConfig):
        self.segments: list[BarSegment] = []
        self._starts: list[int] = []  # segment start steps, for bisect
        self._first_bars: list[int] = []
        for sig in signatures:
            first_bar = self.bar_of(sig.step) if self.segments else 0
            seg = BarSegment(sig.step, first_bar, config.bar_steps(sig.numerator, sig.denominator),
                             sig)
            self.segments.append(seg)
            self._starts.append(seg.start_step)
            self._first_bars.append(seg.first_bar)

    def bar_of(self, step: int) -> int:
        seg = self.segments[bisect.bisect_right(self._starts, step) - 1]
        return seg.first_bar + (step - seg.start_step) // seg.bar_steps

    def bar_start(self, bar: int) -> int:
        seg = self.segments[bisect.bisect_right(self._first_bars, bar) - 1]
        return seg.start_step + (bar - seg.first_bar) * seg.bar_steps


# --------------------------------------------------------------------------- quantisation


def normalize_signature(numerator: int, denominator: int, config: TokenizerConfig
                        ) -> tuple[int, int]:
    """A representable signature with the same bar length, else 4/4."""
    if denominator in config.denominators and 1 <= numerator <= config.max_numerator:
        return numerator, denominator
    quarters = numerator * 4 / max(denominator, 1)
    for den in sorted(config.denominators):
        num = quarters * den / 4
        if num == int(num) and 1 <= num <= config.max_numerator:
            return int(num), den
    return 4, 4


def _to_step(tick: float, ticks_per_beat: float, steps_per_beat: int) -> int:
    return int(round(tick * steps_per_beat / ticks_per_beat))


def _snap_signatures(raw: list[tuple[int, int, int]], to_step, config: TokenizerConfig
                     ) -> list[TimeSignature]:
    """Signature changes on bar lines of the previous signature, deduplicated, first at 0."""
    out = [TimeSignature(0, 4, 4)]
    for tick, num, den in raw:
        num, den = normalize_signature(num, den, config)
        step = to_step(tick)
        prev = out[-1]
        bar = config.bar_steps(prev.numerator, prev.denominator)
        step = prev.step + -(-(step - prev.step) // bar) * bar  # next bar line at or after
        if step == prev.step:
            out[-1] = TimeSignature(step, num, den)
        else:
            out.append(TimeSignature(step, num, den))
    return [sig for i, sig in enumerate(out)
            if i == 0 or sig[1:] != out[i - 1][1:]]


def _quantize_tempos(raw: list[tuple[int, int]], to_step, config: TokenizerConfig
                     ) -> list[tuple[int, float]]:
    bins: list[tuple[int, int]] = [(0, config.tempo_bin(60e6 / DEFAULT_TEMPO))]
    for tick, us_per_beat in raw:
        step, index = to_step(tick), config.tempo_bin(60e6 / max(us_per_beat, 1))
        if step == bins[-1][0]:
            bins[-1] = (step, index)
        elif index != bins[-1][1]:
            bins.append((step, index))
    deduped = [bins[0]] + [b for a, b in zip(bins, bins[1:]) if b[1] != a[1]]
    return [(step, config.tempo_value(index)) for step, index in deduped]


def _one_note_per_key(notes: list[Note]) -> list[Note]:
    """Cut each note where the next note of the same key starts (onsets are distinct per key)."""
    by_key: dict[tuple[int, int], list[Note]] = defaultdict(list)
    for note in sorted(notes):
        by_key[(note.program, note.pitch)].append(note)
    out = []
    for run in by_key.values():
        for note, nxt in zip(run, run[1:]):
            out.append(note._replace(duration=min(note.duration, nxt.start - note.start)))
        out.append(run[-1])
    return out


def quantize(raw: RawMidi, config: TokenizerConfig) -> Score:
    """Grid-quantised, canonical score of ``raw`` (see the module docstring)."""
    spb, tpb = config.steps_per_beat, raw.ticks_per_beat

    def to_step(tick: float) -> int:
        return _to_step(tick, tpb, spb)

    notes = []
    for n in raw.notes:
        if n.drum and config.drums == "drop":
            continue
        start = to_step(n.start)
        duration = 1 if n.drum else min(config.max_duration, max(1, to_step(n.end) - start))
        velocity = config.velocity_value(config.velocity_bin(n.velocity))
        notes.append(Note(start, duration, n.pitch, velocity, -1 if n.drum else n.program, n.drum))
    notes = canonical_notes(notes)
    last = notes[-1].start if notes else 0
    tempos = [t for t in _quantize_tempos(raw.tempos, to_step, config) if t[0] <= last]
    signatures = [s for s in _snap_signatures(raw.time_signatures, to_step, config)
                  if s.step <= last]
    return Score(notes, tempos, signatures)


def canonical_notes(notes: list[Note]) -> list[Note]:
    """One note per key at a time (see the module docstring), sorted as in a :class:`Score`."""
    notes = _one_note_per_key(_dedupe_same_onset(notes))
    return sorted(notes, key=lambda n: (n.start, n.drum, n.program, n.pitch))


def _dedupe_same_onset(notes: list[Note]) -> list[Note]:
    """Of notes with the same (start, program, pitch), keep the longest (loudest on ties)."""
    best: dict[tuple[int, int, int], Note] = {}
    for note in notes:
        key = (note.start, note.program, note.pitch)
        if key not in best or (note.duration, note.velocity) > (best[key].duration,
                                                                best[key].velocity):
            best[key] = note
    return list(best.values())


# --------------------------------------------------------------------------- writing


def _channels(score: Score) -> dict[int, int]:
    """program -> MIDI channel (drums on 9, programs in order of appearance, skipping 9)."""
    free = [c for c in range(16) if c != 9]
    out: dict[int, int] = {-1: 9}
    for note in score.notes:
        if note.program not in out:
            out[note.program] = free[(len(out) - 1) % len(free)]
    return out


def _conductor_track(score: Score) -> mido.MidiTrack:
    events = [(sig.step, 0, mido.MetaMessage("time_signature", numerator=sig.numerator,
                                             denominator=sig.denominator))
              for sig in score.time_signatures]
    events += [(step, 1, mido.MetaMessage("set_tempo", tempo=int(round(60e6 / bpm))))
               for step, bpm in score.tempos]
    return _track_from_events(events)


def _track_from_events(events: list[tuple[int, int, mido.Message]]) -> mido.MidiTrack:
    """Events (step, order, message) -> a track with delta times in ticks.

    A silence longer than the largest delta time a file can hold is bridged by empty markers.
    """
    track, now = mido.MidiTrack(), 0
    for step, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        tick = step * TICKS_PER_STEP
        while tick - now > MAX_DELTA:
            track.append(mido.MetaMessage("marker", text="", time=MAX_DELTA))
            now += MAX_DELTA
        track.append(msg.copy(time=tick - now))
        now = tick
    return track


def to_midi(score: Score, steps_per_beat: int) -> mido.MidiFile:
    """A format-1 MIDI file: a conductor track, then one track per program (drums last)."""
    midi = mido.MidiFile(type=1, ticks_per_beat=steps_per_beat * TICKS_PER_STEP)
    midi.tracks.append(_conductor_track(score))
    channels = _channels(score)
    for program in sorted({n.program for n in score.notes}, key=lambda p: (p < 0, p)):
        channel = channels[program]
        # note-offs sort before note-ons at the same step, so FIFO pairing gives the notes back
        events: list[tuple[int, int, mido.Message]] = []
        if program >= 0:
            events.append((0, 0, mido.Message("program_change", channel=channel, program=program)))
        for n in (n for n in score.notes if n.program == program):
            events.append((n.start, 2, mido.Message("note_on", channel=channel, note=n.pitch,
                                                    velocity=n.velocity)))
            events.append((n.start + n.duration, 1, mido.Message("note_off", channel=channel,
                                                                 note=n.pitch, velocity=0)))
        midi.tracks.append(_track_from_events(events))
    return midi


def write_midi(score: Score, steps_per_beat: int, path) -> None:
    to_midi(score, steps_per_beat).save(path)
