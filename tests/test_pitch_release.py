"""The released pitch model: its recipe is held out by construction, packaging, and the model
shipped in the package as ``predict``'s default."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from notewise.config import REPO_ROOT
from notewise.workflow.specs import check_config
from notewise.pitch import real_eval, release
from notewise.pitch.model import CONFIG_FILE, PitchModelConfig

from pitch_helpers import spectral_peak_model


def merged(base: dict, overlay: dict) -> dict:
    """Snakemake's --configfile merge: nested mappings updated key by key."""
    out = dict(base)
    for key, value in overlay.items():
        out[key] = merged(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


@pytest.fixture(scope="module")
def release_config():
    with open(REPO_ROOT / "config.yaml") as fh, open(REPO_ROOT / "configs/release.yaml") as rf:
        return merged(yaml.safe_load(fh), yaml.safe_load(rf))


def test_the_release_recipe_trains_on_no_held_out_piece_or_soundfont(release_config):
    check_config(release_config)
    real_eval.check_held_out(release_config)  # raises ConfigError if the recipe breaks it
    recipe = release_config["pitch_release"]
    trained = real_eval.training_datasets(release_config)
    assert set(recipe["datasets"]) <= set(trained)
    assert not set(recipe["datasets"]) & set(recipe["eval"].values())  # nothing scored is trained on
    kinds = {release_config["datasets"][d]["kind"] for d in recipe["datasets"]}
    assert kinds == {"random_polyphony", "midi_render", "soundfont_render"}


def test_a_release_mixture_reading_the_held_out_split_is_refused(release_config):
    from notewise.config import ConfigError

    config = merged(release_config, {"datasets": {"release_music": {"split": "val"}}})
    with pytest.raises(ConfigError, match="release_music.*holds out"):
        real_eval.check_held_out(config)


def trained_dir(tmp_path):
    model = spectral_peak_model()
    out = tmp_path / "trained"
    out.mkdir()
    torch.save(model.state_dict(), out / "model.pth")
    (out / CONFIG_FILE).write_text(json.dumps(model.cfg.to_dict()))
    (out / "metrics.json").write_text(json.dumps([{"epoch": 0, "val_loss": 1.5}]))
    (tmp_path / "scores.json").write_text(json.dumps([{"eval_set": "music", "f_measure": 0.5}]))
    (tmp_path / "summary.json").write_text(json.dumps({"single_note": {"raw_pitch_accuracy": 1}}))
    return out


def sine(freq, seconds=0.6, rate=44100):
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def test_a_packaged_model_is_the_default_of_predict(tmp_path, monkeypatch):
    import notewise

    package = tmp_path / "package"
    evaluation = release.package_release(trained_dir(tmp_path), tmp_path / "scores.json",
                                         tmp_path / "summary.json", package, {"recipe": 1})
    assert evaluation["training"][0]["val_loss"] == 1.5 and evaluation["real_eval"] is None
    assert json.loads((package / "evaluation.json").read_text()) == evaluation
    monkeypatch.setattr(release, "RELEASE_DIR", package)
    notes = notewise.predict(sine(440.0), 44100)  # no checkpoint: the packaged model
    assert list(notes["pitch"].unique()) == [69]


def test_without_a_packaged_model_predict_says_what_to_do(tmp_path, monkeypatch):
    import notewise

    monkeypatch.setattr(release, "RELEASE_DIR", tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="ships no released pitch model.*--checkpoint"):
        notewise.predict(sine(440.0), 44100)


@pytest.mark.skipif(not (release.RELEASE_DIR / "model.pth").exists(),
                    reason="no released model in this checkout")
def test_the_shipped_model_transcribes_a_chord_and_carries_its_evaluation():
    import notewise

    cfg = json.loads((release.RELEASE_DIR / CONFIG_FILE).read_text())
    assert PitchModelConfig.from_dict(cfg).stride > 1  # the fast layout predict is timed with
    rate = 22050
    t = np.arange(rate) / rate
    chord = sum(0.3 * np.sin(2 * np.pi * k * f * t) / k
                for f in (261.63, 329.63, 392.0) for k in (1, 2, 3))  # C major, 3 partials each
    notes = notewise.predict(chord.astype(np.float32), rate)
    assert {60, 64, 67} <= set(notes["pitch"])
    evaluation = release.release_evaluation()
    scored = {row["eval_set"] for row in evaluation["scores"]}
    assert scored == set(evaluation["recipe"]["pitch_release"]["eval"])
    assert all(0 <= row["precision"] <= 1 and 0 <= row["recall"] <= 1
               for row in evaluation["scores"])


def test_the_sweep_trains_on_no_held_out_piece_or_soundfont():
    with open(REPO_ROOT / "config.yaml") as fh, open(REPO_ROOT / "configs/sweep.yaml") as sf:
        config = merged(yaml.safe_load(fh), yaml.safe_load(sf))
    check_config(config)
    real_eval.check_held_out(config)
    matrix = config["music_matrix"]
    trained = {d for datasets in matrix["models"].values() for d in datasets}
    assert not trained & set(matrix["eval"].values())  # chosen on sets no candidate trains on


def test_a_decoding_change_reruns_the_release_s_scoring_but_not_its_training(tmp_path):
    """The training rules' params (their spec and code hash) hold only what decides the
    weights: a decoding default moved retrains neither the release nor a matrix model."""
    from snakekit import make_workdir, snakemake

    with open(REPO_ROOT / "config.yaml") as fh:
        workdir = make_workdir(tmp_path / "wf", yaml.safe_load(fh))
    (workdir / "configs").mkdir()
    (workdir / "configs" / "release.yaml").write_text((REPO_ROOT / "configs/release.yaml").read_text())
    (workdir / "decode.yaml").write_text("pitch_model: {decode: {threshold: 0.4, refine_cents: 0}}\n")

    def commands(*configs):
        dry = snakemake(workdir, "results/release/pitch/scores.json", "pitch_matrix", "-n", "-p",
                        "--forceall", "--configfile", *configs)
        lines = dry.stdout.splitlines()
        return {rule: next(line for line in lines[lines.index(f"rule {rule}:"):]
                           if "notewise" in line or "music-matrix" in line)
                for rule in ("release_train", "release_score", "matrix_train")}

    base = commands("config.yaml", "configs/release.yaml")
    moved = commands("config.yaml", "configs/release.yaml", "decode.yaml")
    assert moved["release_train"] == base["release_train"]
    assert moved["matrix_train"] == base["matrix_train"]
    assert moved["release_score"] != base["release_score"]  # scored with the new decoding


@pytest.mark.timeout(300)
def test_the_release_path_retrained_gives_the_same_model_and_metrics(tmp_path):
    """What makes `pitch_release` reproducible: its trainer (a mixture of datasets, the
    matrix trainer) twice from nothing on CPU gives the same weights and metrics."""
    from notewise.pitch.matrix import train_matrix_model
    from notewise.pitch.train import WALL_CLOCK_METRICS
    from notewise.training import deterministic_metrics

    from pitch_helpers import make_dataset, tiny_settings

    sources = [make_dataset(tmp_path / "random", num_samples=24, seed=1),
               make_dataset(tmp_path / "chords", num_samples=24, seed=2, chords={"share": 0.5})]
    runs = [train_matrix_model(tiny_settings(epochs=2), sources, 32, tmp_path / f"run{k}")
            for k in range(2)]
    same = [[{k: v for k, v in rec.items() if k not in WALL_CLOCK_METRICS}
             for rec in deterministic_metrics(history)] for history in runs]
    assert same[0] == same[1] and len(same[0]) == 2
    a, b = (torch.load(tmp_path / f"run{k}" / "model.pth", weights_only=True) for k in range(2))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
