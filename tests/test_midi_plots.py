"""The seed's training figure, checked line by line, and the generated-sample piano roll."""

from __future__ import annotations

import math

import pytest
from matplotlib.colors import to_rgb

from notewise.midi.plots import history_figure, plot_history, plot_pianoroll
from notewise.midi.score import Note, Score

pytestmark = pytest.mark.timeout(60)

HISTORY = [{"epoch": e, "train_loss": 4.0 - e, "val_loss": 4.2 - e,
            "train_perplexity": math.exp(4.0 - e), "val_perplexity": math.exp(4.2 - e)}
           for e in range(3)]
# label -> (colour, line style, metrics key), as the seed asks
SEED_STYLE = {"train loss": ("red", "-", "train_loss"), "val loss": ("blue", ":", "val_loss"),
              "train perplexity": ("green", "--", "train_perplexity"),
              "val perplexity": ("blue", "--", "val_perplexity")}


def lines_of(fig) -> dict:
    return {line.get_label(): line for ax in fig.axes for line in ax.get_lines()}


def test_curves_have_the_seeds_colours_styles_and_values():
    import matplotlib.pyplot as plt

    fig = history_figure(HISTORY)
    lines = lines_of(fig)
    assert set(lines) == set(SEED_STYLE)
    matplotlib_colour = {"red": "r", "blue": "b", "green": "g"}
    for label, (colour, style, key) in SEED_STYLE.items():
        line = lines[label]
        assert to_rgb(line.get_color()) == to_rgb(matplotlib_colour[colour]), label
        assert line.get_linestyle() == style, label
        assert list(line.get_xdata()) == [1, 2, 3]
        assert list(line.get_ydata()) == [r[key] for r in HISTORY]
    loss_axis, ppl_axis = fig.axes
    assert {l.get_label() for l in loss_axis.get_lines()} == {"train loss", "val loss"}
    assert ppl_axis.get_yscale() == "log"
    plt.close(fig)


def test_without_validation_only_train_curves_are_drawn(tmp_path):
    import matplotlib.pyplot as plt

    train_only = [{k: v for k, v in r.items() if not k.startswith("val")} for r in HISTORY]
    fig = history_figure(train_only)
    assert set(lines_of(fig)) == {"train loss", "train perplexity"}
    plt.close(fig)
    plot_history(train_only, tmp_path / "metrics.png")
    assert (tmp_path / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically, no temp file left


def test_pianoroll_is_written(tmp_path):
    score = Score([Note(0, 4, 60, 90, 0, False), Note(4, 2, 64, 90, 0, False)])
    plot_pianoroll(score, 4, tmp_path / "roll.png")
    assert (tmp_path / "roll.png").stat().st_size > 5000
