"""notewise next to basic-pitch on the real-instrument evaluation's files, same mir_eval settings.

    snakemake -j2 real_eval        # renders the clips, runs notewise predict on each
    .venv/bin/python bench/bench_peers.py [--audio-dir results/real_eval/audio]
        [--ours results/real_eval/notewise]

Runs basic-pitch 0.4.0 (its bundled ONNX model, offline: ``pip install --no-deps basic-pitch``
plus the ``peers`` extra) on every WAV of ``--audio-dir`` (held-out Bach pieces through a held-out
SoundFont, see ``notewise.pitch.real_eval``), in this process, and prints ``mir_eval.multipitch``
precision / recall / F1 (frame level, 10 ms, 50 cents, pooled per texture and instrument) of
notewise's ``notewise predict`` CSVs (``--ours``, written by the workflow) beside basic-pitch's
frame posteriorgram > 0.3 and its note events, plus each tool's CPU seconds per minute of audio,
both measured here on the same files (model loading included; notewise through ``write_prediction``,
the command's path, with ``--checkpoint``, the model the workflow's predictions came from), and
notewise's predict jobs' from their benchmark files (process start included) when present.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

from notewise.pitch.peers import basic_pitch_problem
from notewise.pitch.real_eval import score, side_by_side, write_peer_frames


def audio_minutes(audio_dir: Path, names) -> float:
    from scipy.io import wavfile

    total = 0.0
    for name in names:
        rate, samples = wavfile.read(audio_dir / f"{name}.wav", mmap=True)
        total += len(samples) / rate
    return total / 60.0


def predict_cpu_seconds(names, benchmarks: Path) -> float | None:
    """Sum of the predict jobs' ``cpu_time`` (Snakemake benchmark files), None if any is missing."""
    total = 0.0
    for name in names:
        path = benchmarks / f"{name}.tsv"
        if not path.exists():
            return None
        with open(path) as fh:
            total += float(next(csv.DictReader(fh, delimiter="\t"))["cpu_time"])
    return total


def notewise_cpu_seconds(wavs, checkpoint) -> float:
    """CPU seconds of ``notewise predict``'s path on ``wavs``, loading the model included."""
    from notewise.pitch.inference import Predictor
    from notewise.pitch.predict import write_prediction

    with tempfile.TemporaryDirectory() as out:
        start = time.process_time()
        predictor = Predictor.load(checkpoint, device="cpu")
        for wav in wavs:
            write_prediction(wav, predictor, Path(out) / f"{wav.stem}.csv")
        return time.process_time() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio-dir", default="results/real_eval/audio")
    parser.add_argument("--ours", default="results/real_eval/notewise")
    parser.add_argument("--benchmarks", default="results/benchmarks/real_eval_predict")
    parser.add_argument("--checkpoint", default="results/models/pitch/model.pth",
                        help="the model whose predictions --ours holds (timed here)")
    parser.add_argument("--markdown", action="store_true", help="the table as Markdown")
    args = parser.parse_args()
    audio_dir = Path(args.audio_dir)
    if not (audio_dir / "manifest.json").exists():
        print(f"{audio_dir}/manifest.json missing: run `snakemake -j2 real_eval` first",
              file=sys.stderr)
        return 1
    problem = basic_pitch_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    manifest = json.loads((audio_dir / "manifest.json").read_text())
    names = list(manifest["clips"])
    with tempfile.TemporaryDirectory() as peer_dir:
        start = time.process_time()
        write_peer_frames([audio_dir / f"{n}.wav" for n in names], peer_dir)
        peer_cpu = time.process_time() - start
        table = score(audio_dir, args.ours, peer_dir)
    minutes = audio_minutes(audio_dir, names)
    print(f"{len(names)} clips, {minutes:.2f} min of audio, SoundFont {manifest['soundfont']}")
    print(side_by_side(table, markdown=args.markdown))
    ours_here = notewise_cpu_seconds([audio_dir / f"{n}.wav" for n in names], args.checkpoint)
    print(f"CPU s per audio minute (this process, model loading included): basic-pitch"
          f" {peer_cpu / minutes:.2f}, notewise {ours_here / minutes:.2f}")
    ours_jobs = predict_cpu_seconds(names, Path(args.benchmarks))
    if ours_jobs is not None:
        print(f"notewise predict jobs: {ours_jobs / minutes:.1f} (process start included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
