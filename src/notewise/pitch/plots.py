"""Figures for the report (matplotlib, Agg backend): one PNG per function, under ``out_dir``.

``loss_curves.png`` (train/val loss and its two parts per epoch), ``f_measure_by_polyphony.png``,
``window_position.png`` (bias +- std in cents per tone), ``f0_scatter.png`` (predicted vs true f0
of the single-note set), ``example_windows.png`` (target and predicted confidence/energy maps).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from notewise.atomicio import atomic_save_figure  # noqa: E402

PLOT_FILES = ("loss_curves.png", "f_measure_by_polyphony.png", "window_position.png",
              "f0_scatter.png", "example_windows.png")
DPI = 110
EXAMPLE_POOL = 4096  # example windows are picked among the first this many


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    atomic_save_figure(fig, path, dpi=DPI)
    return path


def loss_curves(history: list[dict], path: Path) -> Path:
    frame = pd.DataFrame(history)
    epochs = frame["epoch"] + 1
    panels = [("loss", "total loss"), ("confidence_bce", "confidence BCE (nats/window)"),
              ("energy_kl", "energy KL (nats/window)")]
    fig, axes = plt.subplots(1, len(panels), figsize=(12, 3.4))
    for ax, (key, title) in zip(axes, panels):
        for split, style in (("train", "-o"), ("val", "--s")):
            column = f"{split}_{key}"
            if column in frame:
                ax.plot(epochs, frame[column], style, label=split)
        ax.set(title=title, xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def f_measure_by_polyphony(table: pd.DataFrame, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    x = np.arange(len(table))
    for offset, key in zip((-0.25, 0.0, 0.25), ("precision", "recall", "f_measure")):
        ax.bar(x + offset, table[key].fillna(0.0), width=0.25, label=key.replace("_", "-"))
    ax.set_xticks(x, [f"{p}\n({n} windows)" for p, n in zip(table["polyphony"], table["windows"])])
    ax.set(ylim=(0, 1.05), xlabel="labelled notes in the window",
           title="mir_eval.multipitch by polyphony (50 cents)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower left")
    return _save(fig, path)


#: The design document's window-position table after phase augmentation (its section 5.2):
#: bias, std (cents).
DESIGN_POSITION = {220.0: (1.3, 3.3), 440.0: (2.0, 2.3), 880.0: (-1.6, 2.3)}


def window_position(table: pd.DataFrame, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    x = np.arange(len(table))
    design = [DESIGN_POSITION.get(float(f)) for f in table["freq_hz"]]
    shown = [i for i, s in enumerate(design) if s is not None]
    if shown:
        ax.errorbar(x[shown] + 0.15, [design[i][0] for i in shown],
                    yerr=[design[i][1] for i in shown], fmt="s", color="grey", capsize=6,
                    label="seed guide, phase-augmented")
    ax.errorbar(x, table["bias_cents"], yerr=table["std_cents"], fmt="o", capsize=6,
                label="this model: bias +- std")
    ax.set_xticks(x, [f"{f:g} Hz" for f in table["freq_hz"]])
    ax.axhspan(-1, 1, color="green", alpha=0.12, label="|bias| < 1 cent (goal)")
    ax.axhline(0, color="black", lw=0.8)
    ax.set(ylabel="cents", title=f"window position: {int(table['offsets'].iloc[0])} start offsets")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def f0_scatter(predictions: pd.DataFrame, path: Path) -> Path:
    fig, (ax, ax_err) = plt.subplots(1, 2, figsize=(11, 4))
    ok = predictions["est_hz"].notna()
    ax.scatter(predictions["ref_hz"][ok], predictions["est_hz"][ok], s=3, alpha=0.5)
    lo, hi = predictions["ref_hz"].min(), predictions["ref_hz"].max()
    ax.plot([lo, hi], [lo, hi], color="black", lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="true f0 (Hz)", ylabel="predicted f0 (Hz)",
           title="single notes: predicted vs true f0")
    ax_err.scatter(predictions["ref_hz"][ok], predictions["cents"][ok].clip(-100, 100), s=3,
                   alpha=0.5)
    ax_err.axhline(0, color="black", lw=0.8)
    ax_err.set(xscale="log", xlabel="true f0 (Hz)", ylabel="error (cents, clipped to +-100)",
               title="cents error by pitch")
    for a in (ax, ax_err):
        a.grid(alpha=0.3, which="both")
    return _save(fig, path)


def example_windows(freqs: np.ndarray, targets: dict[str, np.ndarray],
                    predicted: tuple[np.ndarray, np.ndarray], titles: list[str],
                    path: Path) -> Path:
    """``targets``: ``confs``/``energies`` ``[n, bins]``; ``predicted``: (confidence, energy)."""
    n = len(titles)
    fig, axes = plt.subplots(2, n, figsize=(3.6 * n, 5.2), squeeze=False)
    for col, title in enumerate(titles):
        for row, (key, pred, label) in enumerate((("confs", predicted[0], "confidence"),
                                                 ("energies", predicted[1], "energy"))):
            ax = axes[row, col]
            ax.plot(freqs, targets[key][col], color="black", lw=1.2, label="target")
            ax.plot(freqs, pred[col], color="tab:red", lw=0.9, alpha=0.85, label="predicted")
            ax.set(xscale="log", ylabel=label if col == 0 else None,
                   xlabel="Hz" if row == 1 else None)
            if row == 0:
                ax.set_title(title, fontsize=9)
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    return _save(fig, path)


def pick_examples(polyphony: np.ndarray, count: int) -> list[int]:
    """The first window of each of ``count`` polyphony levels spread over the range seen."""
    levels = np.unique(polyphony[polyphony > 0])
    chosen = levels[np.linspace(0, len(levels) - 1, min(count, len(levels))).round().astype(int)]
    return [int(np.flatnonzero(polyphony == level)[0]) for level in np.unique(chosen)]


def plot_pitch(settings: dict, metrics_path, eval_dir, checkpoint, examples_dir,
               out_dir) -> list[Path]:
    """Draw every figure into ``out_dir``; returns the paths (``PLOT_FILES`` order)."""
    from .evaluate import load_windows
    from .inference import Predictor

    eval_dir, out_dir = Path(eval_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        loss_curves(json.loads(Path(metrics_path).read_text()), out_dir / PLOT_FILES[0]),
        f_measure_by_polyphony(pd.read_csv(eval_dir / "polyphonic_by_polyphony.csv"),
                               out_dir / PLOT_FILES[1]),
        window_position(pd.read_csv(eval_dir / "window_position.csv"), out_dir / PLOT_FILES[2]),
        f0_scatter(pd.read_csv(eval_dir / "single_note_predictions.csv"), out_dir / PLOT_FILES[3]),
    ]
    predictor = Predictor.load(checkpoint, device=settings["evaluate"]["device"])
    waves, ref, maps = load_windows(examples_dir, EXAMPLE_POOL)
    polyphony = ref.polyphony(len(waves))
    rows = pick_examples(polyphony, settings["plots"]["examples"])
    predicted = predictor.maps(waves[rows])
    titles = [f"window {r}: {polyphony[r]} note(s)" for r in rows]
    freqs = predictor.bin_to_freq(np.arange(predictor.model.cfg.n_bins))
    paths.append(example_windows(freqs, {k: v[rows] for k, v in maps.items()}, predicted, titles,
                                 out_dir / PLOT_FILES[4]))
    return paths
