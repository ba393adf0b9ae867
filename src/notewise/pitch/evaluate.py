"""Evaluation of the pitch model on held-out sets; writes JSON and CSV tables.

Three parts, each a pure function of (reference, estimate) arrays so tests can feed them known
answers, plus :func:`evaluate_pitch` which runs a checkpoint over the datasets:

* **single notes** (the ``sanity`` set: one sine per bin centre, random phase): cents error of the
  most confident peak (mean, std, median |error|), raw pitch accuracy (share within 50 cents;
  a window without any peak counts as wrong), also per octave band;
* **window position** (seed section 5.1/5.2): a steady tone at 220, 440 and 880 Hz analysed with
  the window starting at many offsets; bias (mean) +- std of the cents error per tone;
* **polyphonic** (the ``test`` set): ``mir_eval.multipitch`` precision, recall, F-measure and
  accuracy with its 50-cent tolerance, over all windows and by polyphony (1, 2, 3, 4-6, 7+
  labelled notes in the window). The reference notes are the fully labelled ones (classes 2 and
  4, target confidence 1.0); classes 1 and 3 (a note that ends inside the window, or starts and
  ends inside it) are labelled with confidence <= 0.3, below the decoding threshold on purpose.
  The by-class table scores each class with ``mir_eval.multipitch`` on the windows holding a note
  of that class, against the estimates not matched to a note of another class (notes of all four
  classes are matched at once per window, within 50 cents), plus the energy-share error of the
  class's matched notes.

Files (``out_dir``): ``summary.json`` (everything scalar), ``single_note_by_octave.csv``,
``single_note_predictions.csv``, ``window_position.csv``, ``polyphonic_by_polyphony.csv``,
``polyphonic_by_class.csv``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import mir_eval
import numpy as np
import pandas as pd

from notewise.atomicio import atomic_write_csv, atomic_write_text

CENTS_TOLERANCE = 50.0
FULL_CLASSES = (2, 4)
POLYPHONY_BUCKETS = (("1", 1, 1), ("2", 2, 2), ("3", 3, 3), ("4-6", 4, 6), ("7+", 7, 10**9))
FRAME_PERIOD = 0.01  # seconds between the pseudo time stamps handed to mir_eval


def cents(est_hz, ref_hz) -> np.ndarray:
    return 1200.0 * np.log2(np.asarray(est_hz, np.float64) / np.asarray(ref_hz, np.float64))


# --------------------------------------------------------------------------- single notes


def single_note_metrics(ref_hz: np.ndarray, est_hz: np.ndarray) -> dict:
    """Cents-error statistics; ``est_hz`` NaN where the model found no peak."""
    err = cents(est_hz, ref_hz)
    found = np.isfinite(err)
    within = np.zeros(len(err), dtype=bool)
    within[found] = np.abs(err[found]) <= CENTS_TOLERANCE
    e = err[found]
    return {
        "windows": int(len(err)),
        "detected_share": float(found.mean()) if len(err) else math.nan,
        "cents_mean": float(e.mean()) if len(e) else math.nan,
        "cents_std": float(e.std()) if len(e) else math.nan,
        "cents_median_abs": float(np.median(np.abs(e))) if len(e) else math.nan,
        "raw_pitch_accuracy": float(within.mean()) if len(err) else math.nan,
        # the same statistics over the notes within tolerance (no octave errors):
        "cents_mean_within": float(err[within].mean()) if within.any() else math.nan,
        "cents_std_within": float(err[within].std()) if within.any() else math.nan,
    }


def octave_bands(f_min: float, f_max: float) -> list[tuple[float, float]]:
    edges = [f_min]
    while edges[-1] * 2 < f_max:
        edges.append(edges[-1] * 2)
    edges.append(f_max)
    return list(zip(edges[:-1], edges[1:]))


def single_note_by_octave(ref_hz: np.ndarray, est_hz: np.ndarray, f_min: float,
                          f_max: float) -> pd.DataFrame:
    rows = []
    for low, high in octave_bands(f_min, f_max):
        mask = (ref_hz >= low) & ((ref_hz < high) | (high == f_max) & (ref_hz <= high))
        rows.append({"band_low_hz": low, "band_high_hz": high,
                     **single_note_metrics(ref_hz[mask], est_hz[mask])})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- window position


def window_position_waves(freq: float, n_offsets: int, window: int = 4096,
                          sample_rate: int = 44100, step: int = 37, phase: float = 0.3,
                          amplitude: float = 0.8) -> np.ndarray:
    """``[n_offsets, window]``: one steady sine read with the window starting at
    ``0, step, 2 * step, ...`` samples (step 37, prime, so offsets cover every phase)."""
    t = np.arange(window + step * (n_offsets - 1)) / sample_rate
    tone = (amplitude * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)
    starts = np.arange(n_offsets) * step
    return np.stack([tone[s:s + window] for s in starts])


def window_position_row(freq: float, est_hz: np.ndarray) -> dict:
    err = cents(est_hz, freq)
    found = np.isfinite(err)
    e = err[found]
    return {"freq_hz": freq, "offsets": int(len(err)), "detected_share": float(found.mean()),
            "bias_cents": float(e.mean()) if len(e) else math.nan,
            "std_cents": float(e.std()) if len(e) else math.nan,
            "max_abs_cents": float(np.abs(e).max()) if len(e) else math.nan}


# --------------------------------------------------------------------------- polyphonic


@dataclass
class ReferenceNotes:
    """The note table of a set of windows (one entry per labelled note)."""

    window: np.ndarray        # int, row in the evaluated set
    freq: np.ndarray          # Hz
    note_class: np.ndarray    # 1-4
    energy_share: np.ndarray  # the label's share of the window's energy

    def polyphony(self, n_windows: int) -> np.ndarray:
        """Labelled notes per window."""
        return np.bincount(self.window, minlength=n_windows)

    def freqs_per_window(self, n_windows: int, classes=FULL_CLASSES) -> list[np.ndarray]:
        keep = np.isin(self.note_class, classes)
        return split_by_window(self.window[keep], self.freq[keep], n_windows)


def split_by_window(window: np.ndarray, values: np.ndarray, n_windows: int) -> list[np.ndarray]:
    order = np.argsort(window, kind="stable")
    bounds = np.searchsorted(window[order], np.arange(n_windows + 1))
    values = np.asarray(values)[order]
    return [values[bounds[i]:bounds[i + 1]] for i in range(n_windows)]


def _mir_eval_range(freqs) -> np.ndarray:
    """``mir_eval.multipitch`` rejects frequencies outside [20, 5000] Hz, which is also our bin
    range: a sub-bin estimate a hair outside it (5003 Hz for a 5000 Hz note) is clipped to it."""
    mp = mir_eval.multipitch
    return np.clip(np.asarray(freqs, np.float64), mp.MIN_FREQ, mp.MAX_FREQ)


def multipitch_scores(ref_freqs: list[np.ndarray], est_freqs: list[np.ndarray]) -> dict:
    """``mir_eval.multipitch`` metrics over windows treated as frames 10 ms apart."""
    n = len(ref_freqs)
    times = np.arange(n) * FRAME_PERIOD
    n_ref = int(sum(len(f) for f in ref_freqs))
    n_est = int(sum(len(f) for f in est_freqs))
    if n == 0 or n_ref + n_est == 0:
        return {"windows": n, "ref_notes": n_ref, "est_notes": n_est, "precision": math.nan,
                "recall": math.nan, "f_measure": math.nan, "accuracy": math.nan}
    scores = mir_eval.multipitch.evaluate(times, [_mir_eval_range(f) for f in ref_freqs],
                                          times, [_mir_eval_range(f) for f in est_freqs])
    precision, recall = scores["Precision"], scores["Recall"]
    f_measure = mir_eval.util.f_measure(precision, recall) if precision + recall > 0 else 0.0
    return {"windows": n, "ref_notes": n_ref, "est_notes": n_est, "precision": precision,
            "recall": recall, "f_measure": f_measure, "accuracy": scores["Accuracy"]}


def polyphony_table(ref: ReferenceNotes, est_freqs: list[np.ndarray]) -> pd.DataFrame:
    n = len(est_freqs)
    ref_freqs = ref.freqs_per_window(n)
    polyphony = ref.polyphony(n)
    rows = []
    for name, low, high in POLYPHONY_BUCKETS:
        rows_in = np.flatnonzero((polyphony >= low) & (polyphony <= high))
        rows.append({"polyphony": name, **multipitch_scores([ref_freqs[i] for i in rows_in],
                                                            [est_freqs[i] for i in rows_in])})
    return pd.DataFrame(rows)


def match_notes(ref: ReferenceNotes, est_window: np.ndarray, est_freq: np.ndarray,
                n_windows: int) -> tuple[np.ndarray, np.ndarray]:
    """Maximum matching within 50 cents, per window: (reference index, estimate index) pairs.

    Uses ``mir_eval.util.match_events`` on log-frequency (cents) values.
    """
    ref_idx = split_by_window(ref.window, np.arange(len(ref.window)), n_windows)
    est_idx = split_by_window(est_window, np.arange(len(est_window)), n_windows)
    pairs = []
    for r, e in zip(ref_idx, est_idx):
        if len(r) and len(e):
            matched = mir_eval.util.match_events(cents(ref.freq[r], 1.0), cents(est_freq[e], 1.0),
                                                 CENTS_TOLERANCE)
            pairs.extend((r[i], e[j]) for i, j in matched)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def class_table(ref: ReferenceNotes, est_window: np.ndarray, est_freq: np.ndarray,
                matched: tuple[np.ndarray, np.ndarray], share_error: np.ndarray,
                n_windows: int) -> pd.DataFrame:
    """``mir_eval.multipitch`` scores and energy-share error per note class (1-4).

    For class ``c``: the windows holding a class-``c`` note; the reference is their class-``c``
    notes; the estimates are their decoded notes minus those matched to a note of another class
    (a correct detection of a class-2 note is no false alarm for class 1).
    """
    matched_ref, matched_est = matched
    est_class = np.zeros(len(est_window), dtype=np.int64)
    est_class[matched_est] = ref.note_class[matched_ref]
    error = np.full(len(ref.window), np.nan)
    error[matched_ref] = share_error
    rows = []
    for cls in (1, 2, 3, 4):
        mask = ref.note_class == cls
        windows = np.unique(ref.window[mask])
        keep_est = np.isin(est_window, windows) & np.isin(est_class, (0, cls))
        ref_freqs = split_by_window(ref.window[mask], ref.freq[mask], n_windows)
        est_freqs = split_by_window(est_window[keep_est], est_freq[keep_est], n_windows)
        scores = multipitch_scores([ref_freqs[w] for w in windows],
                                   [est_freqs[w] for w in windows])
        has_error = mask & np.isfinite(error)
        rows.append({"note_class": cls, "notes": int(mask.sum()), **scores,
                     "energy_share_mae": float(error[has_error].mean())
                     if has_error.any() else math.nan})
    return pd.DataFrame(rows)


def polyphonic_report(ref: ReferenceNotes, est_window: np.ndarray, est_freq: np.ndarray,
                      est_share: np.ndarray, n_windows: int) -> tuple[dict, pd.DataFrame,
                                                                      pd.DataFrame]:
    """(overall scores, by-polyphony table, by-class table)."""
    est_freqs = split_by_window(est_window, est_freq, n_windows)
    overall = multipitch_scores(ref.freqs_per_window(n_windows), est_freqs)
    by_polyphony = polyphony_table(ref, est_freqs)
    r, e = match_notes(ref, est_window, est_freq, n_windows)
    share_error = np.abs(np.asarray(est_share, np.float64)[e] - ref.energy_share[r])
    full = np.isin(ref.note_class[r], FULL_CLASSES)
    overall["energy_share_mae"] = float(share_error.mean()) if len(r) else math.nan
    overall["energy_share_mae_full"] = float(share_error[full].mean()) if full.any() else math.nan
    return overall, by_polyphony, class_table(ref, est_window, est_freq, (r, e),
                                              share_error, n_windows)


# --------------------------------------------------------------------------- datasets


def load_windows(dataset_dir: str | Path, max_windows: int | None = None
                 ) -> tuple[np.ndarray, ReferenceNotes, dict[str, np.ndarray]]:
    """Waveforms ``[N, window]``, the note table, and the target maps of a dataset directory."""
    from notewise.store import layout, shards

    waves, notes, maps, offset = [], [], {"confs": [], "energies": []}, 0
    for index in layout.list_shard_indices(dataset_dir):
        if max_windows is not None and offset >= max_windows:
            break
        wave = np.asarray(shards.read_waveforms(layout.waveform_path(dataset_dir, index)))
        targets = shards.read_targets(layout.targets_path(dataset_dir, index))
        keep = len(wave) if max_windows is None else min(len(wave), max_windows - offset)
        waves.append(wave[:keep])
        for key in maps:
            maps[key].append(np.asarray(targets[key][:keep], np.float32))
        rows = targets["note_sample"] < keep
        notes.append({"window": targets["note_sample"][rows].astype(np.int64) + offset,
                      "freq": targets["note_freq"][rows].astype(np.float64),
                      "note_class": targets["note_class"][rows].astype(np.int64),
                      "energy_share": targets["note_energy_share"][rows].astype(np.float64)})
        offset += keep
    if not waves:
        raise ValueError(f"no shards in {dataset_dir}")
    ref = ReferenceNotes(**{k: np.concatenate([n[k] for n in notes]) for k in notes[0]})
    return np.concatenate(waves), ref, {k: np.concatenate(v) for k, v in maps.items()}


# --------------------------------------------------------------------------- running a model


def evaluate_single_notes(predictor, dataset_dir, max_windows=None) -> tuple[dict, pd.DataFrame,
                                                                             pd.DataFrame]:
    from .inference import strongest

    waves, ref, _ = load_windows(dataset_dir, max_windows)
    first = np.unique(ref.window, return_index=True)[1]  # one note per window
    ref_hz = np.full(len(waves), np.nan)
    ref_hz[ref.window[first]] = ref.freq[first]
    est_hz, confidence = strongest(predictor.notes(waves, threshold=0.0), len(waves))
    summary = single_note_metrics(ref_hz, est_hz)
    summary["detected_share_at_threshold"] = float((confidence > predictor.threshold).mean())
    cfg = predictor.model.cfg
    by_octave = single_note_by_octave(ref_hz, est_hz, cfg.f_min, cfg.f_max)
    predictions = pd.DataFrame({"ref_hz": ref_hz, "est_hz": est_hz,
                                "cents": cents(est_hz, ref_hz), "confidence": confidence})
    return summary, by_octave, predictions


def evaluate_window_position(predictor, freqs, n_offsets) -> pd.DataFrame:
    from .inference import strongest

    cfg = predictor.model.cfg
    rows = []
    for freq in freqs:
        waves = window_position_waves(freq, n_offsets, cfg.window, cfg.sample_rate)
        est_hz, _ = strongest(predictor.notes(waves, threshold=0.0), len(waves))
        rows.append(window_position_row(freq, est_hz))
    return pd.DataFrame(rows)


def evaluate_polyphonic(predictor, dataset_dir, max_windows=None):
    waves, ref, _ = load_windows(dataset_dir, max_windows)
    start = time.perf_counter()
    est = predictor.notes(waves)
    seconds = time.perf_counter() - start
    overall, by_polyphony, by_class = polyphonic_report(ref, est.window, est.f0_hz,
                                                        est.energy_share, len(waves))
    overall["windows_per_s"] = len(waves) / max(seconds, 1e-9)
    return overall, by_polyphony, by_class


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def evaluate_pitch(settings: dict, checkpoint: str | Path, single_dir: str | Path | None,
                   poly_dir: str | Path | None, out_dir: str | Path) -> dict:
    """Run every evaluation, write the tables into ``out_dir``, return the summary."""
    from .inference import Predictor

    ev, dec = settings["evaluate"], settings["decode"]
    predictor = Predictor.load(checkpoint, dec["threshold"], dec["radius"], ev["batch_size"],
                               ev["device"], dec["refine_cents"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"checkpoint": str(checkpoint), "decode": dec}
    if single_dir:
        single, by_octave, predictions = evaluate_single_notes(predictor, single_dir,
                                                               ev["max_windows"])
        summary["single_note"] = single
        atomic_write_csv(by_octave, out / "single_note_by_octave.csv")
        atomic_write_csv(predictions, out / "single_note_predictions.csv")
    position = evaluate_window_position(predictor, ev["position_freqs"], ev["position_offsets"])
    summary["window_position"] = _records(position)
    atomic_write_csv(position, out / "window_position.csv")
    if poly_dir:
        overall, by_polyphony, by_class = evaluate_polyphonic(predictor, poly_dir,
                                                              ev["max_windows"])
        summary["polyphonic"] = overall
        summary["polyphonic_by_polyphony"] = _records(by_polyphony)
        summary["polyphonic_by_class"] = _records(by_class)
        atomic_write_csv(by_polyphony, out / "polyphonic_by_polyphony.csv")
        atomic_write_csv(by_class, out / "polyphonic_by_class.csv")
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
