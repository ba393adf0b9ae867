"""The ``pitch_model`` config section with schema defaults filled in, and what it builds.

Importing this module does not import torch (the Snakefile uses it). Defaults live in one place, ``workflow/schemas/config.schema.yaml`` (as for every other section);
this module fills them in recursively so a partial ``pitch_model:`` block is enough.
"""

from __future__ import annotations

import copy
from typing import Any

from notewise.config import load_schema


def _fill(schema: dict, value: Any) -> Any:
    """``value`` with the defaults of ``schema`` (an object schema) filled in, recursively."""
    if schema.get("type") != "object" or not isinstance(value, dict):
        return value
    out = copy.deepcopy(value)
    for key, sub in schema.get("properties", {}).items():
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
        if key in out:
            out[key] = _fill(sub, out[key])
    return out


def pitch_settings(config: dict) -> dict:
    """The ``pitch_model`` section of ``config`` (a full workflow config) with every default.

    Also carries the ``audio`` and ``bins`` sections the model depends on, so the result is the
    whole spec a pitch command needs.
    """
    schema = load_schema()["properties"]
    return {
        "audio": _fill(schema["audio"], config.get("audio", {})),
        "bins": _fill(schema["bins"], config.get("bins", {})),
        **_fill(schema["pitch_model"], config.get("pitch_model", {})),
    }


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
