"""Music-driven pitch windows (``kind: midi_render``): real MIDI note events, SPEC labels.

Two stages:

1. ``notewise.music.corpus.build_corpus`` (rule ``music_notes``) reads the corpus' MIDI files
   once into ``results/datasets/<name>/notes.npz``.
2. ``generate_music_samples`` (the kind's generator in ``notewise.kinds``) renders windows.
   Sample ``i`` draws (counter RNG, dataset key) a position uniformly over every piece's possible
   window starts (so pieces weigh by length), takes the notes sounding in ``[pos, pos + W)`` with
   their *true* window-relative onsets and offsets (classes 1-4 follow from them), renders them
   with ``synth``'s kernels and labels them with ``labels``' functions, exactly as the random
   sets. Notes outside ``[f_min, f_max]`` are synthesised but not labelled (``labels`` does so);
   inaudible ones (every partial above Nyquist) neither.

Per note: ``f0`` is the equal-tempered MIDI pitch (A4 = 440 Hz), velocity is ``midi / 127``, the
timbre is the one of its track (or program, ``timbre_by``) in this piece: drawn once per
(piece, track) from ``timbres``, or fixed by ``program_timbres``. Its partial phases (and the
note-level augmentations) are drawn per (piece, note), so every window is a cut of one rendered
performance of the piece. Augmentations: :mod:`notewise.music.augment`.

The note table has the usual columns plus ``note_detune_cents`` (the label's deviation from the
MIDI pitch: detune and vibrato) and ``note_vibrato_cents`` (vibrato depth); offsets are where the
note stops sounding (note-off, or the end of its room tail).
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import numpy as np

from notewise.music import augment as aug
from notewise.config import kind_settings
from notewise.music.corpus import MusicCorpus, load_corpus, notes_path, piece_key
from notewise.synth.bin_kernels import freq_to_bin_scalar
from notewise.synth.bins import midi_to_hz
from notewise.synth.labels import (classify_note, confidence_weight, in_label_range, label_window,
                     note_energy, visible_ratio, write_targets)
from notewise.synth.rng import dataset_key, mix64, randint, random_u64
from notewise.store.layout import NOTE_DTYPES, OPTIONAL_NOTE_DTYPES
from notewise.synth.oscillator import PEAK_LIMIT, apply_peak_limit, new_scratch
from notewise.synth.windows import (LabelGrid, NoteArrays, ShardData, TimbreArrays,
                                    output_arrays)

log = logging.getLogger(__name__)

#: Draw number of a window's position (counter RNG).
DRAW_POSITION = 0


# --------------------------------------------------------------------------- rendering


@dataclass
class MusicContext:
    """What every window of a range of a midi_render dataset shares (``music_context``)."""

    corpus: MusicCorpus
    settings: dict
    key: np.uint64
    start: np.ndarray        # int64 note starts, samples
    end: np.ndarray          # int64 note ends, samples
    cumulative: np.ndarray   # int64 [P]: window starts up to and including piece p
    max_length: np.ndarray   # int64 [P]: longest note of each piece, samples
    note_keys: np.ndarray    # uint64 [P]: (dataset, piece) key of the notes' draws
    timbre_of: dict          # (piece, track or program) -> timbre id, filled lazily
    choices: np.ndarray      # int64 timbre ids to draw from
    window: int
    sample_rate: float
    bins: dict
    sigma: float


def corpus_windows(spec: dict, corpus: MusicCorpus) -> tuple:
    """What a music kind's window draw needs of a corpus: ``(key, start, end, cumulative,
    max_length, note_keys)`` -- the dataset key, note starts and ends in samples (int64, at least
    one sample long), per piece the number of window starts up to and including it, its longest
    note and the (dataset, piece) key of its notes' draws."""
    sr, window = float(spec["audio"]["sample_rate"]), int(spec["audio"]["window"])
    if len(corpus) == 0:
        raise ValueError(f"dataset {spec['dataset']}: the note corpus holds no piece")
    start = np.round(corpus.start_s * sr).astype(np.int64)
    end = np.maximum(np.round(corpus.end_s * sr).astype(np.int64), start + 1)
    bounds = corpus.piece_start
    lengths = np.array([end[a:b].max() for a, b in zip(bounds[:-1], bounds[1:])], np.int64)
    max_length = np.array([(end[a:b] - start[a:b]).max() for a, b in zip(bounds[:-1], bounds[1:])],
                          np.int64)
    key = dataset_key(spec["seed"], spec["dataset"])
    note_keys = np.array([mix64(key ^ piece_key(str(n))) for n in corpus.names], np.uint64)
    return (key, start, end, np.cumsum(np.maximum(lengths - window + 1, 1)), max_length,
            note_keys)


def music_context(spec: dict, corpus: MusicCorpus, n_timbres: int) -> MusicContext:
    settings = kind_settings(spec["settings"])
    sr, window = float(spec["audio"]["sample_rate"]), int(spec["audio"]["window"])
    key, start, end, cumulative, max_length, note_keys = corpus_windows(spec, corpus)
    ids = settings["timbres"]
    choices = np.arange(n_timbres) if ids == "all" else np.asarray(ids, np.int64)
    return MusicContext(corpus, settings, key, start, end, cumulative, max_length, note_keys,
                    {}, choices.astype(np.int64), window, sr, spec["bins"],
                    float(spec["labels"]["sigma_bins"]))


def window_position(ctx: MusicContext, sample: int) -> tuple[int, int]:
    """(piece, window start in samples) of ``sample``: uniform over all possible starts."""
    return start_of(ctx, randint(ctx.key, sample, DRAW_POSITION, 0, int(ctx.cumulative[-1]) - 1))


def start_of(ctx, drawn: int) -> tuple[int, int]:
    """(piece, window start) of window start number ``drawn`` of all pieces' starts."""
    piece = int(np.searchsorted(ctx.cumulative, drawn, side="right"))
    before = int(ctx.cumulative[piece - 1]) if piece else 0
    return piece, int(drawn - before)


def sounding_notes(ctx: MusicContext, piece: int, pos: int, tail: int = 0) -> np.ndarray:
    """Global indices of the notes of ``piece`` sounding in ``[pos, pos + W)`` (with ``tail``
    samples of room after each note-off), in start order."""
    a, b = ctx.corpus.piece_start[piece], ctx.corpus.piece_start[piece + 1]
    lo = a + np.searchsorted(ctx.start[a:b], pos - tail - ctx.max_length[piece], side="left")
    hi = a + np.searchsorted(ctx.start[a:b], pos + ctx.window, side="left")
    candidates = np.arange(lo, hi)
    return candidates[ctx.end[candidates] + tail > pos]


def _timbre(ctx: MusicContext, piece: int, note: int) -> int:
    settings = ctx.settings
    by_program = settings["timbre_by"] == "program"
    program = int(ctx.corpus.program[note])
    fixed = settings["program_timbres"].get(str(program))
    if fixed is not None:
        return int(fixed)
    slot = (piece, program if by_program else int(ctx.corpus.track[note]) + 1000)
    if slot not in ctx.timbre_of:
        draw = randint(ctx.note_keys[piece], np.int64(slot[1]), 0, 0, len(ctx.choices) - 1)
        ctx.timbre_of[slot] = int(ctx.choices[draw])
    return ctx.timbre_of[slot]


class WindowNotes:
    """The notes of one window, ready for the kernels (one timbre row per note)."""

    def __init__(self, ctx: MusicContext, piece: int, pos: int, notes: np.ndarray, timbres):
        n = len(notes)
        self.count = n
        self.onset = ctx.start[notes] - pos
        self.offset = ctx.end[notes] - pos
        self.nominal = midi_to_hz(ctx.corpus.pitch[notes])
        self.velocity = ctx.corpus.velocity[notes].astype(np.float64) / 127.0
        self.timbre = np.array([_timbre(ctx, piece, j) for j in notes], np.int64)
        ids = notes - ctx.corpus.piece_start[piece]
        keys = np.full(n, ctx.note_keys[piece], np.uint64)
        self.phase_key = np.array([random_u64(k, i, aug.DRAW_PHASE) for k, i in zip(keys, ids)],
                                  np.uint64)
        self.draws = aug.draw_note_augment(ctx.settings["augment"], keys, ids, ctx.choices)
        self.freq = self.nominal * 2.0 ** (self.draws.detune / 1200.0)
        self.amplitudes = timbres.amplitudes[self.timbre].copy()
        for j, mix in enumerate(self.draws.mix):
            if mix is not None:
                self.amplitudes[j] = aug.blend_amplitudes(timbres.amplitudes, self.timbre[j], *mix)
        self.stretch = timbres.inharmonicity[self.timbre].copy()
        self.adsr = timbres.adsr[self.timbre].copy()

    def subset(self, index) -> "WindowNotes":
        """The notes ``index`` (e.g. one note alone, to measure its power)."""
        index = np.atleast_1d(index)
        out = copy.copy(self)
        out.count = len(index)
        for name in ("onset", "offset", "nominal", "velocity", "timbre", "phase_key", "freq",
                     "amplitudes", "stretch", "adsr"):
            setattr(out, name, getattr(self, name)[index])
        draws = copy.copy(self.draws)
        for name in ("detune", "vib_rate", "vib_depth", "vib_phase"):
            setattr(draws, name, getattr(self.draws, name)[index])
        draws.mix = [self.draws.mix[i] for i in index]
        out.draws = draws
        return out


def render_dry(notes: WindowNotes, length: int, shift: int, sample_rate: float) -> np.ndarray:
    """The notes mixed into ``length`` samples, note times shifted by ``shift`` (no limit)."""
    out = np.zeros(length, np.float32)
    scratch = new_scratch(length, notes.amplitudes.shape[1])
    phases = np.zeros(notes.amplitudes.shape[1])
    d = notes.draws
    for j in range(notes.count):
        aug.render_performed_note(out, notes.freq[j], notes.velocity[j], notes.onset[j] + shift,
                                  notes.offset[j] + shift, notes.amplitudes[j],
                                  np.float64(notes.stretch[j]), notes.adsr[j], notes.phase_key[j],
                                  d.vib_rate[j], d.vib_depth[j], d.vib_phase[j], sample_rate,
                                  scratch, phases)
    return out


def label_frequencies(notes: WindowNotes, window: int, sample_rate: float) -> np.ndarray:
    """Per note the mean f0 over its visible dry samples (its last segment if none)."""
    d = notes.draws
    out = notes.freq.copy()
    for j in np.flatnonzero(d.vib_depth > 0):
        onset, offset = int(notes.onset[j]), int(notes.offset[j])
        first, stop = max(onset, 0), min(offset, window)
        if stop <= first:
            first, stop = max(onset, offset - aug.VIBRATO_SEGMENT), offset
        out[j] = aug.mean_vibrato_frequency(notes.freq[j], d.vib_rate[j], d.vib_depth[j],
                                            d.vib_phase[j], onset, first, stop, sample_rate)
    return out


class NoteLabels:
    """Per-note labels of one window (the label functions' output arrays) and the offsets the
    labels used (tail-extended with a room)."""

    def __init__(self, n: int):
        self.classes = np.zeros(max(n, 1), np.int64)
        self.weights = np.zeros(max(n, 1))
        self.shares = np.zeros(max(n, 1))
        self.bins = np.zeros(max(n, 1))
        self.labelled = np.zeros(max(n, 1), np.bool_)
        self.offset = None


def label_dry(ctx, notes, freqs, conf, energy) -> NoteLabels:
    """SPEC section 2 labels (``labels.label_window``, closed-form energies)."""
    out = NoteLabels(notes.count)
    arrays = NoteArrays(freqs, notes.velocity, np.arange(notes.count), notes.onset, notes.offset,
                        notes.phase_key, out.classes, out.weights, out.shares, out.bins,
                        out.labelled)
    grid = LabelGrid(ctx.sample_rate, ctx.window, float(ctx.bins["f_min"]),
                     float(ctx.bins["f_max"]), ctx.sigma)
    label_window(notes.count, arrays, TimbreArrays(notes.amplitudes, notes.stretch, notes.adsr),
                 grid, conf, energy)
    out.offset = notes.offset
    return out


def label_room(ctx, notes, freqs, ir, conf, energy) -> NoteLabels:
    """Labels with the room (see ``augment``): tail-extended offsets, filtered power."""
    out = NoteLabels(notes.count)
    window, sr = ctx.window, ctx.sample_rate
    f_min, f_max, n_bins = float(ctx.bins["f_min"]), float(ctx.bins["f_max"]), conf.shape[0]
    out.offset = notes.offset + len(ir) - 1
    h2_cumsum = np.concatenate([[0.0], np.cumsum(ir**2)])
    energies = np.zeros(notes.count)
    for j in range(notes.count):
        onset, offset = int(notes.onset[j]), int(out.offset[j])
        first, stop = max(onset, 0), min(offset, window)
        mean_square = (aug.room_mean_square(first, stop, onset, int(notes.offset[j]),
                                            notes.adsr[j], sr, h2_cumsum)
                       if stop > first else 0.0)
        coeff = aug.room_energy_coeff(freqs[j], notes.amplitudes[j], np.float64(notes.stretch[j]),
                                      sr, ir)
        out.classes[j] = classify_note(onset, offset, window)
        ratio = visible_ratio(onset, offset, window)
        out.weights[j] = confidence_weight(out.classes[j], ratio)
        energies[j] = note_energy(out.classes[j], ratio, notes.velocity[j], coeff, mean_square)
        out.bins[j] = freq_to_bin_scalar(freqs[j], f_min, f_max, n_bins)
        out.labelled[j] = in_label_range(freqs[j], f_min, f_max) and energies[j] > 0.0
    total = float(energies[out.labelled[:notes.count]].sum())
    write_targets(conf, energy, notes.count, out.bins, out.weights, energies, out.labelled,
                  total, ctx.sigma)
    labelled = out.labelled[:notes.count]
    out.shares[:notes.count] = np.where(labelled, energies / max(total, 1e-300), 0.0)
    return out


def render_notes(ctx: MusicContext, notes: WindowNotes, ir: np.ndarray | None) -> np.ndarray:
    """The window of ``notes`` (through the room ``ir`` if given), before any peak limit."""
    shift = 0 if ir is None else len(ir) - 1
    dry = render_dry(notes, ctx.window + shift, shift, ctx.sample_rate)
    if ir is None:
        return dry
    return aug.room_window(dry.astype(np.float64), ir)


def window_notes(ctx: MusicContext, sample: int, timbres):
    """``(piece, pos, impulse response or None, WindowNotes)`` of ``sample``."""
    piece, pos = window_position(ctx, sample)
    ir = aug.room_draw(ctx.settings["augment"], ctx.key, sample, ctx.sample_rate)
    shift = 0 if ir is None else len(ir) - 1
    return piece, pos, ir, WindowNotes(ctx, piece, pos, sounding_notes(ctx, piece, pos, shift),
                                       timbres)


def render_sample(ctx: MusicContext, sample: int, timbres, wave, conf, energy) -> dict:
    """Render and label ``sample`` into the rows ``wave``, ``conf``, ``energy``; returns its
    note-table columns (labelled notes only)."""
    settings = ctx.settings["augment"]
    _, _, ir, notes = window_notes(ctx, sample, timbres)
    freqs = label_frequencies(notes, ctx.window, ctx.sample_rate)
    wave[:] = render_notes(ctx, notes, ir)
    if ir is None:
        labels = label_dry(ctx, notes, freqs, conf, energy)
    else:
        labels = label_room(ctx, notes, freqs, ir, conf, energy)
    apply_peak_limit(wave, PEAK_LIMIT)
    aug.apply_gain_and_noise(wave, settings, ctx.key, sample)
    apply_peak_limit(wave, PEAK_LIMIT)
    keep = labels.labelled[:notes.count]
    return {
        "note_freq": freqs[keep], "note_velocity": notes.velocity[keep],
        "note_timbre": notes.timbre[keep], "note_onset": notes.onset[keep],
        "note_offset": labels.offset[keep], "note_class": labels.classes[:notes.count][keep],
        "note_weight": labels.weights[:notes.count][keep],
        "note_energy_share": labels.shares[:notes.count][keep],
        "note_detune_cents": 1200.0 * np.log2(freqs[keep] / notes.nominal[keep]),
        "note_vibrato_cents": notes.draws.vib_depth[keep],
    }


def generate_music_samples(spec: dict, samples, timbres, *, out=None,
                           corpus: MusicCorpus | None = None):
    """Samples ``samples`` of a midi_render dataset as a ``ShardData`` (row ``r`` = sample
    ``samples[r]``; ``out`` as in ``generate.generate_samples``); ``corpus`` defaults to the
    file at :func:`notes_path`."""
    samples = np.ascontiguousarray(samples, dtype=np.int64).reshape(-1)
    corpus = load_corpus(notes_path(spec)) if corpus is None else corpus
    ctx = music_context(spec, corpus, len(timbres))
    waves, confs, energies = output_arrays(out, len(samples), ctx.window,
                                           int(spec["bins"]["n_bins"]))
    dtypes = {**NOTE_DTYPES, **OPTIONAL_NOTE_DTYPES}
    columns = {k: [np.zeros(0, dt)] for k, dt in dtypes.items()}
    for row, sample in enumerate(samples):
        table = render_sample(ctx, int(sample), timbres, waves[row], confs[row], energies[row])
        table["note_sample"] = np.full(len(table["note_freq"]), row)
        for k in dtypes:
            columns[k].append(table[k])
    notes = {k: np.concatenate(columns[k]).astype(dt) for k, dt in dtypes.items()}
    return ShardData(waves, confs, energies, notes)


def generate_music_range(spec: dict, start: int, count: int, timbres,
                         corpus: MusicCorpus | None = None):
    """Samples ``start .. start+count-1`` of a midi_render dataset."""
    return generate_music_samples(spec, np.arange(start, start + count), timbres, corpus=corpus)


# --------------------------------------------------------------------------- validation


