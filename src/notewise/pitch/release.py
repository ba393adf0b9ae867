"""The released pitch model: shipped inside the package, ``predict``'s default checkpoint.

``snakemake -j2 pitch_release --configfile configs/release.yaml`` (rules/release.smk) trains it
from nothing and ends with :func:`package_release`, which copies the checkpoint and its config
into ``notewise/pitch/release/`` with ``evaluation.json``: the recipe, the training history, the
scores on every evaluation set, the single-note / window-position / polyphonic summary and, where
the held-out SoundFont is installed, the real-instrument table beside basic-pitch.
"""
from __future__ import annotations

import json
from pathlib import Path

from notewise.atomicio import atomic_copy, atomic_write_json

from .model import CONFIG_FILE

__all__ = ["RELEASE_DIR", "package_release", "release_checkpoint", "release_evaluation"]

RELEASE_DIR = Path(__file__).parent / "release"
MODEL_FILE = "model.pth"
EVALUATION_FILE = "evaluation.json"


def release_checkpoint() -> Path:
    """The shipped checkpoint; ``FileNotFoundError`` saying what to do where it is missing."""
    path = RELEASE_DIR / MODEL_FILE
    if not path.is_file() or not (RELEASE_DIR / CONFIG_FILE).is_file():
        raise FileNotFoundError(
            f"{path}: this install ships no released pitch model; pass --checkpoint, or build"
            " it with `snakemake -j2 pitch_release --configfile configs/release.yaml`")
    return path


def release_evaluation() -> dict:
    """The shipped model's ``evaluation.json``."""
    return json.loads((RELEASE_DIR / EVALUATION_FILE).read_text())


def package_release(model_dir, scores, summary, out_dir, recipe: dict,
                    real_eval=None, melody=None) -> dict:
    """Copy ``model_dir``'s checkpoint and config into ``out_dir`` with ``evaluation.json``
    (``real_eval`` and ``melody``: the real-instrument tables, CSV, where there are)."""
    import pandas as pd

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    evaluation = {
        "recipe": recipe,
        "training": json.loads((model_dir / "metrics.json").read_text()),
        "scores": json.loads(Path(scores).read_text()),
        "summary": json.loads(Path(summary).read_text()),
        "real_eval": (pd.read_csv(real_eval).to_dict(orient="records")
                      if real_eval else None),
        "melody": pd.read_csv(melody).to_dict(orient="records") if melody else None,
    }
    atomic_copy(model_dir / MODEL_FILE, out_dir / MODEL_FILE)
    atomic_copy(model_dir / CONFIG_FILE, out_dir / CONFIG_FILE)
    atomic_write_json(out_dir / EVALUATION_FILE, evaluation)
    return evaluation
