"""Where in the window a window's notes are: label truth and model F1 against the stamp position.

    .venv/bin/python bench/bench_stamp.py [--results results] [--windows 2048] [--pieces 10]
        [--clip-s 10] [--hop 147] [--checkpoint results/models/pitch/model.pth]
        [--soundfont-pieces 10] [--real-eval]

Reads a built workflow's ``results/``: the ``music_val`` dataset's generation settings and note
corpus (the Bach *val* split), the timbre library and the trained pitch model. The first
``real_eval.pieces`` pieces of the split by name are the real-instrument evaluation's test pieces:
every measurement here leaves them out.

1. **Label truth** (``notewise.pitch.alignment.label_truth``): windows ``0 .. --windows - 1`` of
   ``music_val`` (re-drawn by the dataset's own functions, so beyond its 512 built windows too),
   each window's full-confidence labels (classes 2 and 4) as predictions of the notes sounding at
   ``start + p * window``: by note identity against the labelled offsets (room tail included) and
   against the key releases, and with ``mir_eval.multipitch`` (50 cents) against the labelled
   offsets.
2. **Model vs stamp** (``stamp_scores``): ``--pieces`` pieces after the test pieces, ``--clip-s``
   seconds each, rendered with the dataset's synthesis (its timbres per track and its per-note
   detune, vibrato and timbre mixes), mono (highest track) and poly, each dry and augmented as the
   dataset's windows are (a room for half the clips, gain, noise); the model decodes windows
   every ``--hop`` samples, each stamped at ``start + p * window`` and scored with
   ``mir_eval.multipitch`` (10 ms, 50 cents) against the keys down, pooled over all the clips
   (``dry_f1``, ``aug_f1``, ``mon_f1``, ``pol_f1``: the subsets). The ``p`` of the best pooled F1
   is the measured default of ``pitch_model.decode.stamp``.
   ``--soundfont-pieces N``: the first ``N`` of those pieces also through the training
   SoundFont (TimGM6mb), once per ``real_eval`` instrument, mono and poly, rendered as the
   real-instrument clips are (``alignment.soundfont_clip``: release tails ring past the key
   releases); they join the pooled F1 (``sou_f1``: these clips, ``tim_f1``: the rest).
3. ``--real-eval``: the TEST figure, printed once the choice is made and not used for it:
   ``notewise predict`` (``write_prediction``) on every clip of ``results/real_eval/audio`` at
   stamp 0.5 and at the chosen ``p`` (or ``--test-stamps``), scored by ``real_eval.score``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from notewise.music.corpus import MusicCorpus
from notewise.synth.timbres import TimbreLibrary
from notewise.pitch.alignment import (best_stamp, clip_estimates, label_truth,
                                      music_label_notes, render_music_clip, soundfont_clip,
                                      stamp_scores)
from notewise.pitch.inference import Predictor
from notewise.pitch.real_eval import instruments_at_key, real_eval_settings

#: Draw index of a clip's window-level augmentations (room, gain, noise): past every built window.
AUGMENT_DRAWS = 10**9


def fmt(table, columns) -> str:
    head = "  ".join(f"{c:>9}" for c in columns)
    lines = [head]
    for i in range(len(table)):
        lines.append("  ".join(f"{table[c].iloc[i]:9.4f}" if table[c].dtype.kind == "f"
                               else f"{table[c].iloc[i]:>9}" for c in columns))
    return "\n".join(lines)


def test_figure(args, stamps, results: Path) -> None:
    from notewise.pitch.predict import write_prediction
    from notewise.pitch.real_eval import score

    audio_dir = results / "real_eval" / "audio"
    clips = sorted(json.loads((audio_dir / "manifest.json").read_text())["clips"])
    predictor = Predictor.load(args.checkpoint, device="cpu")
    print(f"\nTEST (real_eval, held-out pieces and SoundFont; not used for the choice):"
          f" {len(clips)} clips, notewise predict at hop 441, threshold {predictor.threshold}")
    print(f"{'stamp':>6}  {'texture':>7}  {'precision':>9}  {'recall':>9}  {'f1':>9}"
          f"  {'accuracy':>9}")
    for stamp in stamps:
        with tempfile.TemporaryDirectory() as tmp:
            for name in clips:
                write_prediction(audio_dir / f"{name}.wav", predictor, Path(tmp) / f"{name}.csv",
                                 stamp=stamp)
            table = score(audio_dir, tmp)
        for texture in ("mono", "poly", "all"):
            r = table[(table["texture"] == texture) & (table["instrument"] == "all")].iloc[0]
            print(f"{stamp:6.4f}  {texture:>7}  {r['precision']:9.4f}  {r['recall']:9.4f}"
                  f"  {r['f1']:9.4f}  {r['accuracy']:9.4f}")


def soundfont_estimates(predictor, corpus, pieces, clip_s: float, hop: int) -> dict:
    """``clip_estimates`` of ``pieces`` through the training SoundFont (TimGM6mb), one clip per
    real_eval instrument and texture, keyed ``("soundfont", texture, piece, instrument)``: a
    validation set with the release tails of sampled instruments."""
    from notewise.music.checks import default_soundfont_path
    from notewise.music.soundfont import NoteRenderer

    settings = real_eval_settings({})
    rate = int(predictor.model.cfg.sample_rate)
    renderer = NoteRenderer(default_soundfont_path(), rate)
    instruments = instruments_at_key(renderer, settings["instruments"])
    out = {}
    for piece in pieces:
        for texture in ("mono", "poly"):
            for instrument, program in instruments.items():
                clip = soundfont_clip(renderer, rate, corpus, piece, program, clip_s, texture,
                                      settings["release_tail_s"])
                out["soundfont", texture, piece, instrument] = clip_estimates(predictor, clip, hop)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results", help="a built workflow's results/")
    parser.add_argument("--dataset", default="music_val", help="a midi_render validation set")
    parser.add_argument("--windows", type=int, default=2048)
    parser.add_argument("--pieces", type=int, default=10)
    parser.add_argument("--clip-s", type=float, default=10.0)
    parser.add_argument("--hop", type=int, default=147, help="samples between decoded windows")
    parser.add_argument("--checkpoint", help="default: RESULTS/models/pitch/model.pth")
    parser.add_argument("--soundfont-pieces", type=int, default=0,
                        help="also this many val pieces after the test pieces through the"
                             " training SoundFont, per real_eval instrument, mono and poly")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--real-eval", action="store_true", help="also print the TEST figure")
    parser.add_argument("--test-stamps", type=float, nargs="*",
                        help="stamps of the TEST figure (default: 0.5 and the chosen p)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = Path(args.results)
    args.checkpoint = args.checkpoint or str(results / "models/pitch/model.pth")
    data = results / "datasets" / args.dataset
    spec = json.loads((data / "meta.json").read_text())["generation"]
    corpus = MusicCorpus.load(data / "notes.npz")
    timbres = TimbreLibrary.load(results / "timbres" / "timbres.npz")
    n_test = real_eval_settings({})["pieces"]
    test_pieces = [str(n) for n in corpus.names[:n_test]]
    print(f"{args.dataset}: {len(corpus)} pieces of {spec['settings']['corpus']}"
          f" ({spec['settings']['split']} split); left out (real_eval test pieces): {test_pieces}")

    t0 = time.perf_counter()
    notes = music_label_notes(spec, corpus, timbres, range(args.windows), test_pieces)
    labelled = label_truth(notes)
    key = label_truth(notes, key=True)
    print(f"\n1. Label truth: {notes.n_windows} windows of {args.dataset} (of {args.windows};"
          f" the rest cut from test pieces), {int(notes.full().sum())} full-confidence labels"
          f" (classes 2/4) of {len(notes.freq)} labelled notes ({time.perf_counter() - t0:.0f} s)")
    table = labelled[["p", "sounding", "precision", "recall", "f1", "mp_f1"]].copy()
    table["key_sounding"] = key["sounding"]
    for c in ("precision", "recall", "f1"):
        table[f"key_{c}"] = key[c]
    print("   precision/recall/f1: against the labelled offsets (room tail included), by note;"
          " mp_f1: the same with mir_eval.multipitch (50 cents); key_*: against key releases")
    print(fmt(table, list(table.columns)))
    for c in (1, 2, 3, 4):
        of = notes.note_class == c
        print(f"   class {c}: {int(of.sum())} notes, {int((of & notes.sounding(0.5)).sum())}"
              f" sounding at the centre, {int((of & notes.sounding(1.0, key=True)).sum())} with"
              " the key down at the end")

    t0 = time.perf_counter()
    predictor = Predictor.load(args.checkpoint, device="cpu")
    pieces = [p for p in range(n_test, len(corpus))][:args.pieces]
    estimates = {}
    for piece in pieces:
        for t, texture in enumerate(("mono", "poly")):
            for render in ("dry", "augmented"):
                draw = None if render == "dry" else AUGMENT_DRAWS + 2 * piece + t
                clip = render_music_clip(spec, corpus, piece, timbres, args.clip_s, texture,
                                         augment=draw)
                estimates[render, texture, piece] = clip_estimates(predictor, clip, args.hop)
    estimates.update(soundfont_estimates(predictor, corpus, pieces[:args.soundfont_pieces],
                                         args.clip_s, args.hop))
    everything = stamp_scores(list(estimates.values()))
    table = everything[["p", "precision", "recall", "f1", "accuracy"]].copy()
    subsets = {"dry": lambda key: key[0] == "dry", "augmented": lambda key: key[0] == "augmented",
               "mono": lambda key: key[1] == "mono", "poly": lambda key: key[1] == "poly"}
    if args.soundfont_pieces:
        subsets["soundfont"] = lambda key: key[0] == "soundfont"
        subsets["timbres"] = lambda key: key[0] != "soundfont"
    for name, chosen_by in subsets.items():
        subset = [e for key, e in estimates.items() if chosen_by(key)]
        table[f"{name[:3]}_f1"] = stamp_scores(subset)["f1"]
    chosen = best_stamp(everything)
    print(f"\n2. Model vs stamp: {args.checkpoint}, threshold {predictor.threshold}, on"
          f" {len(pieces)} pieces x mono/poly x dry/augmented x {args.clip_s:g} s of"
          f" {args.dataset}'s split, windows every {args.hop} samples, mir_eval.multipitch pooled over"
          f" {int(everything['frames'].iloc[0])} frames ({time.perf_counter() - t0:.0f} s)"
          + (f"; and the first {args.soundfont_pieces} of those pieces through the training"
             f" SoundFont per real_eval instrument, mono and poly (sou_f1; tim_f1: the rest)"
             if args.soundfont_pieces else ""))
    print(fmt(table, list(table.columns)))
    for p in sorted({0.5, 1.0, chosen}):
        r = everything[np.isclose(everything["p"], p)].iloc[0]
        print(f"   p = {p:.4f}: P {r['precision']:.4f}  R {r['recall']:.4f}  F1 {r['f1']:.4f}"
              + ("   <- best F1: the measured default of pitch_model.decode.stamp"
                 if p == chosen else ""))
    if args.real_eval:
        test_figure(args, args.test_stamps or sorted({0.5, chosen}), results)


if __name__ == "__main__":
    main()
