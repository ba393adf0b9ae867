"""``meta.json``: what a dataset directory holds, in plain JSON (never pickle).

It lists every shard (index, first sample, sample count, relative paths, sha256 of both files),
the total sample count, the bin mapping written out as numbers and formula, sample rate and window,
the generation spec and code hash that produced the bytes, and the validation summary. Readers use
it to find shards without opening them; anyone can check a copy of the data against the hashes.
It holds no timestamps, so the same shards give the same ``meta.json``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Mapping

from notewise.atomicio import atomic_write_bytes
from notewise.store.layout import (BUILD_KEY, FORMAT_NAME, FORMAT_VERSION, list_shard_indices,
    relative_shard_paths, shard_name)

BIN_FORMULA = "centre(i) = f_min * (f_max / f_min) ** (i / (n_bins - 1)), i = 0 .. n_bins-1"
BIN_INVERSE = "bin(f) = (n_bins - 1) * log(f / f_min) / log(f_max / f_min)  (fractional)"
#: Keys ``DatasetWriter.finalize`` sets itself; user metadata may not override them.
log = logging.getLogger(__name__)

WRITER_KEYS = ("format", "num_samples", "num_shards", "shards", "window", "n_bins", "note_table")


def format_info(version: int = FORMAT_VERSION) -> dict:
    return {"name": FORMAT_NAME, "version": version}


def bin_mapping(bins: Mapping) -> dict:
    """The ``bins`` section with the formula that turns it into centre frequencies."""
    return {"n_bins": int(bins["n_bins"]), "f_min": float(bins["f_min"]),
            "f_max": float(bins["f_max"]), "formula": BIN_FORMULA, "inverse": BIN_INVERSE}


def shard_entry(index: int, start: int, samples: int, waveforms_sha256: str,
                targets_sha256: str) -> dict:
    waveforms, targets = relative_shard_paths(index)
    return {"index": index, "start": start, "samples": samples, "waveforms": waveforms,
            "targets": targets, "waveforms_sha256": waveforms_sha256,
            "targets_sha256": targets_sha256}


def shard_entries(shards: list[Mapping]) -> list[dict]:
    """Entries for shards 0..n-1 given ``index``, ``samples`` and both sha256 of each."""
    shards = sorted(shards, key=lambda s: s["index"])
    indices = [s["index"] for s in shards]
    if indices != list(range(len(shards))):
        raise ValueError(f"shard indices must be 0..{len(shards) - 1}, got {indices}")
    entries, start = [], 0
    for s in shards:
        entries.append(shard_entry(s["index"], start, int(s["samples"]), s["waveforms_sha256"],
                                   s["targets_sha256"]))
        start += int(s["samples"])
    return entries


def _check_reports_match_files(dataset_dir: Path, reports: list[Mapping]) -> None:
    """The validated shards are the ones on disk (same set, same file sizes)."""
    reported = sorted(r["index"] for r in reports)
    on_disk = _remove_shards_beyond_plan(dataset_dir, list_shard_indices(dataset_dir), reported)
    if on_disk != reported:
        raise ValueError(f"{dataset_dir}: shards on disk {on_disk} but validated {reported}")
    for r in reports:
        for kind in ("waveforms", "targets"):
            size = (dataset_dir / relative_shard_paths(r["index"])[kind == "targets"]).stat().st_size
            if size != r[f"{kind}_bytes"]:
                raise ValueError(f"{dataset_dir}: {shard_name(r['index'])} {kind} is {size} bytes,"
                                 f" validated as {r[f'{kind}_bytes']}: validate it again")


def _remove_shards_beyond_plan(dataset_dir: Path, on_disk: list[int], planned: list[int]) -> list[int]:
    """Delete the shards of an earlier, larger build (``num_samples`` lowered): indices past the
    plan's ``0..n-1``, so that no reader or check finds them beside the new ``meta.json``."""
    if planned != list(range(len(planned))):
        return on_disk
    for index in (i for i in on_disk if i >= len(planned)):
        for relative in relative_shard_paths(index):
            (dataset_dir / relative).unlink(missing_ok=True)
        log.warning("%s: removed %s, beyond the %d shards of this build", dataset_dir,
                    shard_name(index), len(planned))
    return [i for i in on_disk if i < len(planned)]


def _check_reports_of_build(dataset_dir: Path, reports: list[Mapping], build: str) -> None:
    for r in reports:
        if r.get(BUILD_KEY) != build:
            raise ValueError(f"{dataset_dir}: {shard_name(r['index'])} is of build "
                             f"{r.get(BUILD_KEY)}, this build is {build}: rebuild that shard")


def build_meta(dataset_dir: str | Path, spec: Mapping, validation: Mapping, code_hash: str,
               build: str | None = None) -> dict:
    """``meta.json`` of a generated dataset from its generation spec and ``validation.json``.

    ``validation`` is ``validate.summarize_dataset``'s result: its per-shard reports supply the
    sample counts and sha256 (computed while validating, so nothing is hashed twice). ``build``:
    the build id every shard must record (``shards.BUILD_KEY``); readers check shards against it.
    """
    dataset_dir = Path(dataset_dir)
    reports = list(validation["shards"])
    _check_reports_match_files(dataset_dir, reports)
    if build is not None:
        _check_reports_of_build(dataset_dir, reports, build)
    shards = shard_entries(reports)
    identity = {BUILD_KEY: build} if build is not None else {}
    return {
        **identity,
        "format": format_info(),
        "dataset": spec["dataset"],
        "num_samples": sum(s["samples"] for s in shards),
        "num_shards": len(shards),
        "sample_rate": int(spec["audio"]["sample_rate"]),
        "window": int(spec["audio"]["window"]),
        "n_bins": int(spec["bins"]["n_bins"]),
        "bins": bin_mapping(spec["bins"]),
        "note_table": all(r.get("note_table", True) for r in reports),
        "shards": shards,
        "generation": dict(spec),
        "code_hash": code_hash,
        "validation": {k: v for k, v in validation.items() if k != "shards"},
    }


def writer_meta(shards: list[Mapping], user_meta: Mapping, *, window: int | None,
                n_bins: int | None, note_table: bool, version: int = FORMAT_VERSION) -> dict:
    """``meta.json`` of a dataset written by ``DatasetWriter`` or converted from V1.

    ``user_meta`` keys go to the top level; they may not be any of ``WRITER_KEYS``.
    """
    clash = sorted(set(user_meta) & set(WRITER_KEYS))
    if clash:
        raise ValueError(f"meta keys {clash} are set by the writer; use other names")
    entries = shard_entries(list(shards))
    return {
        **user_meta,
        "format": format_info(version),
        "num_samples": sum(s["samples"] for s in entries),
        "num_shards": len(entries),
        "window": window,
        "n_bins": n_bins,
        "note_table": note_table,
        "shards": entries,
    }


def meta_json(meta: Mapping) -> bytes:
    return (json.dumps(meta, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def write_meta(path: str | Path, meta: Mapping) -> str:
    """Write ``meta.json`` atomically (stable key order); returns its sha256."""
    return atomic_write_bytes(path, meta_json(meta))


def read_meta(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
