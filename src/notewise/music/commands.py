"""``notewise`` subcommands of the music-driven datasets (rules/music.smk): ``music-notes``, on
the generation path (no torch). The mixture trainer's ``music-matrix-*`` commands are in
``notewise.pitch.matrix_commands``.
"""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger("notewise.music")


def music_notes(args: argparse.Namespace) -> None:
    from notewise.music.corpus import build_corpus_file

    corpus = build_corpus_file(args.corpus, args.split, args.output, args.val_percent,
                               args.workers)
    for name, reason in zip(corpus.skipped_names, corpus.skipped_reasons):
        log.warning("skipped %s: %s", name, reason)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("music-notes", help="extract a MIDI corpus split into notes.npz")
    p.add_argument("corpus", help="corpus directory (train/ and val/, or hashed split)")
    p.add_argument("--split", choices=("train", "val"), default="train")
    p.add_argument("--val-percent", type=int, default=20)
    p.add_argument("--workers", type=int, default=1, help="parser processes")
    p.add_argument("-o", "--output", required=True, help="notes.npz")
    p.set_defaults(func=music_notes)
