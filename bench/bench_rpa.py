"""Mono raw pitch accuracy of ``notewise predict`` on the real-instrument evaluation's clips.

    .venv/bin/python bench/bench_rpa.py [--audio-dir results/real_eval/audio] [--checkpoint MODEL]
    .venv/bin/python bench/bench_rpa.py --validation [--pieces 16] [--checkpoint MODEL]

For each mono clip (the top voice of a held-out piece through the held-out SoundFont), the most
confident note of each 10 ms frame against the reference melody: the share of voiced reference
frames it names within 50 cents (``mir_eval.melody``'s raw pitch accuracy, with an unvoiced
estimate counting as a miss), per instrument and pooled over frames. Default model: the released
one, at predict's defaults. Beside it, in the same run on the same clips where basic-pitch is
installed: basic-pitch's most probable key per frame of its note posteriorgram (voiced where
above its frame threshold, 0.3).

``--validation``: the same on clips to choose settings on, never the test's: the ``--pieces``
val-split pieces after the evaluation's (``real_eval.pieces``) through the training SoundFont
(TimGM6mb), the same instruments, rendered once into ``--validation-dir`` from the evaluation's
notes (``results/real_eval/notes.npz``).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from notewise.pitch.inference import Predictor
from notewise.pitch.peers import FRAME_S, BasicPitch, basic_pitch_problem
from notewise.pitch.predict import predict_frames, read_audio
from notewise.pitch.real_eval import read_frames
from notewise.pitch.release import release_checkpoint


def notewise_melody(predictor: Predictor, wav: Path, n_frames: int, hop: int = 441) -> np.ndarray:
    """The f0 of the most confident note of each 10 ms frame (0: none)."""
    frames = predict_frames(predictor, read_audio(wav, predictor.model.cfg.sample_rate), hop)
    best = frames.sort_values("confidence").groupby("time").tail(1)
    rows = np.rint(best["time"].to_numpy() * predictor.model.cfg.sample_rate / hop).astype(int)
    return on_frames(rows, best["f0_hz"].to_numpy(), n_frames)


def basic_pitch_melody(model, wav: Path, n_frames: int) -> np.ndarray:
    """basic-pitch's most probable key of each frame of its note posteriorgram where it is
    above its frame threshold, at the nearest 10 ms frame (0: none)."""
    from basic_pitch.note_creation import model_frames_to_time

    from notewise.pitch.peers import FRAME_THRESHOLD, LOWEST_KEY
    from notewise.synth.bins import midi_to_hz

    gram = model.run(wav)[0]["note"]
    voiced = gram.max(axis=1) > FRAME_THRESHOLD
    rows = np.rint(np.asarray(model_frames_to_time(len(gram))) / FRAME_S).astype(int)
    f0 = midi_to_hz(gram.argmax(axis=1) + LOWEST_KEY)
    return on_frames(rows[voiced], f0[voiced], n_frames)


def on_frames(rows: np.ndarray, f0: np.ndarray, n_frames: int) -> np.ndarray:
    est = np.zeros(n_frames)
    keep = (rows >= 0) & (rows < n_frames)
    est[rows[keep]] = f0[keep]
    return est


def rpa_counts(melody: np.ndarray, est: np.ndarray) -> np.ndarray:
    """(correct, voiced) reference frames: an estimate within 50 cents of a voiced frame."""
    voiced = melody > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        cents = np.abs(1200 * np.log2(est / np.where(voiced, melody, 1.0)))
    return np.array([(voiced & (est > 0) & (cents <= 50)).sum(), voiced.sum()])


def validation_clips(notes: Path, out_dir: Path, pieces: int) -> Path:
    """Render (once) the validation clips of the module docstring into ``out_dir``."""
    from notewise.music.checks import default_soundfont_path
    from notewise.pitch.real_eval import clip_names, real_eval_settings, render_clips

    if not (out_dir / "manifest.json").exists():
        settings = real_eval_settings({})
        names = clip_names({**settings, "pieces": pieces}, first_piece=settings["pieces"],
                           textures=("mono",))
        render_clips(notes, default_soundfont_path(), settings, out_dir, names=names)
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
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    audio = Path(args.audio_dir)
    if args.validation:
        audio = validation_clips(Path(args.notes), Path(args.validation_dir), args.pieces)
    manifest = json.loads((audio / "manifest.json").read_text())
    predictor = Predictor.load(args.checkpoint or release_checkpoint(), device="cpu")
    systems = {"notewise": lambda wav, n: notewise_melody(predictor, wav, n)}
    if basic_pitch_problem() is None:
        peer = BasicPitch()
        systems["basic_pitch"] = lambda wav, n: basic_pitch_melody(peer, wav, n)
    else:
        print(basic_pitch_problem())
    counts = {system: {} for system in systems}
    for name, clip in manifest["clips"].items():
        if clip.get("texture", name.rsplit("_", 1)[-1]) != "mono":
            continue
        _, ref = read_frames(audio / f"{name}.ref.txt")
        melody = np.array([f[0] if len(f) else 0.0 for f in ref])
        for system, estimate in systems.items():
            got = rpa_counts(melody, estimate(audio / f"{name}.wav", len(melody)))
            per = counts[system]
            per[clip["instrument"]] = per.get(clip["instrument"], 0) + got
    result = {}
    for system, per in counts.items():
        per = {**dict(sorted(per.items())), "all": sum(per.values())}
        result[system] = {k: float(c[0] / c[1]) for k, c in per.items()}
    print(f"mono raw pitch accuracy ({audio}): " + "  ".join(systems))
    for key in result["notewise"]:
        print(f"  {key:>8}: " + "  ".join(f"{result[s][key]:.3f}" for s in systems))
    return result


if __name__ == "__main__":
    main()
