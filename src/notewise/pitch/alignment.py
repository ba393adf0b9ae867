"""Where in a window its notes are: the time a window's prediction should be stamped at.

By the SPEC's label rules (section 2) a window's full-confidence notes (weight 1.0) are those
still sounding at its end: classes 2 and 4 (``offset >= window``); notes that stop inside the
window (classes 1 and 3) are labelled at most 0.3. So a model trained on these labels answers
"what sounds at the window's end", yet a window is a 93 ms span, and where a prediction is
stamped in it decides which reference frame it is scored against. Two measurements, each a
table of precision / recall / F1 against the stamp position ``p`` (a fraction of the window:
0 its first sample, 0.5 its centre, 1.0 the sample after its last):

* :func:`label_truth`: the labels themselves taken as predictions -- each window's class 2/4
  notes against the notes sounding at ``start + p * window`` (by note identity, or
  ``mir_eval.multipitch``'s 50-cent matching treating each window as one frame). Notes come from
  the music-driven windows of ``notewise.music.render`` (:func:`music_label_notes`), re-drawn with
  the dataset's own functions, so the key-release time of every note is known beside the
  labelled offset (which includes a room tail where the window has one).
* :func:`stamp_scores`: a model's decoded notes on windows every ``hop`` samples of rendered
  music (:func:`render_music_clip`), each window's notes stamped at ``start + p * window`` and
  scored with ``mir_eval.multipitch`` (10 ms frames, 50 cents) against the notes whose key is
  down at each frame, pooled over clips; :func:`best_stamp` is the ``p`` of the highest F1.

``bench/bench_stamp.py`` prints both tables; ``predict``'s ``stamp`` setting
(``pitch_model.decode.stamp``) is the value chosen there on validation music.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

FRAME_S = 0.01
#: The default grid of stamp positions (fractions of the window): 33 points, 1/32 apart.
POSITIONS = np.linspace(0.0, 1.0, 33)
#: Note classes labelled with full confidence (SPEC section 2: still sounding at the window end).
FULL_CLASSES = (2, 4)


def _prf(tp: float, n_est: float, n_ref: float) -> tuple[float, float, float]:
    precision = tp / n_est if n_est else float("nan")
    recall = tp / n_ref if n_ref else float("nan")
    f1 = 2 * tp / (n_est + n_ref) if n_est + n_ref else float("nan")
    return precision, recall, f1


# --------------------------------------------------------------------------- label truth


@dataclass
class LabelNotes:
    """The labelled notes of a set of windows, one entry per note (window-relative samples)."""

    window: np.ndarray       # int64: which window
    freq: np.ndarray         # float64: the label's f0 (Hz)
    note_class: np.ndarray   # int64: 1-4
    onset: np.ndarray        # int64
    offset: np.ndarray       # int64: the labelled offset (key release, plus the room tail)
    key_offset: np.ndarray   # int64: key release (the score's note-off)
    n_windows: int
    window_size: int

    def full(self) -> np.ndarray:
        """Mask of the full-confidence labels (classes 2 and 4)."""
        return np.isin(self.note_class, FULL_CLASSES)

    def sounding(self, p: float, key: bool = False) -> np.ndarray:
        """Mask of the notes sounding at sample ``p * window_size`` of their window."""
        t = p * self.window_size
        offset = self.key_offset if key else self.offset
        return (self.onset <= t) & (t < offset)


def label_notes_from_table(table: dict, window_size: int, n_windows: int) -> LabelNotes:
    """A shard's note table (``note_sample``, ``note_freq``, ``note_class``, ``note_onset``,
    ``note_offset``) as :class:`LabelNotes` (key release unknown: taken as the labelled offset)."""
    offset = np.asarray(table["note_offset"], np.int64)
    return LabelNotes(np.asarray(table["note_sample"], np.int64),
                      np.asarray(table["note_freq"], np.float64),
                      np.asarray(table["note_class"], np.int64),
                      np.asarray(table["note_onset"], np.int64), offset, offset.copy(),
                      int(n_windows), int(window_size))


def music_label_notes(spec: dict, corpus, timbres, samples, exclude_pieces=()) -> LabelNotes:
    """The labelled notes of samples ``samples`` of a ``midi_render`` dataset (``spec`` as the
    generator takes it, e.g. a dataset's ``meta.json`` ``generation``), drawn and labelled by
    ``notewise.music.render``'s own functions (no audio is rendered); windows cut from a piece
    named in ``exclude_pieces`` are left out (``n_windows`` counts those kept)."""
    from notewise.music.render import label_dry, label_frequencies, label_room, music_context, \
        window_notes

    ctx = music_context(spec, corpus, len(timbres))
    excluded = {int(i) for i, name in enumerate(corpus.names) if str(name) in set(exclude_pieces)}
    n_bins = int(spec["bins"]["n_bins"])
    columns = {k: [] for k in ("window", "freq", "note_class", "onset", "offset", "key_offset")}
    kept = 0
    for sample in samples:
        piece, _, ir, notes = window_notes(ctx, int(sample), timbres)
        if piece in excluded:
            continue
        freqs = label_frequencies(notes, ctx.window, ctx.sample_rate)
        conf, energy = np.zeros(n_bins, np.float32), np.zeros(n_bins, np.float32)
        labels = (label_dry(ctx, notes, freqs, conf, energy) if ir is None
                  else label_room(ctx, notes, freqs, ir, conf, energy))
        keep = labels.labelled[:notes.count]
        columns["window"].append(np.full(int(keep.sum()), kept))
        columns["freq"].append(freqs[keep])
        columns["note_class"].append(labels.classes[:notes.count][keep])
        columns["onset"].append(notes.onset[keep])
        columns["offset"].append(np.asarray(labels.offset)[keep])
        columns["key_offset"].append(notes.offset[keep])
        kept += 1
    dtypes = {"freq": np.float64}
    out = {k: (np.concatenate(v) if v else np.zeros(0)).astype(dtypes.get(k, np.int64))
           for k, v in columns.items()}
    return LabelNotes(**out, n_windows=kept, window_size=ctx.window)


def label_truth(notes: LabelNotes, positions=POSITIONS, key: bool = False) -> pd.DataFrame:
    """Per stamp position ``p``: the full-confidence labels (classes 2/4) of every window as
    predictions of the notes sounding at ``p * window`` (``key``: whose key is down there; else
    as labelled, room tail included). Columns: ``p``, ``labels``, ``sounding``, ``precision``,
    ``recall``, ``f1`` by note identity, and ``mp_precision``, ``mp_recall``, ``mp_f1`` by
    ``mir_eval.multipitch`` (50 cents, each window one frame, pooled)."""
    from .evaluate import multipitch_scores, split_by_window

    full = notes.full()
    est = split_by_window(notes.window[full], notes.freq[full], notes.n_windows)
    rows = []
    for p in np.asarray(positions, np.float64):
        sounding = notes.sounding(p, key)
        precision, recall, f1 = _prf(float((full & sounding).sum()), float(full.sum()),
                                     float(sounding.sum()))
        ref = split_by_window(notes.window[sounding], notes.freq[sounding], notes.n_windows)
        mp = multipitch_scores(ref, est)
        rows.append({"p": float(p), "labels": int(full.sum()), "sounding": int(sounding.sum()),
                     "precision": precision, "recall": recall, "f1": f1,
                     "mp_precision": float(mp["precision"]), "mp_recall": float(mp["recall"]),
                     "mp_f1": float(mp["f_measure"])})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- rendered music


@dataclass
class MusicClip:
    """A rendered clip of a piece and its notes (seconds from the clip start)."""

    name: str
    audio: np.ndarray        # float32, peak <= 0.9
    sample_rate: int
    start: np.ndarray        # float64, key down
    end: np.ndarray          # float64, key up (the dry synthesis stops there)
    freq: np.ndarray         # float64, the rendered f0 (MIDI pitch + detune)

    def reference_frames(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """``mir_eval`` multipitch reference: every 10 ms, the f0s whose key is down."""
        times = np.arange(int(len(self.audio) / self.sample_rate / FRAME_S)) * FRAME_S
        t = times[:, None]
        active = (self.start[None, :] <= t + 1e-9) & (t < self.end[None, :])
        return times, [np.sort(self.freq[row]) for row in active]


def render_music_clip(spec: dict, corpus, piece: int, timbres, clip_s: float = 10.0,
                      texture: str = "poly", chunk: int = 44100,
                      augment: int | None = None) -> MusicClip:
    """``clip_s`` seconds of ``piece`` from its first note, rendered with the synthesis of
    ``midi_render`` dataset ``spec``: its timbre per track and its per-note draws (detune,
    vibrato, timbre mixes, partial phases), i.e. the performance its windows are cut from,
    rendered in ``chunk``-sample pieces (each note is the same whatever window cuts it).
    ``texture``: ``poly`` (every voice) or ``mono`` (the highest track alone, as
    ``real_eval.clip_notes``). Dry unless ``augment`` is a draw index: then the clip gets the
    dataset's window-level augmentations as its window number ``augment`` would (a room with the
    room probability, then gain and noise), drawn once for the whole clip."""
    from notewise.music import augment as aug
    from notewise.music.render import WindowNotes, music_context, render_dry, sounding_notes
    from notewise.synth.oscillator import PEAK_LIMIT, apply_peak_limit

    sr = int(spec["audio"]["sample_rate"])
    chunk_spec = {**spec, "audio": {**spec["audio"], "window": int(chunk)}}
    ctx = music_context(chunk_spec, corpus, len(timbres))
    a, b = int(corpus.piece_start[piece]), int(corpus.piece_start[piece + 1])
    keep = np.ones(b - a, bool)
    if texture == "mono":
        track, pitch = corpus.track[a:b], corpus.pitch[a:b]
        tracks = np.unique(track)
        keep = track == tracks[np.argmax([pitch[track == t].mean() for t in tracks])]
    elif texture != "poly":
        raise ValueError(f"texture must be mono or poly, not {texture!r}")
    chosen = np.zeros(len(ctx.start), bool)
    chosen[a:b] = keep
    origin = int(ctx.start[a:b][keep].min())
    length = int(round(clip_s * sr))
    audio = np.zeros(length, np.float32)
    for pos in range(0, length, chunk):
        idx = sounding_notes(ctx, piece, origin + pos)
        idx = idx[chosen[idx] & (ctx.start[idx] < origin + length)]
        if len(idx):
            notes = WindowNotes(ctx, piece, origin + pos, idx, timbres)
            part = render_dry(notes, chunk, 0, float(sr))
            audio[pos:pos + chunk] = part[:length - pos]
    if augment is not None:
        settings = ctx.settings["augment"]
        ir = aug.room_draw(settings, ctx.key, int(augment), float(sr))
        if ir is not None and length >= len(ir):
            wet = aug.room_window(np.pad(audio.astype(np.float64), (len(ir) - 1, 0)), ir)
            audio = wet.astype(np.float32)
        apply_peak_limit(audio, PEAK_LIMIT)
        aug.apply_gain_and_noise(audio, settings, ctx.key, int(augment))
    peak = float(np.abs(audio).max()) if length else 0.0
    if peak > 0.9:
        audio *= np.float32(0.9 / peak)
    idx = np.flatnonzero(chosen)
    idx = idx[ctx.start[idx] < origin + length]
    whole = WindowNotes(ctx, piece, origin, idx, timbres)  # the same per-note draws
    name = f"{corpus.names[piece]}:{texture}" + ("" if augment is None else ":augmented")
    return MusicClip(name, audio, sr, (ctx.start[idx] - origin) / sr,
                     np.minimum(ctx.end[idx] - origin, length) / sr, whole.freq.copy())


def soundfont_clip(renderer, sample_rate: int, corpus, piece: int, program: int,
                   clip_s: float = 10.0, texture: str = "poly", tail_s: float = 2.0) -> MusicClip:
    """``clip_s`` seconds of ``piece`` through a SoundFont ``renderer`` (a ``NoteRenderer`` at
    ``sample_rate``), as the real-instrument evaluation renders its clips (``clip_notes``,
    ``render_clip``): release tails ring past the key releases, where the reference ends."""
    from notewise.synth.bins import midi_to_hz

    from .real_eval import clip_notes, render_clip

    notes = clip_notes(corpus, piece, texture, clip_s)
    sr = int(sample_rate)
    audio = render_clip(renderer, notes, program, clip_s, sr, tail_s)
    name = f"{corpus.names[piece]}:{texture}:program{program}"
    return MusicClip(name, audio, sr, notes["start"], notes["end"],
                     np.asarray(midi_to_hz(notes["pitch"]), np.float64))


# --------------------------------------------------------------------------- model vs stamp


@dataclass
class ClipEstimates:
    """A model's decoded notes of windows starting every ``hop`` samples from ``first``."""

    starts: np.ndarray       # int64 [n]: first sample of each window (may be negative: zeros)
    window: np.ndarray       # int64: which window each note is of
    freq: np.ndarray         # float64 Hz
    ref_times: np.ndarray
    ref_freqs: list
    window_size: int
    sample_rate: int


def clip_estimates(predictor, clip: MusicClip, hop: int = 147) -> ClipEstimates:
    """Decode windows of ``clip`` starting every ``hop`` samples, from a window ending at its
    first sample to one starting at its last (zero padding outside); a fine ``hop`` keeps the
    stamping of :func:`stamp_scores` within ``hop / 2`` samples of exact."""
    import torch

    w = int(predictor.model.cfg.window)
    padded = np.pad(clip.audio.astype(np.float32), (w, w))
    windows = torch.from_numpy(padded).unfold(0, w, hop)
    notes = predictor.notes(windows)
    starts = np.arange(windows.shape[0], dtype=np.int64) * hop - w
    times, freqs = clip.reference_frames()
    return ClipEstimates(starts, notes.window.astype(np.int64), notes.f0_hz.astype(np.float64),
                         times, freqs, w, clip.sample_rate)


def stamped_frames(est: ClipEstimates, p: float) -> list[np.ndarray]:
    """The estimates on the reference's 10 ms frames when window ``k`` is stamped at
    ``starts[k] + p * window``: each frame takes the window stamped nearest to it."""
    from .evaluate import split_by_window

    stamps = (est.starts + p * est.window_size) / est.sample_rate
    per_window = split_by_window(est.window, est.freq, len(est.starts))
    nearest = np.clip(np.searchsorted(stamps, est.ref_times), 1, len(stamps) - 1)
    nearest -= (est.ref_times - stamps[nearest - 1]) < (stamps[nearest] - est.ref_times)
    return [per_window[k] for k in nearest]


def stamp_scores(estimates, positions=POSITIONS) -> pd.DataFrame:
    """Per stamp position ``p``: ``mir_eval.multipitch`` precision, recall, F1 and accuracy
    (10 ms frames, 50 cents) over the frames of every clip of ``estimates`` (pooled)."""
    from .real_eval import pooled_scores

    rows = []
    for p in np.asarray(positions, np.float64):
        pairs = [(e.ref_freqs, [_in_range(f) for f in stamped_frames(e, p)]) for e in estimates]
        pairs = [([_in_range(f) for f in r], s) for r, s in pairs]
        rows.append({"p": float(p), **pooled_scores(pairs)})
    return pd.DataFrame(rows)


def _in_range(freqs) -> np.ndarray:
    import mir_eval

    mp = mir_eval.multipitch
    return np.clip(np.asarray(freqs, np.float64), mp.MIN_FREQ, mp.MAX_FREQ)


def best_stamp(table: pd.DataFrame, column: str = "f1") -> float:
    """The ``p`` of the highest ``column`` (the first, if several tie)."""
    return float(table["p"].to_numpy()[int(np.nanargmax(table[column].to_numpy()))])
