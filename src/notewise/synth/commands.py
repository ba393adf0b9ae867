"""``notewise`` subcommands for the training-data pipeline (what rules/datasets.smk calls).

None of these import torch: a shard job should start in well under a second.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from notewise.atomicio import atomic_write_json, read_json_argument

log = logging.getLogger("notewise.data")


def _spec(text: str) -> dict:
    """A generation spec given inline as JSON, or as ``@path`` to a JSON file."""
    return read_json_argument(text)


def build_timbres(args: argparse.Namespace) -> None:
    from notewise.synth.timbres import build_timbre_library

    library = build_timbre_library(count=args.count, max_partials=args.max_partials, seed=args.seed)
    library.save(args.output)
    log.info("wrote %d timbres to %s", args.count, args.output)


def plot_timbres(args: argparse.Namespace) -> None:
    from notewise.synth.timbres import TimbreLibrary, plot_timbres

    plot_timbres(TimbreLibrary.load(args.library), args.output)


def generate_shard(args: argparse.Namespace) -> None:
    from notewise.synth.generate import write_generated_shard
    from notewise.store.layout import build_id
    from notewise.synth.timbres import TimbreLibrary

    spec = _spec(args.spec)
    start, count = spec["start"], spec["count"]
    build = args.build_id or build_id({k: v for k, v in spec.items() if k not in ("start", "count")})
    write_generated_shard(spec, start, count, TimbreLibrary.load(args.timbres), args.waveforms,
                          args.targets, build=build)
    log.info("%s: samples %d..%d -> %s", spec["dataset"], start, start + count - 1, args.waveforms)


def validate_shard(args: argparse.Namespace) -> None:
    from notewise.store.validate import validate_shard as validate

    report = validate(args.waveforms, args.targets, _spec(args.spec))
    atomic_write_json(args.output, report)


def validate_dataset(args: argparse.Namespace) -> None:
    from notewise.store.validate import summarize_dataset

    reports = [json.loads(Path(p).read_text()) for p in args.reports]
    atomic_write_json(args.output, summarize_dataset(reports, _spec(args.spec)))


def assemble_meta(args: argparse.Namespace) -> None:
    from notewise.store.meta import build_meta, write_meta

    validation = json.loads(Path(args.validation).read_text())
    meta = build_meta(Path(args.output).parent, _spec(args.spec), validation, args.code_hash,
                      build=args.build_id)
    write_meta(args.output, meta)


def check_dataset(args: argparse.Namespace) -> None:
    """Validate every shard of an existing dataset directory against its meta.json."""
    from notewise.store.layout import relative_shard_paths, shard_name
    from notewise.store.validate import (DatasetValidationError, ShardValidationError,
                                        damaged_shards, validate_dataset_dir)

    root = Path(args.dataset)
    if not args.remove_damaged:
        try:
            print(json.dumps(validate_dataset_dir(root), indent=2, sort_keys=True))
        except (ShardValidationError, DatasetValidationError) as err:
            damaged = damaged_shards(root) if (root / "meta.json").exists() else {}
            if not damaged:
                raise
            raise ValueError(_damage_report(root, damaged)) from err
        return
    damaged = damaged_shards(root)
    for index, reason in sorted(damaged.items()):
        for relative in relative_shard_paths(index):
            (root / relative).unlink(missing_ok=True)
        print(f"removed {shard_name(index)}: {reason}")
    if damaged:
        (root / "meta.json").unlink()
        print(f"{len(damaged)} damaged shards removed with meta.json: "
              "`snakemake NAME_shards` rebuilds exactly those")
    else:
        print(f"{root}: every shard matches meta.json")


def _damage_report(root: Path, damaged: dict[int, str]) -> str:
    lines = "\n".join(f"  {reason}" for _, reason in sorted(damaged.items()))
    return (f"{root}: {len(damaged)} damaged shards:\n{lines}\n`notewise check-dataset {root} "
            "--remove-damaged`, then `snakemake NAME_shards`, rebuilds exactly those")


def convert_legacy(args: argparse.Namespace) -> None:
    from notewise.store.legacy import convert_legacy as convert

    convert(args.source, args.destination)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("build-timbres", help="build the deterministic timbre library")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--max-partials", type=int, default=48)
    p.add_argument("--seed", type=int, default=7)
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

    p = subparsers.add_parser("validate-shard", help="check one shard, write its report")
    p.add_argument("--spec", required=True, help=spec_help)
    p.add_argument("--waveforms", required=True)
    p.add_argument("--targets", required=True)
    p.add_argument("-o", "--output", required=True, help="report JSON")
    p.set_defaults(func=validate_shard)

    p = subparsers.add_parser("validate-dataset", help="aggregate shard reports into validation.json")
    p.add_argument("--spec", required=True, help=spec_help)
    p.add_argument("--reports", nargs="+", required=True)
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=validate_dataset)

    p = subparsers.add_parser("assemble-meta", help="write a dataset's meta.json")
    p.add_argument("--spec", required=True, help=spec_help)
    p.add_argument("--validation", required=True, help="validation.json")
    p.add_argument("--code-hash", required=True)
    p.add_argument("--build-id", help=build_help + "; every validated shard must carry it")
    p.add_argument("-o", "--output", required=True, help="meta.json (in the dataset directory)")
    p.set_defaults(func=assemble_meta)

    p = subparsers.add_parser("check-dataset", help="re-validate an existing dataset directory")
    p.add_argument("dataset")
    p.add_argument("--remove-damaged", action="store_true",
                   help="delete each damaged or missing shard (and meta.json), so that "
                        "`snakemake NAME_shards` rebuilds exactly those")
    p.set_defaults(func=check_dataset)

    p = subparsers.add_parser("convert-legacy", help="convert V1 shard_NNNNN.npz files")
    p.add_argument("source")
    p.add_argument("destination")
    p.set_defaults(func=convert_legacy)
