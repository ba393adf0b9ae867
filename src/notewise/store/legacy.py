"""The legacy V1 layout (seed section 2.2): ``shard_NNNNN.npz`` files, each holding float32
``waveforms [N, window]``, ``confs [N, n_bins]`` and ``energies [N, n_bins]``, directly in the
dataset directory (optionally next to a ``meta.json``).

``DatasetReader`` reads V1 directories as they are (whole shards at a time: a zip member cannot
be memory-mapped). ``convert_legacy`` rewrites one into the current layout, storing targets as
float16 like every current shard; V1 has no note table, and the converted ``meta.json`` says so.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from notewise.store.layout import (LEGACY_FORMAT_VERSION, META_NAME, WAVEFORM_DIR, FORMAT_NAME,
    legacy_shard_path, list_legacy_indices, targets_path, waveform_path)
from notewise.store.shards import DEFAULT_COMPRESSLEVEL, write_shard

LEGACY_KEYS = ("waveforms", "confs", "energies")


class LegacyShard:
    """One V1 shard's arrays, with the fields ``write_shard`` expects (no note table)."""

    __slots__ = ("waveforms", "confs", "energies", "notes")

    def __init__(self, waveforms: np.ndarray, confs: np.ndarray, energies: np.ndarray):
        self.waveforms, self.confs, self.energies, self.notes = waveforms, confs, energies, None


def is_legacy_dataset(dataset_dir: str | Path) -> bool:
    """V1 shards present and no current-format ``waveforms/`` directory."""
    dataset_dir = Path(dataset_dir)
    return not (dataset_dir / WAVEFORM_DIR).is_dir() and bool(list_legacy_indices(dataset_dir))


def legacy_shard_length(path: str | Path) -> int:
    """Samples in a V1 shard, from the ``waveforms`` member's header (nothing decompressed)."""
    with zipfile.ZipFile(path) as archive, archive.open("waveforms.npy") as member:
        version = np.lib.format.read_magic(member)
        reader = {(1, 0): np.lib.format.read_array_header_1_0,
                  (2, 0): np.lib.format.read_array_header_2_0}[version]
        return int(reader(member)[0][0])


def read_legacy_shard(path: str | Path) -> LegacyShard:
    """The three arrays of a V1 shard, as stored (float32)."""
    with np.load(path, allow_pickle=False) as archive:
        missing = [k for k in LEGACY_KEYS if k not in archive.files]
        if missing:
            raise ValueError(f"{path}: not a V1 shard, missing {missing}")
        return LegacyShard(*(archive[k] for k in LEGACY_KEYS))


def _legacy_meta(src_dir: Path) -> dict | None:
    path = src_dir / META_NAME
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


def convert_legacy(src_dir: str | Path, dst_dir: str | Path,
                   compresslevel: int = DEFAULT_COMPRESSLEVEL) -> dict:
    """Rewrite a V1 dataset into the current layout with ``meta.json``; returns the meta.

    Each V1 shard becomes ``waveforms/shard_NNNNN.npy`` + ``targets/shard_NNNNN.npz`` (confs and
    energies rounded to float16, no note table), every new shard is validated (integrity checks:
    what V1 values mean is not recorded), and ``meta.json`` records the source and its meta.
    """
    from notewise.store.meta import write_meta, writer_meta
    from notewise.store.validate import summarize_dataset, validate_shard

    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    indices = list_legacy_indices(src_dir)
    if not indices:
        raise FileNotFoundError(f"{src_dir}: no V1 shard_NNNNN.npz files")
    if indices != list(range(len(indices))):
        raise ValueError(f"{src_dir}: V1 shards must be numbered 0..{len(indices) - 1}, got {indices}")
    reports = []
    for index in indices:
        shard = read_legacy_shard(legacy_shard_path(src_dir, index))
        wpath, tpath = waveform_path(dst_dir, index), targets_path(dst_dir, index)
        write_shard(wpath, tpath, shard, compresslevel=compresslevel)
        reports.append(validate_shard(wpath, tpath, spec=None))
    summary = summarize_dataset(reports, spec=None)
    source = {"format": {"name": FORMAT_NAME, "version": LEGACY_FORMAT_VERSION},
              "path": str(src_dir), "meta": _legacy_meta(src_dir)}
    meta = writer_meta(
        [{"index": r["index"], "samples": r["samples"], "waveforms_sha256": r["waveforms_sha256"],
          "targets_sha256": r["targets_sha256"]} for r in reports],
        {"converted_from": source, "validation": {k: v for k, v in summary.items() if k != "shards"}},
        window=reports[0]["window"], n_bins=reports[0]["n_bins"], note_table=False)
    write_meta(dst_dir / META_NAME, meta)
    return meta
