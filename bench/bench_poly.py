"""Frame precision / recall / F1 of ``notewise predict`` on polyphonic validation clips.

    .venv/bin/python bench/bench_poly.py [--checkpoint MODEL] [--pieces 16]
        [--validation-soundfont SF2 --validation-dir DIR] [--sustain LOW ...]

The poly clips of the ``--pieces`` val-split pieces after the real-instrument evaluation's
(``bench_rpa.validation_clips``, rendered once into ``--validation-dir``) through the training
SoundFont (TimGM6mb) or ``--validation-soundfont`` (one no training set and not the test uses),
scored as the evaluation scores its clips (``mir_eval.multipitch``, 10 ms, 50 cents, pooled per
instrument). Settings are chosen here, never on the test. ``--sustain LOW``: also with frame
hysteresis, a detection kept down to confidence ``LOW`` when its run of one pitch in consecutive
frames reaches the decoding threshold.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench_rpa import validation_clips
from notewise.pitch.inference import Predictor
from notewise.pitch.notes import midi_pitch
from notewise.pitch.predict import predict_frames, read_audio
from notewise.pitch.real_eval import on_frame_grid, on_reference_grid, pooled_scores, read_frames
from notewise.pitch.release import release_checkpoint


def sustained(frames: pd.DataFrame, threshold: float, low: float) -> pd.DataFrame:
    """The rows at or above ``low`` whose run of one MIDI pitch in consecutive frames has a row
    at or above ``threshold``."""
    frames = frames[frames["confidence"] >= low]
    step = np.rint(frames["time"].to_numpy() / 0.01).astype(np.int64)
    order = np.lexsort((step, midi_pitch(frames["f0_hz"])))
    pitch, step = midi_pitch(frames["f0_hz"])[order], step[order]
    run = np.cumsum(np.r_[True, (pitch[1:] != pitch[:-1]) | (step[1:] != step[:-1] + 1)])
    strong = pd.Series(frames["confidence"].to_numpy()[order] >= threshold).groupby(run)
    return frames.iloc[order[strong.transform("max").to_numpy()]]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="default: the released model")
    parser.add_argument("--pieces", type=int, default=16, help="validation pieces")
    parser.add_argument("--notes", default="results/real_eval/notes.npz")
    parser.add_argument("--validation-dir", default="results/real_eval/validation_poly")
    parser.add_argument("--validation-soundfont")
    parser.add_argument("--sustain", type=float, nargs="*", default=[])
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    audio = validation_clips(Path(args.notes), Path(args.validation_dir), args.pieces,
                             args.validation_soundfont, texture="poly")
    predictor = Predictor.load(args.checkpoint or release_checkpoint(), device="cpu")
    threshold = predictor.threshold
    predictor.threshold = min([threshold, *args.sustain])
    variants = {"threshold": lambda f: f[f["confidence"] >= threshold],
                **{f"sustain {low:g}": (lambda f, low=low: sustained(f, threshold, low))
                   for low in args.sustain}}
    pairs = {name: {} for name in variants}
    manifest = json.loads((audio / "manifest.json").read_text())
    for name, clip in manifest["clips"].items():
        ref_times, ref = read_frames(audio / f"{name}.ref.txt")
        frames = predict_frames(predictor, read_audio(audio / f"{name}.wav", 44100), 441)
        for variant, pick in variants.items():
            est = on_reference_grid(ref_times, *on_frame_grid(pick(frames)))
            for key in (clip["instrument"], "all"):
                pairs[variant].setdefault(key, []).append((ref, est))
    result = {v: {k: pooled_scores(p) for k, p in sorted(per.items(), key=lambda kv: (
        kv[0] == "all", kv[0]))} for v, per in pairs.items()}
    print(f"poly frames P / R / F1 ({audio}, {len(manifest['clips'])} clips)")
    for variant, per in result.items():
        print(f"  {variant}: " + "  ".join(f"{k} {s['precision']:.3f} / {s['recall']:.3f} /"
                                           f" {s['f1']:.4f}" for k, s in per.items()))
    return result


if __name__ == "__main__":
    main()
