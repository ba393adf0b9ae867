"""The ``pitch_model`` config section with schema defaults filled in, and what it builds.

Importing this module does not import torch (the Snakefile uses it). Defaults live in one place, ``workflow/schemas/config.schema.yaml`` (as for every other section);
this module fills them in recursively so a partial ``pitch_model:`` block is enough.
"""

from __future__ import annotations


from notewise.config import fill_defaults, load_schema


def pitch_settings(config: dict) -> dict:
    """The ``pitch_model`` section of ``config`` (a full workflow config) with every default.

    Also carries the ``audio``, ``bins`` and ``labels`` sections the model and its training
    depend on, so the result is the whole spec a pitch command needs.
    """
    schema = load_schema()["properties"]
    return {
        "audio": fill_defaults(schema["audio"], config.get("audio", {})),
        "bins": fill_defaults(schema["bins"], config.get("bins", {})),
        "labels": fill_defaults(schema["labels"], config.get("labels", {})),
        **fill_defaults(schema["pitch_model"], config.get("pitch_model", {})),
    }


#: The sections of pitch settings a trained model's weights depend on: a change to any other
#: (decoding, evaluation, plots) retrains nothing and resumes a checkpoint.
TRAINING_SECTIONS = ("audio", "bins", "labels", "model", "train")


def training_settings(settings: dict) -> dict:
    return {key: settings[key] for key in TRAINING_SECTIONS}


def model_config(settings: dict):
    """The ``PitchModelConfig`` a settings dict (from :func:`pitch_settings`) describes."""
    from .model import PitchModelConfig

    return PitchModelConfig.from_dict({
        **settings["model"],
        "n_bins": settings["bins"]["n_bins"],
        "f_min": settings["bins"]["f_min"],
        "f_max": settings["bins"]["f_max"],
        "sample_rate": settings["audio"]["sample_rate"],
        "window": settings["audio"]["window"],
    })
