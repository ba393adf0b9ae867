"""``notewise`` subcommands of the real-instrument evaluation (rules/real_eval.smk).

``real-eval-render`` (held-out pieces through the held-out SoundFont), ``real-eval-peer``
(basic-pitch on the same WAVs) and ``real-eval-score`` (``mir_eval.multipitch`` table). Scoring
ours runs ``notewise predict`` itself, once per WAV, as a user would.
"""
from __future__ import annotations

import argparse
import logging

from notewise.atomicio import read_json_argument

log = logging.getLogger("notewise.real_eval")


def _json(text: str) -> dict:
    return read_json_argument(text, "--settings")


def render(args: argparse.Namespace) -> None:
    from notewise.pitch.real_eval import render_clips

    manifest = render_clips(args.notes, args.soundfont, _json(args.settings), args.output,
                            args.training_notes, args.sample_rate)
    log.info("%d clips rendered with %s", len(manifest["clips"]), args.soundfont)


def peer(args: argparse.Namespace) -> None:
    from notewise.pitch.real_eval import write_peer_frames

    status = write_peer_frames(args.audio, args.output)
    if not status["available"]:
        log.warning("%s", status["reason"])


def score(args: argparse.Namespace) -> None:
    from notewise.pitch.real_eval import write_score

    write_score(args.audio_dir, args.ours, args.peer, args.output, args.melody)


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
    p.add_argument("--melody", help="CSV table of the mono clips' raw pitch accuracy")
    p.set_defaults(func=score)
