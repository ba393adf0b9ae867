"""Mono raw pitch accuracy of ``notewise predict`` on the real-instrument evaluation's clips.

    .venv/bin/python bench/bench_rpa.py [--audio-dir results/real_eval/audio] [--checkpoint MODEL]
    .venv/bin/python bench/bench_rpa.py --validation [--pieces 16] [--checkpoint MODEL]
        [--validation-soundfont SF2 --validation-dir DIR] [--pick PICK] [--intervals]
        [--no-peer] [--partials ...] [--melody-share S] [--melody-energy E]
        [--partial-onset SECONDS] [--partial-end SECONDS] [--refine-cents CENTS]
        [--attack-search SECONDS] [--attack-strength RATIO] [--reattack SECONDS]
        [--reattack-ratio RATIO] [--reattack-rise SHARE] [--melody-hold 0|1]
        [--flux-frame SECONDS] [--flux-steps N] [--flux-ahead FRACTION]
        [--changes] [--onsets] [--shift FRAMES ...]

For each mono clip (the top voice of a held-out piece through the held-out SoundFont), the
melody note ``--pick`` chooses in each 10 ms frame against the reference melody: the share of
voiced reference frames it names within 50 cents (``mir_eval.melody``'s raw pitch accuracy, with
an unvoiced estimate counting as a miss), per instrument and pooled over frames. Default model:
the released one, at predict's defaults. Beside it, in the same run on the same clips where
basic-pitch is installed: basic-pitch's most probable key per frame of its note posteriorgram
(voiced where above its frame threshold, 0.3).

``--pick``: how notewise's note of a frame is chosen (``PICKS``; default ``latest``, the best on
the validation clips; ``any``: the share of frames where some detected note is right, the bound
for any ranking). ``--validation``: the same on clips to choose settings on, never the test's:
the ``--pieces`` val-split pieces after the evaluation's (``real_eval.pieces``) through the
training SoundFont (TimGM6mb), the same instruments but those that sound an octave below their
key there (its church organ), rendered once into ``--validation-dir`` from the evaluation's
notes (``results/real_eval/notes.npz``).
"""
from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import numpy as np
import torch

from notewise.pitch.inference import Predictor
from notewise.pitch import notes, onsets
from notewise.pitch.peers import FRAME_S, BasicPitch, basic_pitch_problem, posteriorgram_melody
from notewise.pitch.predict import predict_frames, read_audio
from notewise.pitch.real_eval import (first_frequency, melody_hits, on_frame_grid,
                                      on_reference_grid, read_frames)
from notewise.pitch.release import release_checkpoint


#: How a frame's melody note is picked from its detected notes (``--pick``): by confidence, by
#: energy share, the lowest, or ``notes.melody`` (``latest``, the default, chosen on validation).
PICKS = ("confidence", "energy", "lowest", "latest")
LOWEST_SHARE = 0.9  # "lowest": the lowest note within this share of the frame's top confidence
#: The latest pick's constants an option overrides for one run (``--melody-share`` ...), with
#: what the option's extreme means.
PICK_CONSTANTS = {"MELODY_SHARE": "0: every sounding note",
                  "MELODY_ENERGY": "0: no energy condition",
                  "PARTIAL_ONSET_S": "inf with --partial-end inf: a partial whenever the"
                                     " interval fits",
                  "PARTIAL_END_S": "=-inf: the onset condition alone",
                  "ATTACK_SEARCH_S": "0: a note's attack is its first frame",
                  "ATTACK_STRENGTH": "inf: no note waits for its attack",
                  "REATTACK_S": "",
                  "REATTACK_RATIO": "inf: no re-attack",
                  "REATTACK_RISE": "",
                  "MELODY_HOLD": "0: a frame whose notes wait for their attack has none"}

#: The onset strength's constants an option overrides for one run (``--flux-ahead`` ...).
ONSET_CONSTANTS = {"FLUX_FRAME_S": float, "FLUX_STEPS": int, "FLUX_AHEAD": float}


def pick_notes(frames, pick: str, frame_s: float):
    """One row per frame time: the note ``pick`` chooses (``PICKS``)."""
    if pick == "latest":
        return notes.melody(frames, frame_s)
    if pick == "lowest":
        top = frames.groupby("time")["confidence"].transform("max")
        frames = frames[frames["confidence"] >= LOWEST_SHARE * top]
        return frames.sort_values("f0_hz").groupby("time").head(1)
    key = {"confidence": "confidence", "energy": "energy_share"}[pick]
    return frames.sort_values(key).groupby("time").tail(1)


def notewise_melody(frames, n_frames: int, pick: str = "confidence",
                    melody: np.ndarray | None = None) -> np.ndarray:
    """The f0 of the note ``pick`` chooses in each 10 ms frame (0: none) of a clip's frame table
    (``predict_frames`` at the 10 ms hop). ``pick="any"`` with the reference ``melody``: its f0
    wherever any detected note is within 50 cents of it (an upper bound on what a ranking of
    the detected notes can reach)."""
    rows = np.rint(frames["time"].to_numpy() / FRAME_S).astype(int)
    if pick == "any":
        inside = rows < n_frames
        rows, f0 = rows[inside], frames["f0_hz"].to_numpy()[inside]
        hit = melody_hits(melody[rows], f0)
        return on_frames(rows[hit], melody[rows[hit]], n_frames)
    best = pick_notes(frames, pick, FRAME_S)
    return first_frequency(on_reference_grid(np.arange(n_frames) * FRAME_S, *on_frame_grid(best)))


def basic_pitch_melody(model, wav: Path, n_frames: int) -> np.ndarray:
    """basic-pitch's most probable key of each frame of its note posteriorgram where it is
    above its frame threshold (``peers.posteriorgram_melody``; its frames are 11.6 ms), each
    10 ms frame taking the nearest of them (``real_eval.on_reference_grid``, mir_eval's rule;
    0: none)."""
    times, freqs = posteriorgram_melody(model.run(wav)[0]["note"])
    return first_frequency(on_reference_grid(np.arange(n_frames) * FRAME_S, times, freqs))


def on_frames(rows: np.ndarray, f0: np.ndarray, n_frames: int) -> np.ndarray:
    est = np.zeros(n_frames)
    keep = (rows >= 0) & (rows < n_frames)
    est[rows[keep]] = f0[keep]
    return est


def rpa_counts(melody: np.ndarray, est: np.ndarray) -> np.ndarray:
    """(correct, voiced) reference frames."""
    return np.array([melody_hits(melody, est).sum(), (melody > 0).sum()])


def validation_clips(notes: Path, out_dir: Path, pieces: int, soundfont=None,
                     texture: str = "mono") -> Path:
    """Render (once) the validation clips of the module docstring into ``out_dir``, through
    ``soundfont`` (default: the training SoundFont); ``texture`` mono (or poly,
    ``bench/bench_poly.py``)."""
    from notewise.music.checks import default_soundfont_path
    from notewise.music.soundfont import NoteRenderer
    from notewise.pitch.real_eval import (clip_names, held_out_soundfont, instruments_at_key,
                                          real_eval_settings, render_clips)

    if not (out_dir / "manifest.json").exists():
        soundfont = Path(soundfont or default_soundfont_path())
        settings = real_eval_settings({})
        test_font = held_out_soundfont(settings)
        if test_font is not None and soundfont.resolve() == Path(test_font).resolve():
            raise SystemExit(f"{soundfont} is the test's SoundFont: validate on another one")
        renderer = NoteRenderer(soundfont, 44100)
        settings["instruments"] = instruments_at_key(renderer, settings["instruments"])
        names = clip_names({**settings, "pieces": pieces}, first_piece=settings["pieces"],
                           textures=(texture,))
        render_clips(notes, soundfont, settings, out_dir, names=names)
    return out_dir


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio-dir", default="results/real_eval/audio")
    parser.add_argument("--checkpoint", help="default: the released model")
    parser.add_argument("--validation", action="store_true",
                        help="score the validation clips instead (module docstring)")
    parser.add_argument("--pieces", type=int, default=16, help="validation pieces")
    parser.add_argument("--notes", default="results/real_eval/notes.npz")
    parser.add_argument("--validation-dir", default="results/real_eval/validation_audio")
    parser.add_argument("--validation-soundfont",
                        help="render the validation clips through this SoundFont instead of the"
                             " training one (one no training set and not the test uses)")
    parser.add_argument("--pick", choices=PICKS + ("any",), default="latest",
                        help="how notewise's melody note is picked (PICKS; any: the upper bound)")
    parser.add_argument("--partials", type=int, nargs="*",
                        help="the latest pick's PARTIAL_INTERVALS for this run (an ablation;"
                             " default notes.PARTIAL_INTERVALS)")
    for constant, note in PICK_CONSTANTS.items():
        parser.add_argument("--" + constant.lower().replace("_", "-").removesuffix("-s"),
                            type=float, dest=constant,
                            help=f"the latest pick's {constant} for this run (default notes'"
                                 f" {getattr(notes, constant)}{'; ' if note else ''}{note})")
    for constant, kind in ONSET_CONSTANTS.items():
        parser.add_argument("--" + constant.lower().replace("_", "-").removesuffix("-s"),
                            type=kind, dest=constant,
                            help=f"onsets.{constant} for this run (default"
                                 f" {getattr(onsets, constant)})")
    parser.add_argument("--refine-cents", type=float,
                        help="predict's pitch_model.decode.refine_cents for this run (default:"
                             " the schema's; 0: the model's f0 as it is)")
    parser.add_argument("--no-peer", action="store_true",
                        help="notewise alone (basic-pitch's figures do not depend on the pick)")
    parser.add_argument("--intervals", action="store_true",
                        help="also print where notewise's misses lie, per instrument")
    parser.add_argument("--changes", action="store_true",
                        help="also print notewise's misses by where the melody changes note:"
                             " the previous / next / another note / none, 0-4, 5-9 ... frames"
                             " after the last change or before the next")
    parser.add_argument("--onsets", action="store_true",
                        help="also score the note events' onsets against the melody's notes"
                             " (mir_eval.transcription, 50 ms, no offsets), with the onset"
                             " strength and without it (each note at its first frame)")
    parser.add_argument("--shift", type=int, nargs="+", default=[],
                        help="also notewise's accuracy with its melody shifted by these frames"
                             " (10 ms; + later)")
    args = parser.parse_args(argv)
    if args.partials is not None:
        notes.PARTIAL_INTERVALS = tuple(args.partials)
    for constant in PICK_CONSTANTS:
        if getattr(args, constant) is not None:
            setattr(notes, constant, getattr(args, constant))
    for constant in ONSET_CONSTANTS:
        if getattr(args, constant) is not None:
            setattr(onsets, constant, getattr(args, constant))
    torch.set_num_threads(1)
    audio = Path(args.audio_dir)
    if args.validation:
        audio = validation_clips(Path(args.notes), Path(args.validation_dir), args.pieces,
                                 args.validation_soundfont)
    manifest = json.loads((audio / "manifest.json").read_text())
    predictor = Predictor.load(args.checkpoint or release_checkpoint(), device="cpu",
                               refine_cents=args.refine_cents)

    @functools.lru_cache(maxsize=1)  # the clip's table, for its melody and its onsets
    def frames_of(wav):
        return predict_frames(predictor, read_audio(wav, predictor.model.cfg.sample_rate),
                              round(FRAME_S * predictor.model.cfg.sample_rate))

    systems = {"notewise": lambda wav, ref: notewise_melody(frames_of(wav), len(ref),
                                                            pick=args.pick, melody=ref)}
    if args.no_peer:
        pass
    elif basic_pitch_problem() is None:
        peer = BasicPitch()
        systems["basic_pitch"] = lambda wav, ref: basic_pitch_melody(peer, wav, len(ref))
    else:
        print(basic_pitch_problem())
    counts = {system: {} for system in systems}
    tallies = {"intervals": {}, "changes": {}}  # (instrument, label of a miss) -> frames
    shifted = {}  # (instrument, shift) -> (correct, voiced)
    for name, clip in manifest["clips"].items():
        if clip.get("texture", name.rsplit("_", 1)[-1]) != "mono":
            continue
        _, ref = read_frames(audio / f"{name}.ref.txt")
        melody = first_frequency(ref)
        for system, estimate in systems.items():
            est = estimate(audio / f"{name}.wav", melody)
            got = rpa_counts(melody, est)
            per = counts[system]
            per[clip["instrument"]] = per.get(clip["instrument"], 0) + got
            if system == "notewise":
                for kind, labels in (("intervals", miss_intervals), ("changes", miss_changes)):
                    for label in labels(melody, est):
                        key = (clip["instrument"], label)
                        tallies[kind][key] = tallies[kind].get(key, 0) + 1
                if args.onsets:
                    for strength in (True, False):
                        key = (clip["instrument"], strength)
                        tallies.setdefault("onsets", {}).setdefault(key, []).append(
                            onset_scores(frames_of(audio / f"{name}.wav"), melody, strength))
                for k in args.shift:
                    for key in ((clip["instrument"], k), ("all", k)):
                        shifted[key] = shifted.get(key, 0) + rpa_counts(melody, shift(est, k))
    result = {}
    for system, per in counts.items():
        per = {**dict(sorted(per.items())), "all": sum(per.values())}
        result[system] = {k: float(c[0] / c[1]) for k, c in per.items()}
    print(f"mono raw pitch accuracy ({audio}; notewise pick {args.pick}): "
          + "  ".join(systems))
    for key in result["notewise"]:
        print(f"  {key:>8}: " + "  ".join(f"{result[s][key]:.4f}" for s in systems))
    if args.intervals:
        print("notewise's misses, semitones re the melody (none: no estimate), most frames first:")
        print_tally(tallies["intervals"], 5)
    if args.changes:
        print("notewise's misses by the melody's note changes, most frames first:")
        print_tally(tallies["changes"], 8)
    if args.onsets:
        print("notewise's note onsets, per clip averaged (onset F1 at 50 ms; median onset"
              " error, ms), with the onset strength / without:")
        for instrument in sorted({i for i, _ in tallies["onsets"]}):
            print(f"  {instrument:>8}: " + "  /  ".join(
                "{:.3f} {:+.1f}".format(*np.nanmean(tallies["onsets"][(instrument, s)], axis=0))
                for s in (True, False)))
    if args.shift:
        print("notewise's accuracy, its melody shifted by k frames:")
        for instrument in sorted({i for i, _ in shifted}, key=lambda i: (i == "all", i)):
            print(f"  {instrument:>8}: " + "  ".join(
                f"{k:+d} {shifted[(instrument, k)][0] / shifted[(instrument, k)][1]:.4f}"
                for k in args.shift))
    return result


def print_tally(tally: dict, top: int) -> None:
    """Per instrument, the ``top`` most frequent labels of ``tally`` ((instrument, label) ->
    frames) with their counts."""
    for instrument in sorted({i for i, _ in tally}):
        most = sorted(((n, label) for (i, label), n in tally.items() if i == instrument),
                      key=lambda pair: pair[0], reverse=True)[:top]
        print(f"  {instrument:>8}: " + "  ".join(
            f"{'none' if label is None else label} x{n}" for n, label in most))


def onset_scores(frames, melody: np.ndarray, strength: bool = True) -> tuple[float, float]:
    """(onset F1, median onset error in ms) of ``notes.frames_to_notes`` of ``frames`` (without
    its ``onset_strength`` unless ``strength``) against the notes of the reference ``melody``
    (a note per run of one key), matched by ``mir_eval.transcription`` within 50 ms."""
    import mir_eval

    key = np.where(melody > 0, np.rint(69 + 12 * np.log2(np.where(melody > 0, melody, 1) / 440)),
                   -1)
    bounds = np.r_[0, np.flatnonzero(np.diff(key) != 0) + 1, len(key)]
    runs = [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if key[a] >= 0]
    ref_times = np.array(runs, dtype=float).reshape(-1, 2) * FRAME_S
    ref_hz = np.array([440 * 2 ** ((key[a] - 69) / 12) for a, _ in runs])
    found = notes.frames_to_notes(frames if strength else frames.drop(columns="onset_strength"),
                                  FRAME_S)
    est_times = found[["onset", "offset"]].to_numpy()
    est_hz = 440 * 2 ** ((found["pitch"].to_numpy() - 69) / 12)
    options = {"onset_tolerance": 0.05, "offset_ratio": None}
    f1 = mir_eval.transcription.precision_recall_f1_overlap(ref_times, ref_hz, est_times, est_hz,
                                                            **options)[2]
    pairs = mir_eval.transcription.match_notes(ref_times, ref_hz, est_times, est_hz, **options)
    errors = [est_times[j, 0] - ref_times[i, 0] for i, j in pairs]
    return f1, 1000 * float(np.median(errors)) if errors else float("nan")


def shift(est: np.ndarray, frames: int) -> np.ndarray:
    """``est`` ``frames`` later (earlier when negative), unvoiced where shifted in."""
    out = np.zeros_like(est)
    if frames >= 0:
        out[frames:] = est[:len(est) - frames]
    else:
        out[:frames] = est[-frames:]
    return out


def miss_changes(melody: np.ndarray, est: np.ndarray) -> list[str]:
    """For each voiced melody frame ``est`` misses: which note it names instead (the melody's
    ``previous`` or ``next`` note at the nearest change, ``other``, or ``none``) and how far the
    nearest change of the melody's key is (``after`` the last one or ``before`` the next,
    in 5-frame steps up to 20)."""
    key = np.where(melody > 0, np.rint(12 * np.log2(np.where(melody > 0, melody, 1) / 440)), -99)
    changes = np.flatnonzero(np.diff(key) != 0) + 1
    missed = np.flatnonzero((melody > 0) & ~melody_hits(melody, est))
    labels = []
    for i in missed:
        position = np.searchsorted(changes, i, side="right")
        last = changes[position - 1] if position else None
        later = changes[position:]
        after = i - last if last is not None else 99
        before = later[0] - i if len(later) else 99
        named = np.rint(12 * np.log2(est[i] / 440)) if est[i] > 0 else None
        kind = ("none" if named is None else
                "previous" if last is not None and named == key[last - 1] else
                "next" if len(later) and named == key[later[0]] else "other")
        where = f"after {min(after, 20) // 5 * 5}" if after <= before else \
            f"before {min(before, 20) // 5 * 5}"
        labels.append(f"{kind}/{where}")
    return labels


def miss_intervals(melody: np.ndarray, est: np.ndarray) -> list:
    """For each voiced melody frame ``est`` misses: the estimate's interval in whole semitones,
    or None where there is no estimate."""
    missed = (melody > 0) & ~melody_hits(melody, est)
    return [None if e <= 0 else f"{int(np.rint(12 * np.log2(e / m))):+d}"
            for m, e in zip(melody[missed], est[missed])]


if __name__ == "__main__":
    main()
