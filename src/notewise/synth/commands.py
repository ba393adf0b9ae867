"""``notewise`` subcommands that synthesise: the timbre library and its plot, one shard of any
kind (what rules/timbres.smk and generate_shard call). Validation and metadata commands are in
``notewise.store.commands``.

None of these import torch: a shard job should start in well under a second.
"""

from __future__ import annotations

import argparse
import logging

from notewise.atomicio import read_json_argument

log = logging.getLogger("notewise.synth")


def build_timbres(args: argparse.Namespace) -> None:
    from notewise.synth.timbres import build_timbre_library

    library = build_timbre_library(count=args.count, max_partials=args.max_partials, seed=args.seed)
    library.save(args.output)
    log.info("wrote %d timbres to %s", len(library), args.output)


def plot_timbres(args: argparse.Namespace) -> None:
    from notewise.synth.timbres import TimbreLibrary, plot_timbres

    plot_timbres(TimbreLibrary.load(args.library), args.output)


def generate_shard(args: argparse.Namespace) -> None:
    from notewise.synth.generate import write_generated_shard
    from notewise.store.layout import build_id
    from notewise.synth.timbres import TimbreLibrary

    spec = read_json_argument(args.spec)
    start, count = spec["start"], spec["count"]
    build = args.build_id or build_id({k: v for k, v in spec.items() if k not in ("start", "count")})
    write_generated_shard(spec, start, count, TimbreLibrary.load(args.timbres), args.waveforms,
                          args.targets, build=build)
    log.info("%s: samples %d..%d -> %s", spec["dataset"], start, start + count - 1, args.waveforms)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("build-timbres", help="build the deterministic timbre library")
    defaults = "default: the config schema's timbres section"
    p.add_argument("--count", type=int, help=defaults)
    p.add_argument("--max-partials", type=int, help=defaults)
    p.add_argument("--seed", type=int, help=defaults)
    p.add_argument("-o", "--output", required=True, help="timbres.npz")
    p.set_defaults(func=build_timbres)

    p = subparsers.add_parser("plot-timbres", help="plot the timbre library")
    p.add_argument("library")
    p.add_argument("-o", "--output", required=True, help="PNG path")
    p.set_defaults(func=plot_timbres)

    spec_help = "generation spec as JSON text, or @file.json"
    build_help = "the build id its shards record (the workflow's: spec and code hashes)"
    p = subparsers.add_parser("generate-shard", help="synthesise and label one shard")
    p.add_argument("--spec", required=True,
                   help=spec_help + ", with the shard's sample range as 'start' and 'count'")
    p.add_argument("--timbres", required=True, help="timbres.npz")
    p.add_argument("--waveforms", required=True, help="output waveforms/shard_NNNNN.npy")
    p.add_argument("--targets", required=True, help="output targets/shard_NNNNN.npz")
    p.add_argument("--build-id", help=build_help + " (default: a hash of the spec alone)")
    p.set_defaults(func=generate_shard)
