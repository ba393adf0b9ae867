"""Mono raw pitch accuracy of ``notewise predict`` on the real-instrument evaluation's clips.

    .venv/bin/python bench/bench_rpa.py [--audio-dir results/real_eval/audio] [--checkpoint MODEL]

For each mono clip (the top voice of a held-out piece through the held-out SoundFont), the most
confident note of each 10 ms frame against the reference melody: the share of voiced reference
frames it names within 50 cents (``mir_eval.melody``'s raw pitch accuracy, with an unvoiced
estimate counting as a miss), per instrument and pooled over frames. Default model: the released
one, at predict's defaults.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from notewise.pitch.inference import Predictor
from notewise.pitch.predict import predict_frames, read_audio
from notewise.pitch.real_eval import read_frames
from notewise.pitch.release import release_checkpoint


def clip_rpa(predictor: Predictor, wav: Path, ref_file: Path, hop: int = 441) -> tuple[int, int]:
    """(correct, voiced) reference frames of one mono clip."""
    _, ref = read_frames(ref_file)
    melody = np.array([f[0] if len(f) else 0.0 for f in ref])
    frames = predict_frames(predictor, read_audio(wav, predictor.model.cfg.sample_rate), hop)
    best = frames.sort_values("confidence").groupby("time").tail(1)
    est = np.zeros(len(melody))
    rows = np.rint(best["time"].to_numpy() * predictor.model.cfg.sample_rate / hop).astype(int)
    keep = rows < len(melody)
    est[rows[keep]] = best["f0_hz"].to_numpy()[keep]
    voiced = melody > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        cents = np.abs(1200 * np.log2(est / np.where(voiced, melody, 1.0)))
    return int((voiced & (est > 0) & (cents <= 50)).sum()), int(voiced.sum())


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio-dir", default="results/real_eval/audio")
    parser.add_argument("--checkpoint", help="default: the released model")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    audio = Path(args.audio_dir)
    manifest = json.loads((audio / "manifest.json").read_text())
    predictor = Predictor.load(args.checkpoint or release_checkpoint(), device="cpu")
    counts: dict[str, np.ndarray] = {}
    for name, clip in manifest["clips"].items():
        if clip.get("texture", name.rsplit("_", 1)[-1]) != "mono":
            continue
        got = clip_rpa(predictor, audio / f"{name}.wav", audio / f"{name}.ref.txt")
        counts[clip["instrument"]] = counts.get(clip["instrument"], np.zeros(2, int)) + got
    result = {k: c[0] / c[1] for k, c in sorted(counts.items())}
    total = sum(counts.values())
    result["all"] = total[0] / total[1]
    for key, value in result.items():
        print(f"mono raw pitch accuracy {key:>8}: {value:.3f}")
    return result


if __name__ == "__main__":
    main()
