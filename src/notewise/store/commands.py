"""``notewise`` subcommands of the shard format: validate a shard or a dataset, write
``meta.json``, re-check or repair a built dataset, convert V1 shards (what rules/datasets.smk
calls after generate-shard). None imports torch or Numba.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from notewise.atomicio import atomic_write_json, read_json_argument


def validate_shard(args: argparse.Namespace) -> None:
    from notewise.store.validate import validate_shard as validate

    report = validate(args.waveforms, args.targets, read_json_argument(args.spec))
    atomic_write_json(args.output, report)


def validate_dataset(args: argparse.Namespace) -> None:
    from notewise.store.validate import summarize_dataset

    reports = [json.loads(Path(p).read_text()) for p in args.reports]
    atomic_write_json(args.output, summarize_dataset(reports, read_json_argument(args.spec)))


def assemble_meta(args: argparse.Namespace) -> None:
    from notewise.store.meta import build_meta, write_meta

    validation = json.loads(Path(args.validation).read_text())
    meta = build_meta(Path(args.output).parent, read_json_argument(args.spec), validation, args.code_hash,
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
    spec_help = "generation spec as JSON text, or @file.json"
    build_help = "the build id its shards record (the workflow's: spec and code hashes)"
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
