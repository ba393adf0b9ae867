"""Config checks and validation rules of the sampler kinds (``single_note``,
``random_polyphony``): what ``notewise.kinds`` names for them. NumPy only (no Numba): the config
check and shard validation import this, never the generator.

A config check takes ``(ds, key, full)``: the dataset's settings with defaults, its config key
(``datasets.NAME``) and the whole config with defaults, and raises ``ConfigError`` naming the key.
A shard rule takes ``(notes, classes, per_window, spec)`` and a distribution rule
``(summary, settings)``; both return what is wrong (a sentence), or None.
"""
from __future__ import annotations

import math

import numpy as np

from notewise.config import check_pair, check_timbre_ids, require
from notewise.store.layout import CLASSES

#: Fewer notes than this and a missing class is not evidence of a bug.
MIN_NOTES_FOR_CLASS_CHECK = 200
#: Fewer windows than this and the mean polyphony is too noisy to judge.
MIN_WINDOWS_FOR_MEAN_CHECK = 200


# --------------------------------------------------------------------------- config checks


def check_single_note(ds: dict, key: str, full: dict) -> None:
    count = full["timbres"]["count"]
    require(ds["timbre"] < count, f"{key}.timbre",
            f"timbre id {ds['timbre']} does not exist (timbres.count = {count})")


def single_note_size(ds: dict, full: dict) -> int:
    """A single_note dataset has ``samples_per_bin`` samples per bin (no ``num_samples``)."""
    return full["bins"]["n_bins"] * ds["samples_per_bin"]


def check_random_polyphony(ds: dict, key: str, full: dict) -> None:
    bins = full["bins"]
    nyquist = full["audio"]["sample_rate"] / 2
    for pair in ("freq_range", "velocity_range", "onset_range"):
        check_pair(ds[pair], f"{key}.{pair}")
    low, high = ds["freq_range"]
    require(low > 0 and high < nyquist, f"{key}.freq_range",
            f"{ds['freq_range']} must lie in (0, {nyquist}) Hz")
    require(ds["unlabelled_notes"] or bins["f_min"] <= low and high <= bins["f_max"],
            f"{key}.freq_range", f"{ds['freq_range']} reaches beyond the bins "
            f"[{bins['f_min']}, {bins['f_max']}] Hz: those notes would sound but be labelled"
            " as silence (set unlabelled_notes: true if that is wanted)")
    require(ds["onset_range"][1] <= ds["offset_max"], f"{key}.onset_range",
            f"onsets up to {ds['onset_range'][1]} exceed offset_max ({ds['offset_max']}):"
            " a note cannot end before it starts")
    window = full["audio"]["window"]
    require(ds["onset_range"][0] > -ds["offset_max"], f"{key}.onset_range",
            "notes starting before -offset_max can never be visible")
    require(ds["onset_range"][0] < window, f"{key}.onset_range",
            f"the lowest onset must be inside the window (< {window})")
    if ds["timbres"] != "all":
        check_timbre_ids(ds["timbres"], f"{key}.timbres", full["timbres"]["count"])


# --------------------------------------------------------------------------- shard rules


def single_note_shard(notes, classes, per_window, spec) -> str | None:
    if not (per_window == 1).all():
        return "single_note windows must hold exactly one note"
    if not (classes == 4).all():
        return "single_note notes must be class 4"
    return None


def random_polyphony_shard(notes, classes, per_window, spec) -> str | None:
    top = max(spec["settings"]["polyphony"])
    if per_window.max() > top:
        return f"a window holds {per_window.max()} notes, the settings allow at most {top}"
    return None


# --------------------------------------------------------------------------- dataset rules


def single_note_distributions(summary, settings) -> str | None:
    classes, hist = summary["class_counts"], summary["polyphony_histogram"]
    if any(hist[k] for k in range(len(hist)) if k != 1) or classes["4"] != summary["num_notes"]:
        return (f"single_note needs one class-4 note per window, got polyphony histogram {hist},"
                f" classes {classes}")
    return None


def random_polyphony_distributions(summary, settings) -> str | None:
    classes = summary["class_counts"]
    if summary["num_notes"] >= MIN_NOTES_FOR_CLASS_CHECK:
        absent = [c for c in CLASSES if classes[str(c)] == 0]
        if absent:
            return f"no note of class {absent} among {summary['num_notes']} notes"
    return polyphony_problem(summary["polyphony_histogram"], settings["polyphony"])


def polyphony_problem(hist: list[int], drawn: list[int]) -> str | None:
    """Labelled polyphony can only fall below the drawn one (invisible notes are dropped), so for
    every k, P(labelled <= k) >= P(drawn <= k) up to sampling noise; and most notes survive."""
    drawn = np.asarray(drawn)
    counts = np.zeros(max(int(drawn.max()) + 1, len(hist)))
    counts[: len(hist)] = hist
    windows = counts.sum()
    labelled_cdf = np.cumsum(counts) / windows
    for k in range(len(counts)):
        p = float(np.mean(drawn <= k))
        slack = 4 * math.sqrt(max(p * (1 - p), 0.01) / windows) + 1 / windows
        if labelled_cdf[k] < p - slack:
            return (f"only {labelled_cdf[k]:.3f} of windows have <= {k} notes, the"
                    f" polyphony setting draws <= {k} with probability {p:.3f}")
    mean_labelled = float(np.dot(np.arange(len(counts)), counts) / windows)
    if windows >= MIN_WINDOWS_FOR_MEAN_CHECK and mean_labelled < 0.5 * drawn.mean():
        return (f"{mean_labelled:.2f} labelled notes per window on average, the"
                f" polyphony setting draws {drawn.mean():.2f}: most notes were dropped")
    return None


def no_distribution_rule(summary, settings) -> str | None:
    """Kinds whose classes and polyphony come from the music, not from settings."""
    return None
