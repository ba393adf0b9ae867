"""``notewise`` subcommands of the real-instrument evaluation (rules/real_eval.smk).

``real-eval-render`` (held-out pieces through the held-out SoundFont), ``real-eval-peer``
(basic-pitch on the same WAVs) and ``real-eval-score`` (``mir_eval.multipitch`` table). Scoring
ours runs ``notewise predict`` itself, once per WAV, as a user would.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger("notewise.real_eval")


def _json(text: str) -> dict:
    return json.loads(Path(text[1:]).read_text() if text.startswith("@") else text)


def render(args: argparse.Namespace) -> None:
    from notewise.pitch.real_eval import render_clips

    manifest = render_clips(args.notes, args.soundfont, _json(args.settings), args.output,
                            args.training_notes, args.sample_rate)
    log.info("%d clips rendered with %s", len(manifest["clips"]), args.soundfont)


def peer(args: argparse.Namespace) -> None:
    """basic-pitch on every WAV: ``<clip>.frames.txt`` and ``<clip>.notes.txt`` (multipitch
    frames) plus ``status.json`` (``available``, and ``reason`` where it is not)."""
    from notewise.atomicio import atomic_write_text
    from notewise.pitch.peers import (BasicPitch, basic_pitch_problem, note_event_frames,
                                      posteriorgram_frames)
    from notewise.pitch.real_eval import write_frames

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    problem = basic_pitch_problem()
    if problem is None:
        from scipy.io import wavfile

        model = BasicPitch()
        for wav in args.audio:
            name = Path(wav).name.removesuffix(".wav")
            output, events = model.run(wav)
            write_frames(out / f"{name}.frames.txt", *posteriorgram_frames(output["note"]))
            write_frames(out / f"{name}.notes.txt",
                         *note_event_frames(events, _duration_s(wavfile, wav)))
    else:
        log.warning("%s", problem)
    status = {"available": problem is None, "reason": problem}
    atomic_write_text(out / "status.json", json.dumps(status) + "\n")


def _duration_s(wavfile, path) -> float:
    rate, samples = wavfile.read(path, mmap=True)
    return len(samples) / rate


def score(args: argparse.Namespace) -> None:
    from notewise.pitch.real_eval import write_score

    write_score(args.audio_dir, args.ours, args.peer, args.output)


def register(subparsers) -> None:
    p = subparsers.add_parser("real-eval-render",
                              help="render held-out pieces with a held-out SoundFont (WAV + refs)")
    p.add_argument("--notes", required=True, help="notes.npz of the held-out pieces")
    p.add_argument("--soundfont", required=True, help="SF2/SF3 file")
    p.add_argument("--settings", required=True, help="real_eval settings JSON (or @file)")
    p.add_argument("--training-notes", nargs="*", default=[],
                   help="notes.npz of every training set (must share no piece)")
    p.add_argument("--sample-rate", type=int, default=44100)
    p.add_argument("-o", "--output", required=True, help="directory of WAVs and references")
    p.set_defaults(func=render)

    p = subparsers.add_parser("real-eval-peer", help="basic-pitch on WAV files (if installed)")
    p.add_argument("audio", nargs="*", help="WAV files")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.set_defaults(func=peer)

    p = subparsers.add_parser("real-eval-score", help="mir_eval multipitch table of the clips")
    p.add_argument("--audio-dir", required=True, help="directory with manifest.json and refs")
    p.add_argument("--ours", required=True, help="directory of notewise predict CSVs")
    p.add_argument("--peer", help="directory of real-eval-peer's output")
    p.add_argument("-o", "--output", required=True, help="CSV table")
    p.set_defaults(func=score)
