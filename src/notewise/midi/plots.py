"""The training-curve figure of the design document: loss and perplexity per epoch."""

from __future__ import annotations

import os

from notewise.atomicio import atomic_save_figure

# (metrics key, label, matplotlib format) exactly as the design document asks
CURVES = {
    "loss": [("train_loss", "train loss", "r-"), ("val_loss", "val loss", "b:")],
    "perplexity": [("train_perplexity", "train perplexity", "g--"),
                   ("val_perplexity", "val perplexity", "b--")],
}


def plot_history(history: list[dict], path: str | os.PathLike) -> None:
    """Write :func:`history_figure` of ``history`` to ``path`` atomically."""
    atomic_save_figure(history_figure(history), path)


def history_figure(history: list[dict]):
    """Loss (left panel) and perplexity (right panel) against epoch, one line per curve.

    Two panels, because on one log axis exp(loss) would hide the loss curve exactly.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    for ax, (name, curves) in zip(axes, CURVES.items()):
        for key, label, fmt in curves:
            points = [(r["epoch"] + 1, r[key]) for r in history if key in r]
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, fmt, label=label, marker="." if len(xs) < 3 else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name if name == "perplexity" else "loss (nats / token)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right")
    axes[1].set_yscale("log")
    fig.suptitle("MIDI language model: loss and perplexity")
    fig.tight_layout()
    return fig


def plot_pianoroll(score, steps_per_beat: int, path: str | os.PathLike,
                   title: str = "generated sample") -> None:
    """Notes of a :class:`~notewise.midi.score.Score` as bars (time in beats against pitch)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=110)
    for note in score.notes:
        ax.broken_barh([(note.start / steps_per_beat, note.duration / steps_per_beat)],
                       (note.pitch - 0.4, 0.8), color="0.2" if not note.drum else "tab:orange")
    ax.set_xlabel("beats")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(f"{title}: {len(score.notes)} notes")
    if score.notes:
        ax.set_ylim(min(n.pitch for n in score.notes) - 2, max(n.pitch for n in score.notes) + 2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_save_figure(fig, path)
