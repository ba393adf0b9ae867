"""The ``notewise`` command: one subcommand per workflow step, each a thin call into the library.

Each domain registers its subcommands from its own ``commands`` module; handlers import heavy
dependencies (torch) inside themselves so that data-generation jobs start fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

DOMAINS = ("notewise.synth.commands", "notewise.store.commands", "notewise.pitch.commands",
           "notewise.midi.commands", "notewise.music.commands", "notewise.pitch.matrix_commands",
           "notewise.pitch.real_eval_commands")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="notewise", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for domain in DOMAINS:
        importlib.import_module(domain).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.func(args) or 0
    except (ValueError, OSError) as exc:  # bad input: a clear message, no traceback
        if args.verbose:
            raise
        logging.getLogger("notewise").error("%s: %s", type(exc).__name__, exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
