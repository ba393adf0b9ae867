"""Validation of shards and datasets: a bad shard fails its rule with a message naming the file.

``validate_shard`` reads both files of one shard once (hashing the bytes it reads, so the report's
sha256 costs no second pass) and checks, in order, each check naming itself on failure:

``load``      the ``.npy`` parses and is complete; the ``.npz`` is a readable zip whose members'
              CRCs match (a truncated file or flipped byte fails here)
``container``  the zip structure of the ``.npz`` is the writer's: every byte outside the member
              data is what ``notewise.store.npzfile`` writes for these members, and the members
              tile the file (flips in bytes that zip itself never checks fail here); with the
              CRCs every byte is covered except bits a deflate stream ignores, which
              ``meta.json``'s sha256 still catches
``members``   confs and energies present, the note table complete or absent as a whole
``checksum``  the waveform bytes match the CRC-32 the writer stored in the targets
``shape``     dtypes (float32 / float16 / note-table dtypes) and shapes [N, window], [N, n_bins]
``finite``    no NaN or inf anywhere
``range``     |waveform| < 1, confs in [0, 1], energies in [0, 1]
``notes``     note rows inside the shard, frequencies inside the bin range, classes 1-4 matching
              the onset/offset rule, weights by the class rule, energy shares summing to 1 per
              window, polyphony allowed by the dataset's settings
``peaks``     the confidence at each note's nearest bin is at least its weight times the Gaussian
              half a bin off centre; a window's maximum confidence is about its largest weight;
              windows without notes have zero targets; the energy at each note's bin carries at
              least its share
``energy``    each window's energy sums to 1 (notes) or 0 (silent), to float16 accuracy

Everything is vectorised over the shard: a 10,000-sample shard validates in about a second.
``summarize_dataset`` aggregates the shard reports and checks the class and polyphony
distributions against the dataset's settings (loosely on small sets).
"""

from __future__ import annotations

import hashlib
import io
import math
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np

from notewise import kinds
from notewise.store.meta import read_meta
from notewise.store.npzfile import (central_entry, crc32, end_record, local_header, npy_from_buffer,
                                   npz_members)
from notewise.store.layout import (BUILD_KEY, CLASSES, CRC_KEY, META_NAME, NOTE_DTYPES,
                                   OPTIONAL_NOTE_DTYPES, list_shard_indices, shard_index,
                                   targets_path, waveform_path)
from notewise.synth.bins import Bins

#: |sum - 1| allowed for an energy row stored in float16 (2048 values each rounded to 2**-11).
ENERGY_SUM_TOL = 2e-3
#: Relative and absolute slack for a float16-stored target value.
F16_REL, F16_ABS = 2e-3, 1e-6


class ShardValidationError(ValueError):
    """A shard failed a check; ``path`` is the offending file and ``check`` the check's name."""

    def __init__(self, path, check: str, detail: str):
        self.path, self.check, self.detail = str(path), check, detail
        super().__init__(f"{path}: {check} check failed: {detail}")


class DatasetValidationError(ValueError):
    """A dataset as a whole failed a check (the message names the dataset)."""


# --------------------------------------------------------------------------- loading


def _load_waveforms(path: Path):
    try:
        raw = path.read_bytes()
        waveforms = npy_from_buffer(raw)
    except Exception as exc:  # any parse error of a damaged file
        raise ShardValidationError(path, "load", f"not a readable .npy ({exc})") from exc
    return waveforms, hashlib.sha256(raw).hexdigest(), len(raw)


def _load_targets(path: Path):
    try:
        raw = path.read_bytes()
        members = npz_members(raw, str(path))
    except Exception as exc:  # BadZipFile, CRC error, zlib.error, bad member header, ...
        raise ShardValidationError(path, "load", f"not a readable .npz ({type(exc).__name__}: {exc})") from exc
    try:
        problem = npz_container_problem(raw)
    except Exception as exc:  # a length field pointing outside the file, ...
        problem = f"{type(exc).__name__}: {exc}"
    _require(problem is None, path, "container", lambda: f"zip structure damaged: {problem}")
    return members, hashlib.sha256(raw).hexdigest(), len(raw)


# --------------------------------------------------------------------------- zip container

def npz_container_problem(raw: bytes) -> str | None:
    """What is wrong with a targets ``.npz``'s zip structure, or None: every byte outside the
    member data (local headers, central directory, end record) must be what the writer
    (``notewise.store.npzfile``) makes for these members, and the members must follow each other
    with no gap or overlap. The member data is checked by zip's CRC when read; together every
    byte of the file is covered (up to flips that cannot change what is read, e.g. unused bits
    inside a deflate stream)."""
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        infos, start_dir = archive.infolist(), archive.start_dir
    position, directory = 0, []
    for info in infos:
        name = info.filename.encode()
        fields = (info.compress_type, info.CRC, info.file_size, info.compress_size)
        header = local_header(name, *fields)
        if info.header_offset != position:
            return f"{info.filename}: starts at byte {info.header_offset}, expected {position}"
        if raw[position:position + len(header)] != header:
            return f"{info.filename}: local header differs from the writer's"
        directory.append(central_entry(name, *fields, position))
        position += len(header) + info.compress_size
    if position != start_dir:
        return f"members end at {position}, central directory starts at {start_dir}"
    entries = b"".join(directory)
    if raw[start_dir:] != entries + end_record(len(infos), len(entries), start_dir):
        return "central directory or end record differs from the writer's"
    return None


def _require(ok, path, check: str, detail) -> None:
    if not ok:
        raise ShardValidationError(path, check, detail() if callable(detail) else detail)


# --------------------------------------------------------------------------- per-shard checks


def _check_members(members: Mapping, tpath: Path) -> bool:
    missing = [k for k in ("confs", "energies") if k not in members]
    _require(not missing, tpath, "members", f"missing {missing}")
    present = [k for k in NOTE_DTYPES if k in members]
    _require(len(present) in (0, len(NOTE_DTYPES)), tpath, "members",
             lambda: f"incomplete note table: missing {[k for k in NOTE_DTYPES if k not in members]}")
    return bool(present)


def _check_checksum(waveforms: np.ndarray, members: Mapping, wpath: Path, tpath: Path) -> None:
    if CRC_KEY not in members:
        return
    stored = int(members[CRC_KEY])
    actual = crc32(memoryview(np.ascontiguousarray(waveforms).reshape(-1)).cast("B"))
    _require(actual == stored, wpath, "checksum",
             f"waveform bytes have CRC-32 {actual:08x}, {tpath.name} recorded {stored:08x}"
             " (the waveforms were damaged after writing)")


def _check_shapes(waveforms, confs, energies, notes, spec, wpath, tpath) -> None:
    _require(waveforms.dtype == np.float32 and waveforms.ndim == 2, wpath, "shape",
             f"waveforms must be float32 [N, window], got {waveforms.dtype} {waveforms.shape}")
    n = len(waveforms)
    _require(n > 0, wpath, "shape", "shard holds no samples")
    for name, arr in (("confs", confs), ("energies", energies)):
        _require(arr.dtype == np.float16 and arr.ndim == 2 and len(arr) == n, tpath, "shape",
                 f"{name} must be float16 [{n}, n_bins], got {arr.dtype} {arr.shape}")
    _require(confs.shape == energies.shape, tpath, "shape",
             f"confs {confs.shape} and energies {energies.shape} differ")
    if spec is not None:
        window, n_bins = spec["audio"]["window"], spec["bins"]["n_bins"]
        _require(waveforms.shape[1] == window, wpath, "shape",
                 f"window is {waveforms.shape[1]}, the spec says {window}")
        _require(confs.shape[1] == n_bins, tpath, "shape",
                 f"n_bins is {confs.shape[1]}, the spec says {n_bins}")
    if notes:
        for key, dtype in {**NOTE_DTYPES, **OPTIONAL_NOTE_DTYPES}.items():
            if key not in notes:  # the optional columns
                continue
            _require(notes[key].dtype == dtype and notes[key].ndim == 1, tpath, "shape",
                     f"{key} must be 1-D {dtype}, got {notes[key].dtype} {notes[key].shape}")
        lengths = {k: len(v) for k, v in notes.items()}
        _require(len(set(lengths.values())) == 1, tpath, "shape", f"note columns differ in length {lengths}")


def _min_max(arr: np.ndarray) -> tuple[float, float]:
    """Min and max (NaN if any value is NaN): one pass each, no temporary array."""
    return float(arr.min()), float(arr.max())


def _check_finite_and_range(name, arr, low, high, path, strict=False) -> tuple[float, float]:
    """Finite values inside [low, high] (``strict``: inside (low, high)); returns (min, max)."""
    lo, hi = _min_max(arr)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        bad = np.argwhere(~np.isfinite(arr))
        raise ShardValidationError(path, "finite", f"{name} has {len(bad)} non-finite values"
                                   f" (first at [row, column] {bad[0].tolist()}: {arr[tuple(bad[0])]})")
    inside = (low < lo and hi < high) if strict else (low <= lo and hi <= high)
    brackets = "()" if strict else "[]"
    _require(inside, path, "range",
             f"{name} spans [{lo:.6g}, {hi:.6g}], allowed {brackets[0]}{low}, {high}{brackets[1]}")
    return lo, hi


def _classify(onset: np.ndarray, offset: np.ndarray, window: int) -> np.ndarray:
    """The design document's classify_note, vectorised: 4 whole, 2 starts inside, 1 ends inside,
    3 both."""
    starts_before, lasts = onset <= 0, offset >= window
    return np.where(starts_before, np.where(lasts, 4, 1), np.where(lasts, 2, 3)).astype(np.int8)


def _class_weights(onset, offset, classes, window) -> np.ndarray:
    visible = (np.minimum(offset, window) - np.maximum(onset, 0)) / window
    soft = np.minimum(visible * 0.5, 0.3)
    return np.where((classes == 2) | (classes == 4), 1.0, soft)


def _check_notes(notes, n, spec, tpath) -> np.ndarray:
    """Note-table checks; returns the number of labelled notes per window."""
    rows = notes["note_sample"].astype(np.int64)
    _require(len(rows) == 0 or (rows.min() >= 0 and rows.max() < n), tpath, "notes",
             lambda: f"note_sample outside [0, {n}): {rows.min()}..{rows.max()}")
    per_window = np.bincount(rows, minlength=n)
    classes = notes["note_class"]
    _require(np.isin(classes, CLASSES).all(), tpath, "notes",
             lambda: f"note_class values {sorted(set(classes.tolist()) - set(CLASSES))} not in 1-4")
    for key in ("note_freq", "note_velocity", "note_weight", "note_energy_share"):
        _require(np.isfinite(notes[key]).all(), tpath, "finite", f"{key} has non-finite values")
    shares = notes["note_energy_share"].astype(np.float64)
    _require(((shares >= 0) & (shares <= 1 + 1e-6)).all(), tpath, "notes", "note_energy_share outside [0, 1]")
    share_sums = np.bincount(rows, weights=shares, minlength=n)[per_window > 0]
    _require(np.allclose(share_sums, 1.0, atol=1e-4), tpath, "notes",
             lambda: f"energy shares of a window sum to {share_sums[np.argmax(abs(share_sums - 1))]:.6f}, not 1")
    if spec is not None:
        _check_notes_against_spec(notes, classes, per_window, spec, tpath)
    return per_window


def _check_notes_against_spec(notes, classes, per_window, spec, tpath) -> None:
    window = spec["audio"]["window"]
    onset, offset = notes["note_onset"].astype(np.int64), notes["note_offset"].astype(np.int64)
    _require(((offset > 0) & (onset < window) & (offset > onset)).all(), tpath, "notes",
             "a labelled note is empty or outside the window")
    expected = _classify(onset, offset, window)
    _require((classes == expected).all(), tpath, "notes",
             lambda: f"{int((classes != expected).sum())} notes' class disagrees with onset/offset")
    weights = notes["note_weight"].astype(np.float64)
    wrong = np.abs(weights - _class_weights(onset, offset, classes, window)) > 1e-6
    _require(not wrong.any(), tpath, "notes",
             lambda: f"{int(wrong.sum())} weights break the class rule (1.0 for classes 2/4,"
                     f" min(visible/2, 0.3) for 1/3), e.g. class {classes[wrong][0]} weight {weights[wrong][0]}")
    in_range = Bins.from_dict(spec["bins"]).contains(notes["note_freq"])
    _require(in_range.all(), tpath, "notes",
             lambda: f"note_freq {notes['note_freq'][~in_range][0]} Hz outside the bin range")
    problem = kinds.kind(spec["settings"]["kind"]).shard_notes(notes, classes, per_window, spec)
    _require(problem is None, tpath, "notes", problem)


def _check_peaks(confs, energies, notes, per_window, spec, tpath) -> None:
    """Targets agree with the note table: peaks where the notes are, nothing where none are."""
    sigma = float(spec["labels"]["sigma_bins"])
    rows = notes["note_sample"].astype(np.int64)
    centre = Bins.from_dict(spec["bins"]).freq_to_bin(notes["note_freq"].astype(np.float64))
    nearest = np.clip(np.rint(centre), 0, confs.shape[1] - 1).astype(np.int64)
    falloff = np.exp(-((nearest - centre) ** 2) / (2 * sigma**2))
    weights = notes["note_weight"].astype(np.float64)
    at_note = confs[rows, nearest].astype(np.float64)
    low = at_note < weights * falloff * (1 - F16_REL) - F16_ABS
    _require(not low.any(), tpath, "peaks",
             lambda: f"confidence {at_note[low][0]:.4f} at bin {nearest[low][0]} of the note in row"
                     f" {rows[low][0]} is below its weight {weights[low][0]:.4f}")
    row_max = confs.max(axis=1).astype(np.float64)
    top_weight = np.zeros(len(confs))
    np.maximum.at(top_weight, rows, weights)
    over = row_max > top_weight * (1 + F16_REL) + F16_ABS
    _require(not over.any(), tpath, "peaks",
             lambda: f"row {np.flatnonzero(over)[0]} has confidence {row_max[over][0]:.4f} above its"
                     f" largest note weight {top_weight[over][0]:.4f} (or has no notes)")
    gauss_peak = falloff / (math.sqrt(2 * math.pi) * sigma)
    share = notes["note_energy_share"].astype(np.float64)
    at_energy = energies[rows, nearest].astype(np.float64)
    weak = at_energy < share * gauss_peak * (1 - 2 * F16_REL) - F16_ABS
    _require(not weak.any(), tpath, "peaks",
             lambda: f"energy {at_energy[weak][0]:.3g} at the bin of a note in row {rows[weak][0]}"
                     f" is below its share {share[weak][0]:.3g}")


def _check_energy_sums(energies, has_notes, tpath) -> float:
    sums = energies.sum(axis=1).astype(np.float64)
    expected = has_notes.astype(np.float64)
    error = np.abs(sums - expected)
    worst = int(np.argmax(error))
    _require(error[worst] < ENERGY_SUM_TOL, tpath, "energy",
             f"energy row {worst} sums to {sums[worst]:.6f}, expected {expected[worst]:.0f}"
             f" (+- {ENERGY_SUM_TOL})")
    return float(error[worst])


def validate_shard(waveform_path: str | Path, targets_path: str | Path, spec: Mapping | None) -> dict:
    """Check one shard (see the module docstring); return its report or raise ShardValidationError.

    ``spec`` is the dataset's generation spec. With None (data converted from V1, or written by
    ``DatasetWriter`` without one) only integrity is checked: load, members, checksum, shape,
    finite; what the values mean is not known, so ranges, notes, peaks and energy sums are not.
    """
    wpath, tpath = Path(waveform_path), Path(targets_path)
    waveforms, waveforms_sha, waveforms_bytes = _load_waveforms(wpath)
    members, targets_sha, targets_bytes = _load_targets(tpath)
    has_table = _check_members(members, tpath)
    _check_checksum(waveforms, members, wpath, tpath)
    notes = ({k: members[k] for k in (*NOTE_DTYPES, *OPTIONAL_NOTE_DTYPES) if k in members}
             if has_table else None)
    confs, energies = members["confs"], members["energies"]
    _check_shapes(waveforms, confs, energies, notes, spec, wpath, tpath)
    confs32, energies32 = confs.astype(np.float32), energies.astype(np.float32)
    semantic = spec is not None
    inf = math.inf
    wave_lo, wave_hi = _check_finite_and_range("waveforms", waveforms, -1.0 if semantic else -inf,
                                               1.0 if semantic else inf, wpath, strict=semantic)
    _, conf_max = _check_finite_and_range("confs", confs32, 0.0 if semantic else -inf,
                                          1.0 if semantic else inf, tpath)
    _, energy_max = _check_finite_and_range("energies", energies32, 0.0 if semantic else -inf,
                                            1.0 if semantic else inf, tpath)
    n = len(waveforms)
    per_window = _check_notes(notes, n, spec, tpath) if has_table else None
    silent = per_window == 0 if has_table else energies32.sum(axis=1) == 0
    energy_error = None
    if semantic:
        if has_table:
            _check_peaks(confs32, energies32, notes, per_window, spec, tpath)
        silent_confs = confs32[silent].max(initial=0.0)
        _require(silent_confs == 0, tpath, "peaks", f"a window without notes has confidence {silent_confs}")
        energy_error = _check_energy_sums(energies32, ~silent, tpath)
    report = {
        "index": shard_index(wpath),
        "waveforms": str(wpath),
        "targets": str(tpath),
        "samples": n,
        "window": int(waveforms.shape[1]),
        "n_bins": int(confs.shape[1]),
        "waveforms_sha256": waveforms_sha,
        "targets_sha256": targets_sha,
        "waveforms_bytes": waveforms_bytes,
        "targets_bytes": targets_bytes,
        "checks": "all" if semantic else "integrity",
        **({BUILD_KEY: str(members[BUILD_KEY])} if BUILD_KEY in members else {}),
        "note_table": has_table,
        "silent_windows": int(silent.sum()),
        "stats": {"waveform_min": wave_lo, "waveform_max": wave_hi, "confs_max": conf_max,
                  "energies_max": energy_max, "energy_sum_max_error": energy_error},
    }
    if has_table:
        report["notes"] = int(len(notes["note_sample"]))
        report["class_counts"] = {str(c): int((notes["note_class"] == c).sum()) for c in CLASSES}
        report["polyphony_histogram"] = np.bincount(per_window).tolist()
    return report


# --------------------------------------------------------------------------- dataset level

def _sum_histograms(histograms: list[list[int]]) -> list[int]:
    total = np.zeros(max((len(h) for h in histograms), default=0), dtype=np.int64)
    for h in histograms:
        total[: len(h)] += h
    return total.tolist()


def _aggregate_stats(stats: list[Mapping]) -> dict:
    def combine(key, values):
        values = [v for v in values if v is not None]
        return (min if key.endswith("_min") else max)(values) if values else None

    return {key: combine(key, [s[key] for s in stats]) for key in stats[0]} if stats else {}


def summarize_dataset(reports: list[Mapping], spec: Mapping | None) -> dict:
    """Aggregate shard reports into the dataset's validation summary (validation.json).

    The summary keeps the shard reports under ``shards`` (``meta.build_meta`` takes counts and
    sha256 from them). Raises DatasetValidationError naming the dataset when the shards do not
    form 0..n-1, or the class or polyphony distribution disagrees with the dataset's settings.
    """
    name = spec["dataset"] if spec else "<unnamed>"
    reports = sorted(reports, key=lambda r: r["index"])
    indices = [r["index"] for r in reports]
    if indices != list(range(len(reports))):
        raise DatasetValidationError(f"dataset {name}: shards must be 0..{len(reports) - 1}, got {indices}")
    samples = sum(r["samples"] for r in reports)
    summary = {"dataset": name, "num_shards": len(reports), "num_samples": samples,
               "silent_windows": sum(r["silent_windows"] for r in reports),
               "note_table": bool(reports) and all(r["note_table"] for r in reports),
               "stats": _aggregate_stats([r["stats"] for r in reports])}
    if summary["note_table"]:
        classes = {str(c): sum(r["class_counts"][str(c)] for r in reports) for c in CLASSES}
        hist = _sum_histograms([r["polyphony_histogram"] for r in reports])
        notes = sum(classes.values())
        summary.update(num_notes=notes, class_counts=classes, polyphony_histogram=hist,
                       class_distribution={k: v / max(notes, 1) for k, v in classes.items()},
                       polyphony_distribution=[h / samples for h in hist])
        if spec is not None:
            _check_distributions(summary, spec["settings"], name)
    summary["shards"] = list(reports)
    return summary


def _check_distributions(summary: Mapping, settings: Mapping, name: str) -> None:
    problem = kinds.kind(settings["kind"]).distributions(summary, settings)
    if problem is not None:
        raise DatasetValidationError(f"dataset {name}: {problem}")


def validate_dataset_dir(dataset_dir: str | Path) -> dict:
    """Re-validate every shard of a dataset directory and compare it with its ``meta.json``.

    Uses the generation spec recorded in ``meta.json`` (none for converted V1 data); a shard whose
    sha256 differs from the one recorded fails, named.
    """
    dataset_dir = Path(dataset_dir)
    meta_path = dataset_dir / META_NAME
    indices = list_shard_indices(dataset_dir)
    if indices and not meta_path.exists():
        raise DatasetValidationError(
            f"{meta_path} is missing: {len(indices)} shards that no finished build describes "
            "(a failed or interrupted build?); rebuild with `snakemake NAME_shards`")
    meta = read_meta(meta_path) if meta_path.exists() else {}
    spec = meta.get("generation")
    recorded = {s["index"]: s for s in meta.get("shards", [])}
    if recorded and sorted(recorded) != indices:
        raise DatasetValidationError(f"{meta_path}: lists shards {sorted(recorded)}, found {indices}")
    reports = [_checked_shard(dataset_dir, index, spec, recorded.get(index), meta_path)
               for index in indices]
    return summarize_dataset(reports, spec)


def _checked_shard(dataset_dir: Path, index: int, spec, entry, meta_path: Path) -> dict:
    report = validate_shard(waveform_path(dataset_dir, index), targets_path(dataset_dir, index), spec)
    _compare_with_meta(report, entry, meta_path)
    return report


def damaged_shards(dataset_dir: str | Path) -> dict[int, str]:
    """Every shard of a built dataset that fails validation or differs from ``meta.json``
    (missing files included), with the reason: what ``check-dataset --remove-damaged`` deletes
    so that ``snakemake NAME_shards`` rebuilds exactly those."""
    dataset_dir = Path(dataset_dir)
    meta_path = dataset_dir / META_NAME
    meta = read_meta(meta_path)
    damaged = {}
    for entry in meta["shards"]:
        index = entry["index"]
        try:
            _checked_shard(dataset_dir, index, meta.get("generation"), entry, meta_path)
        except (ShardValidationError, OSError) as err:
            damaged[index] = str(err)
    return damaged


def _compare_with_meta(report: Mapping, entry: Mapping | None, meta_path: Path) -> None:
    if entry is None:
        return
    for kind in ("waveforms", "targets"):
        if report[f"{kind}_sha256"] != entry[f"{kind}_sha256"]:
            raise ShardValidationError(report[kind], "sha256",
                                       f"differs from the sha256 recorded in {meta_path}")
    if report["samples"] != entry["samples"]:
        raise ShardValidationError(report["waveforms"], "samples",
                                   f"{report['samples']} samples, {meta_path} says {entry['samples']}")
