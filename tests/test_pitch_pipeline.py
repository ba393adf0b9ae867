"""The pitch commands end to end on tiny generated data: train -> evaluate -> plot."""

from __future__ import annotations

import argparse
import json

import pandas as pd
import pytest

from notewise.pitch import commands
from notewise.pitch.plots import PLOT_FILES

from pitch_helpers import make_dataset, tiny_settings

pytestmark = pytest.mark.timeout(180)


def run(argv):
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


def test_train_evaluate_plot_commands(tmp_path):
    train = make_dataset(tmp_path / "train", num_samples=48, seed=1)
    test = make_dataset(tmp_path / "test", num_samples=48, seed=3)
    sanity = make_dataset(tmp_path / "sanity", kind="single_note", samples_per_bin=1,
                          shard_size=1024)
    settings = tiny_settings(epochs=1)
    settings["evaluate"]["max_windows"] = 96
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"pitch_model": {k: settings[k] for k in
                                                ("model", "train", "evaluate", "decode")}}))
    models, evals, plots = tmp_path / "models", tmp_path / "eval", tmp_path / "plots"
    run(["train-pitch", "--spec", f"@{spec}", "--train", train, "-o", models, "--no-progress"])
    assert {p.name for p in models.iterdir()} >= {"model.pth", "metrics.json",
                                                  "model_config.json"}
    run(["evaluate-pitch", "--spec", f"@{spec}", "--checkpoint", models / "model.pth",
         "--single-note", sanity, "--polyphonic", test, "-o", evals])
    summary = json.loads((evals / "summary.json").read_text())
    assert summary["single_note"]["windows"] == 96
    assert summary["polyphonic"]["windows"] == 48
    assert len(summary["window_position"]) == 3
    by_poly = pd.read_csv(evals / "polyphonic_by_polyphony.csv")
    assert list(by_poly["polyphony"]) == ["1", "2", "3", "4-6", "7+"]
    assert by_poly["windows"].sum() == 48
    by_class = pd.read_csv(evals / "polyphonic_by_class.csv")
    assert list(by_class["note_class"]) == [1, 2, 3, 4]
    position = pd.read_csv(evals / "window_position.csv")
    assert list(position["freq_hz"]) == [220.0, 440.0, 880.0]
    assert (position["offsets"] == 8).all()
    run(["plot-pitch", "--spec", f"@{spec}", "--metrics", models / "metrics.json",
         "--eval-dir", evals, "--checkpoint", models / "model.pth", "--examples", test,
         "-o", plots])
    for name in PLOT_FILES:
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
