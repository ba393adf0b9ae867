"""The train-on / evaluate-on matrix of pitch models (rules/music.smk, target ``pitch_matrix``).

Each *model* of ``music_matrix.models`` trains on a list of datasets with the same budget of
``music_matrix.train_windows`` windows, split evenly between its datasets (the first windows of
each: samples are i.i.d., so a prefix is a random subset), so "random", "music" and "mixed"
differ in what they see, not in how much. Each model is then scored on every evaluation set of
``music_matrix.eval`` with ``mir_eval.multipitch`` (windows as frames, labelled notes as the
reference, the decoded notes as the estimate); at most ``max_windows`` windows per set, taken
evenly spaced (the sanity set is ordered by pitch). The cells go into one CSV and a heat map.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from notewise.atomicio import atomic_save_figure, atomic_write_csv, atomic_write_text

from .evaluate import FULL_CLASSES, load_windows, multipitch_scores, split_by_window
from .train import dataset_identity, fit_and_publish, open_dataset, settings_fingerprint, task_for

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


class ConcatSource:
    """The first ``counts[k]`` samples of each source, one after the other (the batch path)."""

    def __init__(self, sources, counts):
        self.sources = list(sources)
        self.counts = [min(int(c), len(s)) for s, c in zip(self.sources, counts)]
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def get_batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        indices = np.asarray(indices, np.int64)
        which = np.searchsorted(self.offsets, indices, side="right") - 1
        parts, order = [], []
        for k in np.unique(which):
            rows = np.flatnonzero(which == k)
            local = np.sort(indices[rows] - self.offsets[k])
            rows = rows[np.argsort(indices[rows], kind="stable")]
            parts.append(self.sources[k].get_batch(local))
            order.append(rows)
        inverse = np.argsort(np.concatenate(order), kind="stable")
        return {key: torch.cat([p[key] for p in parts])[torch.as_tensor(inverse)]
                for key in parts[0]}


def train_matrix_model(settings: dict, train_dirs: list, windows: int, out_dir) -> list[dict]:
    """Train one matrix model on ``windows`` windows split evenly over ``train_dirs``; publish
    ``model.pth``, ``metrics.json`` and ``model_config.json`` into ``out_dir``."""
    fingerprint = settings_fingerprint(settings, train_dirs=[str(d) for d in train_dirs],
                                       datasets=[dataset_identity(d) for d in train_dirs],
                                       windows=windows)

    def make_task():
        sources = [open_dataset(d, settings["train"]["preload"], verify=settings["train"]["verify"])
                   for d in train_dirs]
        share = [windows // len(sources) + (k < windows % len(sources)) for k in range(len(sources))]
        source = ConcatSource(sources, share)
        log.info("%s: %d windows from %s", Path(out_dir).name, len(source),
                 {str(d): c for d, c in zip(train_dirs, source.counts)})
        return task_for(settings, source, None)

    return fit_and_publish(settings, out_dir, fingerprint, make_task, progress=False)


def evenly_spaced(n_windows: int, max_windows: int | None) -> np.ndarray:
    if max_windows is None or n_windows <= max_windows:
        return np.arange(n_windows)
    return np.unique(np.linspace(0, n_windows - 1, max_windows).round().astype(np.int64))


def score_dataset(predictor, dataset_dir, max_windows: int | None) -> dict:
    """``mir_eval.multipitch`` scores of ``predictor`` on (evenly spaced windows of) a dataset,
    with the reference of ``evaluate``'s polyphonic score: the fully labelled notes (classes 2
    and 4; the others are labelled below the decoding threshold on purpose)."""
    waves, ref, _ = load_windows(dataset_dir)
    rows = evenly_spaced(len(waves), max_windows)
    position = np.full(len(waves), -1)
    position[rows] = np.arange(len(rows))
    keep = (position[ref.window] >= 0) & np.isin(ref.note_class, FULL_CLASSES)
    ref_freqs = split_by_window(position[ref.window[keep]], ref.freq[keep], len(rows))
    est = predictor.notes(waves[rows])
    est_freqs = split_by_window(est.window, est.f0_hz, len(rows))
    return multipitch_scores(ref_freqs, est_freqs)


def evaluate_matrix_model(settings: dict, checkpoint, eval_dirs: dict, max_windows, output) -> list:
    """One row per evaluation set; written to ``output`` (JSON)."""
    from .inference import Predictor

    dec, ev = settings["decode"], settings["evaluate"]
    predictor = Predictor.load(checkpoint, dec["threshold"], dec["radius"], ev["batch_size"],
                               ev["device"], dec["refine_cents"])
    rows = [{"eval_set": name, **score_dataset(predictor, path, max_windows)}
            for name, path in eval_dirs.items()]
    atomic_write_text(output, json.dumps(rows, indent=2) + "\n")
    return rows


def assemble_matrix(results: dict, csv_path, figure_path) -> "pd.DataFrame":
    """``results``: model name -> evaluation JSON path. Writes the long-form CSV (one row per
    cell) and a heat map of the F-measures (rows: trained on, columns: evaluated on)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    frame = pd.DataFrame([{"trained_on": model, **row}
                          for model, path in results.items()
                          for row in json.loads(Path(path).read_text())])
    atomic_write_csv(frame, csv_path, float_format="%.4f")
    table = frame.pivot(index="trained_on", columns="eval_set", values="f_measure")
    table = table.loc[list(results), list(dict.fromkeys(frame["eval_set"]))]
    fig, ax = plt.subplots(figsize=(1.6 * table.shape[1] + 2, 0.8 * table.shape[0] + 1.5))
    image = ax.imshow(table.to_numpy(), vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(table.shape[1]), table.columns)
    ax.set_yticks(range(table.shape[0]), table.index)
    ax.set_xlabel("evaluated on")
    ax.set_ylabel("trained on")
    for (i, j), value in np.ndenumerate(table.to_numpy()):
        ax.text(j, i, f"{value:.3f}", ha="center", va="center",
                color="white" if value < 0.6 else "black")
    fig.colorbar(image, ax=ax, label="mir_eval multipitch F-measure")
    ax.set_title("Pitch model F-measure: training data x evaluation set")
    fig.tight_layout()
    atomic_save_figure(fig, figure_path, dpi=120)
    return frame
