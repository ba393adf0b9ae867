"""Sampled-instrument pitch windows (``kind: soundfont_render``): MIDI notes through a SoundFont.

The notes come from the same corpus mechanism as ``midi_render`` (``notewise.music.render``: the
``music_notes`` rule's ``notes.npz``, the Bach corpus by default). Windows weigh pieces by length
and start uniformly inside them, as ``midi_render``'s, but runs of ``piece_run`` consecutive
samples share a piece (``window_position``): neighbouring windows of a shard then repeat notes,
which the renderer's note cache holds (docs/benchmarks.md). Each (piece, track) -- a voice --
plays one General MIDI program drawn (counter RNG, per piece) from ``programs``.

Rendering (TinySoundFont through the ``tinysoundfont`` wheel, SF2 or SF3; default SoundFont: the
TimGM6mb.sf2 that the ``pretty_midi`` wheel ships). **Every note is rendered alone** -- key down at
its MIDI onset, key up at its MIDI offset (the *key release*), from its onset up to the window's
end -- and the window is the sum of those signals, then one gain if the peak exceeds
``synth.PEAK_LIMIT``. So each note's share of the energy is *measured* on its own signal, not
modelled: ``E = mean(x_j**2 over the visible span)``, times ``visible_ratio * 0.5`` for classes
1/3 (SPEC section 2, with the measured mean square in place of ``coeff v**2 mean(env**2)``).

Release tails: a note's *label* ends at its key release (``note_offset`` = MIDI note-off, so the
class follows the key); the SoundFont's release tail after it is rendered (it is in the audio)
but carries no label, like room reverberation of a note that has ended. Notes released up to
``release_tail_s`` before the window are rendered for the tail they ring into it; earlier ones
are taken as silent, and a tail is cut where it stays below -80 dB re full scale
(``TAIL_FLOOR``). Sustain pedal: applied when the corpus is read (the MIDI reader moves a
note-off to the pedal's release), so the key release here is the pedal-extended one. Pitch bends:
refused -- the corpus keeps no bend events, so notes sound, and are labelled, at their
equal-tempered MIDI pitch (A4 = 440 Hz). Notes outside ``[f_min, f_max]`` are rendered but not
labelled; notes with no energy over their visible span (silent samples) neither.

Determinism: TinySoundFont has no random state, but a ``reset`` fades voices out over the next
few milliseconds (a quick release) and leaves them in its voice pool; ``NoteRenderer`` therefore
renders silence after each reset until a whole block is exactly zero, which makes every note's
signal independent of what was rendered before (tested), so shards are byte-identical whatever
the order or the shard layout.

The note table has the usual columns; ``note_timbre`` holds the GM program (0-127) and
``note_velocity`` the MIDI velocity / 127.
"""
from __future__ import annotations

import functools
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from numba import njit

from notewise.config import kind_settings
from notewise.music.checks import SoundFontError, check_soundfont_file, soundfont_path
from notewise.music.corpus import load_corpus, notes_path
from notewise.music.render import corpus_windows, sounding_notes, start_of
from notewise.synth.bins import midi_to_hz
from notewise.synth.windows import ShardData, output_arrays
from notewise.synth.labels import label_window_powers
from notewise.synth.rng import randint
from notewise.store.layout import NOTE_DTYPES

#: Samples of silence rendered per block after a reset, until one block is exactly zero.
FLUSH_BLOCK = 1024
FLUSH_MAX_BLOCKS = 256
#: Release tails are rendered this many samples at a time until a block stays below
#: ``TAIL_FLOOR`` (-80 dB re full scale), where they are cut.
TAIL_BLOCK = 2048
TAIL_FLOOR = 1e-4
#: A preset *sounds an octave below its key* (a 16' rank, as TimGM6mb's church organ and the
#: drawbar organs of both Debian SoundFonts) when, on one of ``OCTAVE_KEYS`` held a second, the
#: spectrum half a semitone around f0/2 reaches ``OCTAVE_BELOW_DB`` re the strongest partial at
#: or above the key. Its windows would be labelled an octave above their lowest pitch, and a
#: model trained on them learns to skip an organ's lowest partial. Measured: such presets at
#: -5 to +12 dB, every other default program and evaluation instrument at -30 dB or below.
OCTAVE_KEYS = (48, 60, 72)
OCTAVE_BELOW_DB = -20.0
#: Counter-RNG draw of a voice's program (stream: the (dataset, piece) key, counter: the track).
DRAW_PROGRAM = 0
#: Draws of the dataset key: a run's piece (counter: the run), a sample's start (counter: it).
DRAW_RUN_PIECE, DRAW_RUN_START = 1, 0


@functools.lru_cache(maxsize=4)
def _soundfont_bytes(path: str, mtime_ns: int) -> bytes:
    return Path(path).read_bytes()


class NoteRenderer:
    """Renders one note at a time through a SoundFont, mono float32 at ``sample_rate``."""

    #: Budget of the rendered-note cache (``note_signal``).
    cache_bytes = 512 * 2**20

    def __init__(self, path, sample_rate: int, gain_db: float = 0.0):
        try:
            from tinysoundfont import _tinysoundfont as tsf
        except ImportError as err:
            raise SoundFontError("kind soundfont_render needs tinysoundfont: "
                                 "pip install --no-deps tinysoundfont==0.3.7") from err

        path = Path(path)
        check_soundfont_file(path)
        try:
            self.font = tsf.SoundFont(_soundfont_bytes(str(path), os.stat(path).st_mtime_ns))
        except Exception as err:  # the binding raises RuntimeError/ValueError variants
            raise SoundFontError(f"SoundFont {path}: TinySoundFont cannot load it ({err})") from err
        self.path = path
        self.sample_rate = int(sample_rate)
        self.font.set_output(tsf.OutputMode.Mono, int(sample_rate), float(gain_db))
        self._silence = np.zeros(FLUSH_BLOCK, np.float32)
        self._cache: OrderedDict = OrderedDict()
        self._cached_bytes = 0
        self._octave_below: dict[int, float] = {}

    def has_program(self, program: int, bank: int = 0) -> bool:
        return self.font.get_preset_index(bank, int(program)) >= 0

    def check_programs(self, programs) -> None:
        """Each program has a preset that sounds at its key (``octave_below_db``)."""
        missing = [int(p) for p in programs if not self.has_program(p)]
        if missing:
            raise SoundFontError(f"SoundFont {self.path}: no preset for GM programs {missing}"
                                 " (bank 0)")
        low = {int(p): level for p in programs
               if (level := self.octave_below_db(p)) > OCTAVE_BELOW_DB}
        if low:
            levels = ", ".join(f"{p} ({db:+.0f} dB)" for p, db in low.items())
            raise SoundFontError(
                f"SoundFont {self.path}: GM programs {levels} sound an octave below their key"
                f" (the spectrum at f0/2, re the strongest partial, above {OCTAVE_BELOW_DB:.0f}"
                " dB): labelled by key, they would teach the wrong octave; leave them out")

    def sounds_at_key(self, program: int) -> bool:
        return self.octave_below_db(program) <= OCTAVE_BELOW_DB

    def octave_below_db(self, program: int) -> float:
        """The loudest f0/2 level, dB re the strongest partial at or above the key, over
        ``OCTAVE_KEYS`` held one second (the attack's first quarter second left out; a key the
        preset leaves silent counts -inf)."""
        program = int(program)
        if program not in self._octave_below:
            self._octave_below[program] = max(self._key_octave_below_db(program, key)
                                              for key in OCTAVE_KEYS)
        return self._octave_below[program]

    def _key_octave_below_db(self, program: int, key: int) -> float:
        rate = self.sample_rate
        signal = self.render_note(program, key, 0.8, rate, rate)[rate // 4:]
        if not np.any(np.abs(signal) >= TAIL_FLOOR):
            return -np.inf
        spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal)), 8 * len(signal)))
        freqs = np.maximum(np.fft.rfftfreq(8 * len(signal), 1 / rate), 1e-9)
        semitones = 12 * np.log2(freqs / float(midi_to_hz(key)))
        strongest = max(spectrum[semitones >= -1].max(), 1e-12)
        below = max(spectrum[np.abs(semitones + 12) <= 0.5].max(), 1e-12)
        return float(20 * np.log10(below / strongest))

    def _render_into(self, buf: np.ndarray) -> None:
        if len(buf):
            self.font.render(memoryview(buf).cast("B"), False)

    def _flush(self) -> None:
        """Reset, then render silence until the voices' quick release has died out."""
        self.font.reset()
        for _ in range(FLUSH_MAX_BLOCKS):
            self._silence[:] = 0.0
            self._render_into(self._silence)
            if not self._silence.any():
                return
        raise SoundFontError(f"SoundFont {self.path}: voices still sound"
                             f" {FLUSH_MAX_BLOCKS * FLUSH_BLOCK} samples after a reset")

    def _key_down(self, program: int, key: int, velocity: float) -> None:
        """A clean synthesiser (``_flush``), then ``key`` pressed on ``program``."""
        self._flush()
        self.font.channel_set_preset_number(0, int(program), False)
        self.font.channel_note_on(0, int(key), float(velocity))

    def render_note(self, program: int, key: int, velocity: float, held: int,
                    length: int) -> np.ndarray:
        """``length`` samples of ``key`` on ``program``: key down at sample 0, released at sample
        ``held`` (the release tail rings on after it). ``velocity`` in (0, 1]."""
        self._key_down(program, key, velocity)
        out = np.zeros(int(length), np.float32)
        held = min(max(int(held), 0), int(length))
        self._render_into(out[:held])
        self.font.channel_note_off(0, int(key))
        self._render_into(out[held:])
        return out

    def _render_until_silent(self, program, key, velocity, held, tail) -> np.ndarray:
        """Key down for ``held`` samples, then the release in blocks until a block stays below
        ``TAIL_FLOOR`` (or ``tail`` samples have passed); the samples after the last one above
        the floor are cut."""
        self._key_down(program, key, velocity)
        out = np.zeros(int(held) + int(tail), np.float32)
        self._render_into(out[:held])
        self.font.channel_note_off(0, int(key))
        end = last = held
        while end < len(out):
            block = out[end:min(end + TAIL_BLOCK, len(out))]
            self._render_into(block)
            loud = np.flatnonzero(np.abs(block) >= TAIL_FLOOR)
            if not len(loud):
                break
            last = end + int(loud[-1]) + 1
            end += len(block)
        return out[:last].copy()

    def note_signal(self, program: int, key: int, velocity: float, held: int,
                    tail: int) -> np.ndarray:
        """The whole note: ``held`` samples key down, then its release until it falls below
        ``TAIL_FLOOR`` (at most ``tail`` samples). Cached (LRU, ``cache_bytes``): notes repeat
        (same program, key, velocity, length) and each note's signal is independent of what was
        rendered before, so a hit returns the same bytes as a render."""
        slot = (int(program), int(key), float(velocity), int(held), int(tail))
        signal = self._cache.get(slot)
        if signal is not None:
            self._cache.move_to_end(slot)
            return signal
        signal = self._render_until_silent(program, key, velocity, held, tail)
        self._cache[slot] = signal
        self._cached_bytes += signal.nbytes
        while self._cached_bytes > self.cache_bytes and len(self._cache) > 1:
            _, dropped = self._cache.popitem(last=False)
            self._cached_bytes -= dropped.nbytes
        return signal


@functools.lru_cache(maxsize=2)
def _renderer(path: str, mtime_ns: int, sample_rate: int, gain_db: float) -> NoteRenderer:
    return NoteRenderer(path, sample_rate, gain_db)


def note_renderer(settings: dict, sample_rate: int) -> NoteRenderer:
    """The (per-process, cached) renderer of a soundfont_render dataset's settings."""
    path = soundfont_path(settings["soundfont"])
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError as err:
        raise SoundFontError(f"SoundFont {path}: cannot be read ({err.strerror or err})") from err
    renderer = _renderer(str(path), mtime, int(sample_rate), float(settings["gain_db"]))
    renderer.check_programs(settings["programs"])
    return renderer


# --------------------------------------------------------------------------- settings


# --------------------------------------------------------------------------- windows


@dataclass
class SoundFontContext:
    """What every window of a range shares (``music.start_of`` and ``music.sounding_notes``
    read ``key``, ``corpus``, ``start``, ``end``, ``cumulative``, ``max_length``, ``window``)."""

    corpus: object
    settings: dict
    key: np.uint64
    start: np.ndarray
    end: np.ndarray
    cumulative: np.ndarray
    max_length: np.ndarray
    note_keys: np.ndarray
    programs: np.ndarray
    window: int
    sample_rate: float
    bins: dict
    sigma: float
    tail: int
    renderer: NoteRenderer


def soundfont_context(spec: dict, corpus) -> SoundFontContext:

    settings = kind_settings(spec["settings"])
    sr, window = float(spec["audio"]["sample_rate"]), int(spec["audio"]["window"])
    return SoundFontContext(
        corpus, settings, *corpus_windows(spec, corpus), np.asarray(settings["programs"], np.int64),
        window, sr, spec["bins"], float(spec["labels"]["sigma_bins"]),
        int(round(settings["release_tail_s"] * sr)), note_renderer(settings, int(sr)))


def window_position(ctx: SoundFontContext, sample: int) -> tuple[int, int]:
    """(piece, window start) of ``sample``. Runs of ``piece_run`` consecutive samples share a
    piece (drawn by length, as ``music.window_position`` does for one sample), each its own
    start, uniform in that piece: the marginal distribution is ``midi_render``'s, and a shard's
    neighbouring windows repeat notes that the renderer's cache then holds."""

    run = np.int64(sample // ctx.settings["piece_run"])
    piece, _ = start_of(ctx, randint(ctx.key, run, DRAW_RUN_PIECE, 0, int(ctx.cumulative[-1]) - 1))
    before = int(ctx.cumulative[piece - 1]) if piece else 0
    starts = int(ctx.cumulative[piece]) - before
    return piece, int(randint(ctx.key, sample, DRAW_RUN_START, 0, starts - 1))


def voice_program(ctx: SoundFontContext, piece: int, track: int) -> int:
    """The GM program of voice ``(piece, track)``: drawn from ``programs`` per piece."""
    draw = randint(ctx.note_keys[piece], np.int64(track), DRAW_PROGRAM, 0, len(ctx.programs) - 1)
    return int(ctx.programs[draw])


@dataclass
class WindowParts:
    """The notes of one window and each one's own rendered signal (``parts[j]``, float32)."""

    onset: np.ndarray      # int64, window-relative key down
    offset: np.ndarray     # int64, window-relative key release
    pitch: np.ndarray      # int64 MIDI
    velocity: np.ndarray   # float64, MIDI / 127
    program: np.ndarray    # int64 GM program
    parts: np.ndarray      # float32 [n, window]


def render_parts(ctx: SoundFontContext, piece: int, pos: int) -> WindowParts:
    """Every note sounding (or ringing, within ``release_tail_s``) in the window at ``pos`` of
    ``piece`` (``window_position`` of a sample), each rendered alone from its key down."""

    notes = sounding_notes(ctx, piece, pos, ctx.tail)
    corpus, window = ctx.corpus, ctx.window
    program = np.array([voice_program(ctx, piece, int(corpus.track[j])) for j in notes], np.int64)
    parts = np.zeros((len(notes), window), np.float32)
    for row, j in enumerate(notes):
        start = int(ctx.start[j])
        signal = ctx.renderer.note_signal(program[row], int(corpus.pitch[j]),
                                          corpus.velocity[j] / 127.0, int(ctx.end[j]) - start,
                                          ctx.tail + window)
        first = max(start - pos, 0)
        piece_slice = signal[pos + first - start:pos + window - start]
        parts[row, first:first + len(piece_slice)] = piece_slice
    return WindowParts(ctx.start[notes] - pos, ctx.end[notes] - pos,
                       corpus.pitch[notes].astype(np.int64),
                       corpus.velocity[notes].astype(np.float64) / 127.0, program, parts)


@njit(cache=True)
def measured_mean_squares(parts, onsets, offsets):
    """Per note the mean square of its own signal over its visible span (0 if empty)."""
    window = parts.shape[1]
    out = np.zeros(parts.shape[0])
    for j in range(parts.shape[0]):
        first, stop = max(onsets[j], 0), min(offsets[j], window)
        total = 0.0
        for n in range(first, stop):
            total += np.float64(parts[j, n]) ** 2
        out[j] = total / (stop - first) if stop > first else 0.0
    return out


@dataclass
class MeasuredLabels:
    classes: np.ndarray
    weights: np.ndarray
    shares: np.ndarray
    labelled: np.ndarray


def label_measured(freqs, onsets, offsets, mean_squares, window: int, bins: dict, sigma: float,
                   conf: np.ndarray, energy: np.ndarray) -> MeasuredLabels:
    """SPEC section 2 labels with measured per-note mean squares (``labels.label_window_powers``):
    classes, weights, shares and the window's target rows (``conf``, ``energy``, overwritten)."""
    n = len(freqs)
    size = max(n, 1)
    out = MeasuredLabels(np.zeros(size, np.int64), np.zeros(size), np.zeros(size),
                         np.zeros(size, np.bool_))
    label_window_powers(n, np.asarray(freqs, np.float64), np.asarray(onsets, np.int64),
                        np.asarray(offsets, np.int64), np.asarray(mean_squares, np.float64),
                        window, float(bins["f_min"]), float(bins["f_max"]), sigma, conf, energy,
                        out.classes, out.weights, out.shares, np.zeros(size), out.labelled)
    return MeasuredLabels(out.classes[:n], out.weights[:n], out.shares[:n], out.labelled[:n])


def render_sample(ctx: SoundFontContext, sample: int, wave, conf, energy) -> dict:
    """Render and label ``sample`` into the rows ``wave``, ``conf``, ``energy``; returns its
    note-table columns (labelled notes only)."""
    from notewise.synth.bins import midi_to_hz
    from notewise.synth.oscillator import PEAK_LIMIT, apply_peak_limit

    w = render_parts(ctx, *window_position(ctx, sample))
    wave[:] = w.parts.astype(np.float64).sum(axis=0) if len(w.parts) else 0.0
    apply_peak_limit(wave, PEAK_LIMIT)
    freqs = midi_to_hz(w.pitch)
    mean_squares = measured_mean_squares(w.parts, w.onset, w.offset)
    labels = label_measured(freqs, w.onset, w.offset, mean_squares, ctx.window, ctx.bins,
                            ctx.sigma, conf, energy)
    keep = labels.labelled
    return {
        "note_freq": freqs[keep], "note_velocity": w.velocity[keep],
        "note_timbre": w.program[keep], "note_onset": w.onset[keep],
        "note_offset": w.offset[keep], "note_class": labels.classes[keep],
        "note_weight": labels.weights[keep], "note_energy_share": labels.shares[keep],
    }


def piece_order(ctx: SoundFontContext, samples) -> np.ndarray:
    """Rows of ``samples`` ordered by piece (stable): the order the windows are rendered in."""
    pieces = np.array([window_position(ctx, int(s))[0] for s in samples], np.int64)
    return np.argsort(pieces, kind="stable")


def generate_soundfont_samples(spec: dict, samples, timbres=None, *, out=None, corpus=None):
    """Samples ``samples`` of a soundfont_render dataset as a ``ShardData`` (row ``r`` = sample
    ``samples[r]``; ``out`` as in ``generate.generate_samples``); ``corpus`` defaults to the
    dataset's notes file (``corpus.notes_path``). ``timbres`` is unused (the SoundFont's
    instruments are the timbres): the kinds' generators share one signature."""
    samples = np.ascontiguousarray(samples, dtype=np.int64).reshape(-1)
    corpus = load_corpus(notes_path(spec)) if corpus is None else corpus
    ctx = soundfont_context(spec, corpus)
    waves, confs, energies = output_arrays(out, len(samples), ctx.window,
                                           int(spec["bins"]["n_bins"]))
    tables = [None] * len(samples)
    for row in piece_order(ctx, samples):  # repeated notes of a piece hit the renderer's cache
        tables[row] = render_sample(ctx, int(samples[row]), waves[row], confs[row], energies[row])
        tables[row]["note_sample"] = np.full(len(tables[row]["note_freq"]), row)
    columns = {k: [np.zeros(0, dt)] + [t[k] for t in tables] for k, dt in NOTE_DTYPES.items()}
    notes = {k: np.concatenate(columns[k]).astype(dt) for k, dt in NOTE_DTYPES.items()}
    return ShardData(waves, confs, energies, notes)


# --------------------------------------------------------------------------- validation


