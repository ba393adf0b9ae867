"""CPU cost of ``notewise predict`` beside basic-pitch's: CPU seconds per minute of audio.

    .venv/bin/python bench/bench_predict.py [--checkpoint results/models/pitch/model.pth]
        [--seconds 60] [--rate 22050] [--channels 2] [--hop 441] [--threads 1]

Writes a WAV of ``--seconds`` of music-like audio (a chord sequence of harmonic tones, a new chord
every half second) at ``--rate`` Hz with ``--channels`` channels, then runs the same path as the
command (read, mix down, ``resample_poly`` to 44.1 kHz, frame, model, decode, CSV) and reports
process CPU time (all threads) and wall time, each per minute of audio, split into reading and
predicting. Without ``--checkpoint`` (or when it does not exist) an untrained model of the default
config is timed: the cost does not depend on the weights, only the number of rows written does.
Then, where basic-pitch is installed (``peers`` extra), its ``predict`` on the same WAV in the same
process, model loading excluded for both.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.io import wavfile

from notewise.pitch.inference import Predictor, default_threshold
from notewise.pitch.model import PitchModel, PitchModelConfig
from notewise.pitch.predict import predict_frames, read_audio, write_csv


def chord_audio(seconds: float, rate: int, channels: int, seed: int = 0) -> np.ndarray:
    """int16 ``[n, channels]``: 3-note chords of 6-partial tones, changing every 0.5 s."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    audio = np.zeros(n)
    step = rate // 2
    for start in range(0, n, step):
        span = slice(start, min(n, start + step))
        for f0 in 110.0 * 2 ** (rng.integers(0, 36, 3) / 12):
            for k in range(1, 7):
                if k * f0 < rate / 2:
                    audio[span] += np.sin(2 * np.pi * k * f0 * t[span]) / k
    audio *= 0.8 / np.abs(audio).max()
    return (np.repeat(audio[:, None], channels, axis=1) * 32767).astype(np.int16)


def load_predictor(checkpoint: str | None) -> tuple[Predictor, str]:
    if checkpoint and Path(checkpoint).exists():
        return Predictor.load(checkpoint, device="cpu"), checkpoint
    torch.manual_seed(0)
    model = PitchModel(PitchModelConfig()).eval()
    return Predictor(model, default_threshold()), "untrained default model"


def basic_pitch_cost(wav) -> tuple[float | None, float | None]:
    """basic-pitch's CPU and wall seconds on ``wav`` (its model loaded first); None without it."""
    from notewise.pitch.peers import BasicPitch, basic_pitch_problem

    if basic_pitch_problem():
        print(basic_pitch_problem())
        return None, None
    peer = BasicPitch()
    _, cpu, wall = timed(peer.run, wav)
    return cpu, wall


def timed(fn, *args):
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn(*args)
    return out, time.process_time() - cpu, time.perf_counter() - wall


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="results/models/pitch/model.pth")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=int, default=22050)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--hop", type=int, default=441)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    predictor, source = load_predictor(args.checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "bench.wav"
        wavfile.write(wav, args.rate, chord_audio(args.seconds, args.rate, args.channels))
        audio, read_cpu, read_wall = timed(read_audio, wav, predictor.model.cfg.sample_rate)
        table, cpu, wall = timed(predict_frames, predictor, audio, args.hop)
        _, csv_cpu, _ = timed(write_csv, table, Path(tmp) / "bench.csv")
        peer_cpu, peer_wall = basic_pitch_cost(wav)
    minutes = args.seconds / 60
    result = {"model": source, "threads": args.threads, "audio_s": args.seconds,
              "rate": args.rate, "channels": args.channels, "hop": args.hop,
              "windows": int(len(audio) // args.hop + 1), "rows": len(table),
              "read_cpu_s_per_min": read_cpu / minutes,
              "predict_cpu_s_per_min": (cpu + csv_cpu) / minutes,
              "predict_wall_s_per_min": wall / minutes,
              "total_cpu_s_per_min": (read_cpu + cpu + csv_cpu) / minutes,
              "total_wall_s_per_min": (read_wall + wall) / minutes}
    if peer_cpu is not None:
        result.update(basic_pitch_cpu_s_per_min=peer_cpu / minutes,
                      basic_pitch_wall_s_per_min=peer_wall / minutes)
    for key, value in result.items():
        print(f"{key:>24}: {value:.3f}" if isinstance(value, float) else f"{key:>24}: {value}")
    return result


if __name__ == "__main__":
    main()
