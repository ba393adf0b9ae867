"""Scores <-> token ids (a REMI-like scheme; token kinds in :mod:`notewise.midi.vocab`).

A piece reads ``BOS``, then bar by bar, only bars holding something::

    [Skip_*...] Bar [TimeSig_n/d] (Pos_p [Tempo_i] NOTE...)...
    NOTE = [Program_k] [Vel_v] Pitch_x Dur_d  |  [Vel_v] Drum_x

then ``EOS``. Empty bars between two bars with content become ``Skip`` tokens whose sizes are the
binary digits of the gap, so silence costs O(log gap) tokens, never a run of ``Bar`` tokens.
``Program`` and ``Vel`` are state: written only when they change, which makes a typical note
cost about two tokens (``Pitch``, ``Dur``) plus a shared ``Pos``. Notes at one position are
ordered (drums last, program, pitch).

``decode`` is total: any id sequence gives a score (what a sampled sequence needs). Out-of-place
tokens are ignored; a ``Pitch`` without a ``Dur`` lasts one beat; notes are made canonical as
:func:`~notewise.midi.score.quantize` makes them (one note per key at a time), so the score
written as MIDI reads back to the same notes.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import groupby

from .score import BarGrid, Note, Score, TimeSignature, canonical_notes
from .vocab import BOS, EOS, Vocabulary


class Tokenizer:
    def __init__(self, vocab: Vocabulary | None = None):
        self.vocab = vocab or Vocabulary()
        self.config = self.vocab.config

    def encode(self, score: Score) -> list[int]:
        """Token ids of a quantised score (``BOS ... EOS``)."""
        return _Encoder(self).run(score)

    # ------------------------------------------------------------------ decode

    def decode(self, ids: list[int], max_gap_bars: int | None = None) -> Score:
        """The score a token sequence describes (tolerant of any order).

        ``max_gap_bars`` caps each run of skipped empty bars (for sampled sequences, where a
        stray ``Skip_1048576`` would otherwise push the rest of the piece out of reach).
        """
        return _Decoder(self, max_gap_bars).run(ids)

    def tokens_to_strings(self, ids: list[int]) -> list[str]:
        return [self.vocab.tokens[i] for i in ids]


def _note_order(note: Note) -> tuple:
    return (note.drum, note.program, note.pitch)


class _Encoder:
    """Writes one score; keeps the Program/Vel state between notes."""

    def __init__(self, tokenizer: Tokenizer):
        self.cfg, self.vocab = tokenizer.config, tokenizer.vocab
        self.program: int | None = None
        self.velocity_bin: int | None = None
        self.out: list[int] = []

    def run(self, score: Score) -> list[int]:
        grid = BarGrid(score.time_signatures, self.cfg)
        events = self._events_by_bar(score, grid)
        self.out, bar = [BOS], -1
        for next_bar in sorted(events):
            self._skip(next_bar - bar - 1)
            self.out.append(self.vocab.id("Bar"))
            self._bar(events[next_bar], grid.bar_start(next_bar))
            bar = next_bar
        self.out.append(EOS)
        return self.out

    def _events_by_bar(self, score: Score, grid: BarGrid) -> dict[int, list[tuple]]:
        """Bar -> its events ``(step, order, payload)``, sorted."""
        events: dict[int, list[tuple]] = defaultdict(list)
        for seg in grid.segments:
            events[seg.first_bar].append((seg.start_step, (0,), seg.signature))
        for step, bpm in score.tempos:
            events[grid.bar_of(step)].append((step, (1,), bpm))
        for note in score.notes:
            events[grid.bar_of(note.start)].append((note.start, (2, *_note_order(note)), note))
        for bar_events in events.values():
            bar_events.sort(key=lambda e: e[:2])
        return events

    def _skip(self, gap: int) -> None:
        gap = min(gap, 2 ** (self.cfg.max_skip_exponent + 1) - 1)
        self.out += [self.vocab.id("Skip", 2 ** j) for j in reversed(range(gap.bit_length()))
                     if gap >> j & 1]

    def _bar(self, bar_events: list[tuple], bar_start: int) -> None:
        for step, group in groupby(bar_events, key=lambda e: e[0]):
            payloads = [e[2] for e in group]
            if isinstance(payloads[0], TimeSignature):
                sig = payloads.pop(0)
                self.out.append(self.vocab.id("TimeSig", f"{sig.numerator}/{sig.denominator}"))
            if payloads:
                self.out.append(self.vocab.id("Pos", step - bar_start))
            for payload in payloads:
                if isinstance(payload, Note):
                    self._note(payload)
                else:
                    self.out.append(self.vocab.id("Tempo", self.cfg.tempo_bin(payload)))

    def _note(self, note: Note) -> None:
        vocab, velocity_bin = self.vocab, self.cfg.velocity_bin(note.velocity)
        if not note.drum and note.program != self.program:
            self.program = note.program
            self.out.append(vocab.id("Program", note.program))
        if velocity_bin != self.velocity_bin:
            self.velocity_bin = velocity_bin
            self.out.append(vocab.id("Vel", velocity_bin))
        if note.drum:
            self.out.append(vocab.id("Drum", note.pitch))
        else:
            self.out += [vocab.id("Pitch", note.pitch), vocab.id("Dur", note.duration)]


class _Decoder:
    """State machine for :meth:`Tokenizer.decode`."""

    def __init__(self, tokenizer: Tokenizer, max_gap_bars: int | None = None):
        self.cfg, self.kinds = tokenizer.config, tokenizer.vocab.kinds
        self.max_gap_bars, self.gap = max_gap_bars, 0
        self.signatures = [TimeSignature(0, 4, 4)]
        self.grid = BarGrid(self.signatures, self.cfg)
        self.tempos: list[tuple[int, float]] = []
        self.notes: list[Note] = []
        self.bar, self.bar_start, self.step = -1, 0, 0
        self.program, self.velocity = 0, self.cfg.velocity_value(self.cfg.velocity_bins // 2)
        self.pending: Note | None = None

    def run(self, ids: list[int]) -> Score:
        for token in ids:
            if token == EOS:
                break
            kind, value = self.kinds[token] if 0 <= token < len(self.kinds) else ("?", "")
            if kind != "Dur":
                self._flush()
            handler = getattr(self, f"_on_{kind}", None)
            if handler is not None:
                handler(value)
        self._flush()
        return self._score()

    def _score(self) -> Score:
        notes = canonical_notes(self.notes)  # a sampled sequence may repeat or overlap a key
        tempos = dict(self.tempos)  # a later tempo at the same step wins
        return Score(notes, sorted(tempos.items()), self.signatures)

    def _flush(self) -> None:
        if self.pending is not None:
            self.notes.append(self.pending)
            self.pending = None

    def _move_to_bar(self, bar: int) -> None:
        self.bar = bar
        self.bar_start = self.grid.bar_start(max(bar, 0))
        self.step = self.bar_start

    def _on_Bar(self, _: str) -> None:
        self.gap = 0
        self._move_to_bar(self.bar + 1)

    def _on_Skip(self, value: str) -> None:
        skip = int(value)
        if self.max_gap_bars is not None:
            skip = max(0, min(skip, self.max_gap_bars - self.gap))
        self.gap += skip
        self._move_to_bar(self.bar + skip)

    def _on_TimeSig(self, value: str) -> None:
        num, den = (int(x) for x in value.split("/"))
        start = self.grid.bar_start(max(self.bar, 0))
        self.signatures = [s for s in self.signatures if s.step < start]
        self.signatures.append(TimeSignature(start, num, den))
        self.grid = BarGrid(self.signatures, self.cfg)

    def _on_Pos(self, value: str) -> None:
        self.step = self.bar_start + int(value)

    def _on_Tempo(self, value: str) -> None:
        self.tempos.append((self.step, self.cfg.tempo_value(int(value))))

    def _on_Program(self, value: str) -> None:
        self.program = int(value)

    def _on_Vel(self, value: str) -> None:
        self.velocity = self.cfg.velocity_value(int(value))

    def _on_Pitch(self, value: str) -> None:
        self.pending = Note(self.step, self.cfg.steps_per_beat, int(value), self.velocity,
                            self.program, False)

    def _on_Dur(self, value: str) -> None:
        if self.pending is not None:
            self.pending = self.pending._replace(duration=int(value))
            self._flush()

    def _on_Drum(self, value: str) -> None:
        self.notes.append(Note(self.step, 1, int(value), self.velocity, -1, True))
