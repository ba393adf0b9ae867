"""CPU cost of ``notewise predict`` beside basic-pitch's: CPU seconds per minute of audio.

    .venv/bin/python bench/bench_predict.py [--checkpoint results/models/pitch/model.pth]
        [--seconds 60] [--rate 22050] [--channels 2] [--hop 441] [--threads 1]
        [--refine-cents CENTS]

Writes a WAV of ``--seconds`` of music-like audio (a chord sequence of harmonic tones, a new chord
every half second) at ``--rate`` Hz with ``--channels`` channels, a chord at a time, then runs the
same path as the command (streamed: read, mix down, ``resample_poly`` to 44.1 kHz and frame a
block at a time; model, decode, CSV) and reports process CPU time (all threads) and wall time,
each per minute of audio, split into reading (a pass of the stream alone) and predicting, and the
peak resident memory of the process from then on (``peak_rss_mb``: with ``--seconds 3600`` the
same as with 60; it does not grow with the file). Without ``--checkpoint`` (or when it does not
exist) an untrained model of the default config is timed: the cost does not depend on the
weights, only the number of rows written does.
Then, where basic-pitch is installed (``peers`` extra), its ``predict`` on the same WAV in the same
process, model loading excluded for both.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

from notewise.pitch.inference import Predictor, decode_default, default_threshold
from notewise.pitch.model import PitchModel, PitchModelConfig
from notewise.pitch.predict import file_frames, stream_audio, write_csv


def write_chord_wav(path, seconds: float, rate: int, channels: int, seed: int = 0) -> None:
    """int16 ``[n, channels]``: 3-note chords of 6-partial tones, changing every 0.5 s, written a
    chord at a time (an hour costs no more memory than a minute)."""
    rng = np.random.default_rng(seed)
    n, step = int(seconds * rate), rate // 2
    with soundfile.SoundFile(path, "w", rate, channels, "PCM_16") as out:
        for start in range(0, n, step):
            t = np.arange(start, min(n, start + step)) / rate
            chord = np.zeros(len(t))
            for f0 in 110.0 * 2 ** (rng.integers(0, 36, 3) / 12):
                for k in range(1, 7):
                    if k * f0 < rate / 2:
                        chord += np.sin(2 * np.pi * k * f0 * t) / k
            out.write(np.repeat(0.8 / 7.35 * chord[:, None], channels, axis=1))  # 7.35: 3 * sum 1/k


def reset_peak_rss() -> None:
    """Start ``peak_rss_mb``'s high-water mark afresh (Linux; elsewhere: from the start)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    try:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_predictor(checkpoint: str | None) -> tuple[Predictor, str]:
    if checkpoint and Path(checkpoint).exists():
        return Predictor.load(checkpoint, device="cpu"), checkpoint
    torch.manual_seed(0)
    model = PitchModel(PitchModelConfig()).eval()
    return (Predictor(model, default_threshold(), refine_cents=decode_default("refine_cents")),
            "untrained default model")


def basic_pitch_cost(wav) -> tuple[float | None, float | None]:
    """basic-pitch's CPU and wall seconds on ``wav`` (its model loaded first); None without it."""
    from notewise.pitch.peers import BasicPitch, basic_pitch_problem

    if basic_pitch_problem():
        print(basic_pitch_problem())
        return None, None
    peer = BasicPitch()
    _, cpu, wall = timed(peer.run, wav)
    return cpu, wall


def stream_length(wav, sample_rate: int) -> int:
    """Samples of ``wav`` at ``sample_rate``: a pass of the stream alone (the reading's cost)."""
    return sum(len(block) for block in stream_audio(wav, sample_rate))


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
    parser.add_argument("--refine-cents", type=float,
                        help="pitch_model.decode.refine_cents for this run (default: the"
                             " schema's; 0: no f0 refinement, to time what it costs)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    predictor, source = load_predictor(args.checkpoint)
    if args.refine_cents is not None:
        predictor.refine_cents = args.refine_cents
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "bench.wav"
        write_chord_wav(wav, args.seconds, args.rate, args.channels)
        reset_peak_rss()
        samples, read_cpu, read_wall = timed(stream_length, wav, predictor.model.cfg.sample_rate)
        table, cpu, wall = timed(file_frames, predictor, wav, args.hop)  # reading included
        cpu, wall = cpu - read_cpu, wall - read_wall
        _, csv_cpu, _ = timed(write_csv, table, Path(tmp) / "bench.csv")
        peak_mb = peak_rss_mb()
        peer_cpu, peer_wall = basic_pitch_cost(wav)
    minutes = args.seconds / 60
    result = {"model": source, "refine_cents": predictor.refine_cents,
              "threads": args.threads, "audio_s": args.seconds,
              "rate": args.rate, "channels": args.channels, "hop": args.hop,
              "windows": int(samples // args.hop + 1), "rows": len(table),
              "read_cpu_s_per_min": read_cpu / minutes,
              "predict_cpu_s_per_min": (cpu + csv_cpu) / minutes,
              "predict_wall_s_per_min": wall / minutes,
              "total_cpu_s_per_min": (read_cpu + cpu + csv_cpu) / minutes,
              "total_wall_s_per_min": (read_wall + wall) / minutes, "peak_rss_mb": peak_mb}
    if peer_cpu is not None:
        result.update(basic_pitch_cpu_s_per_min=peer_cpu / minutes,
                      basic_pitch_wall_s_per_min=peer_wall / minutes)
    for key, value in result.items():
        print(f"{key:>24}: {value:.3f}" if isinstance(value, float) else f"{key:>24}: {value}")
    return result


if __name__ == "__main__":
    main()
