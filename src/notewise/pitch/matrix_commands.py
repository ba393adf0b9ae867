"""``notewise`` subcommands of the mixture trainer (``notewise.pitch.matrix``): one model
trained on a mixture of datasets and scored on named sets, for the pitch matrix
(rules/music.smk) and the released model (rules/release.smk). Each takes one ``--spec`` JSON:
``audio``, ``bins``, ``pitch_model`` and ``mixture`` (a matrix model's or the release's recipe).
Handlers import torch inside themselves.
"""

from __future__ import annotations

import argparse
import logging

from notewise.atomicio import read_json_argument

log = logging.getLogger("notewise.pitch.matrix")


def _json(text: str) -> dict:
    return read_json_argument(text, "--spec")


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
