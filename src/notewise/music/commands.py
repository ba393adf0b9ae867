"""``notewise`` subcommands of the music-driven datasets and the pitch matrix (rules/music.smk).

``music-notes`` is on the generation path (no torch); the ``music-matrix-*`` handlers import
torch inside themselves.
"""

from __future__ import annotations

import argparse
import logging

from notewise.atomicio import read_json_argument

log = logging.getLogger("notewise.music")


def _json(text: str) -> dict:
    return read_json_argument(text, "--settings")


def music_notes(args: argparse.Namespace) -> None:
    from notewise.music.corpus import build_corpus_file

    corpus = build_corpus_file(args.corpus, args.split, args.output, args.val_percent,
                               args.workers)
    for name, reason in zip(corpus.skipped_names, corpus.skipped_reasons):
        log.warning("skipped %s: %s", name, reason)


def matrix_settings(spec: dict) -> dict:
    """Pitch settings (``pitch_settings``) of a matrix spec: the workflow's ``pitch_model``
    with the spec's ``mixture.model`` / ``train`` (a matrix model's or the release's recipe:
    ``music_matrix`` or ``pitch_release``) overriding its sections."""
    from notewise.pitch.settings import pitch_settings

    matrix = spec.get("mixture", {})
    pitch = dict(spec.get("pitch_model", {}))
    for section in ("model", "train"):
        pitch[section] = {**pitch.get(section, {}), **matrix.get(section, {})}
    return pitch_settings({"audio": spec.get("audio", {}), "bins": spec.get("bins", {}),
                           "pitch_model": pitch})


def matrix_train(args: argparse.Namespace) -> None:
    from notewise.pitch.matrix import train_matrix_model

    spec = _json(args.spec)
    history = train_matrix_model(matrix_settings(spec), args.train,
                                 spec["mixture"]["train_windows"], args.output)
    log.info("trained %d epochs; last: %s", len(history), history[-1] if history else None)


def matrix_evaluate(args: argparse.Namespace) -> None:
    from notewise.pitch.matrix import evaluate_matrix_model

    spec = _json(args.spec)
    eval_dirs = dict(zip(args.names, args.datasets))
    rows = evaluate_matrix_model(matrix_settings(spec), args.checkpoint, eval_dirs,
                                 spec["mixture"]["max_windows"], args.output)
    log.info("%s", rows)


def matrix_assemble(args: argparse.Namespace) -> None:
    from notewise.pitch.matrix import assemble_matrix

    frame = assemble_matrix(dict(zip(args.names, args.results)), args.csv, args.figure)
    log.info("\n%s", frame.pivot(index="trained_on", columns="eval_set", values="f_measure"))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("music-notes", help="extract a MIDI corpus split into notes.npz")
    p.add_argument("corpus", help="corpus directory (train/ and val/, or hashed split)")
    p.add_argument("--split", choices=("train", "val"), default="train")
    p.add_argument("--val-percent", type=int, default=20)
    p.add_argument("--workers", type=int, default=1, help="parser processes")
    p.add_argument("-o", "--output", required=True, help="notes.npz")
    p.set_defaults(func=music_notes)

    spec_help = "JSON ({'audio','bins','pitch_model','mixture'}) or @file"
    p = subparsers.add_parser("music-matrix-train", help="train one model of the pitch matrix")
    p.add_argument("--spec", required=True, help=spec_help)
    p.add_argument("--train", nargs="+", required=True, help="dataset directories")
    p.add_argument("-o", "--output", required=True, help="model directory")
    p.set_defaults(func=matrix_train)

    p = subparsers.add_parser("music-matrix-evaluate", help="score one matrix model on each set")
    p.add_argument("--spec", required=True, help=spec_help)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--names", nargs="+", required=True, help="evaluation set names")
    p.add_argument("--datasets", nargs="+", required=True, help="their dataset directories")
    p.add_argument("-o", "--output", required=True, help="JSON rows")
    p.set_defaults(func=matrix_evaluate)

    p = subparsers.add_parser("music-matrix", help="assemble the matrix CSV and heat map")
    p.add_argument("--names", nargs="+", required=True, help="model names")
    p.add_argument("--results", nargs="+", required=True, help="their evaluation JSON files")
    p.add_argument("--csv", required=True)
    p.add_argument("--figure", required=True)
    p.set_defaults(func=matrix_assemble)
