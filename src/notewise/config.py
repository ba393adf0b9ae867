"""Configuration: the schema, its defaults, and the helpers of the semantic checks.

The JSON schema (``workflow/schemas/config.schema.yaml``) is the one place where keys and their
defaults are written down; Snakemake validates the merged config against it, and this module reads
the same defaults so that code and documentation cannot drift apart. What a schema cannot say
(ranges inside bounds, ordered pairs, ids that exist) is checked by ``require`` and friends, with
messages that name the key: ``notewise.workflow.specs.check_config`` runs the common checks and
each dataset kind's own (``notewise.kinds``). A leaf: this module imports nothing of notewise.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"

class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key."""


@functools.cache
def load_schema() -> dict:
    with open(SCHEMA_PATH) as fh:
        return yaml.safe_load(fh)


def fill_defaults(schema: dict, value: Any) -> Any:
    """A copy of ``value`` with the defaults of ``schema`` filled in, recursively through objects."""
    if not isinstance(value, dict):
        return value
    out = copy.deepcopy(value)
    for key, sub in schema.get("properties", {}).items():
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
        if key in out:
            out[key] = fill_defaults(sub, out[key])
    return out


def section_settings(config: dict, section: str) -> dict:
    """``config[section]`` with every default of the schema's top-level ``section`` filled in,
    nested ones too: the one place a section's settings are completed."""
    return fill_defaults(load_schema()["properties"][section], config.get(section) or {})


def _property_defaults(properties: dict) -> dict:
    return {key: sub["default"] for key, sub in properties.items() if "default" in sub}


def section_defaults(section: str) -> dict:
    """Defaults of a top-level section (``audio``, ``bins``, ``labels``, ``timbres``)."""
    return _property_defaults(load_schema()["properties"][section].get("properties", {}))


def dataset_defaults(kind: str) -> dict:
    definitions = load_schema()["$defs"]
    if kind not in definitions or kind == "shard_size":
        raise ConfigError(f"unknown dataset kind {kind!r}")
    return _property_defaults(definitions[kind]["properties"])


def with_defaults(config: dict) -> dict:
    """A deep copy of ``config`` with every schema default filled in."""
    full = copy.deepcopy(config)
    for section in ("audio", "bins", "labels", "timbres"):
        full[section] = {**section_defaults(section), **full.get(section, {})}
    full["datasets"] = {
        name: {**dataset_defaults(ds["kind"]), **ds} for name, ds in full.get("datasets", {}).items()
    }
    return full


def require(condition: bool, key: str, message: str) -> None:
    """Raise ``ConfigError`` naming ``key`` unless ``condition``."""
    if not condition:
        raise ConfigError(f"config key '{key}': {message}")


def check_pair(value: list, key: str) -> None:
    require(value[0] <= value[1], key, f"expected [low, high] with low <= high, got {value}")


def check_timbre_ids(ids, key: str, n_timbres: int) -> None:
    """Every id of ``ids`` names a timbre of a library of ``n_timbres``."""
    bad = [t for t in ids if t >= n_timbres]
    require(not bad, key, f"timbre ids {bad} do not exist (timbres.count = {n_timbres})")


def kind_settings(settings: dict) -> dict:
    """A dataset's ``settings`` with its kind's schema defaults filled in, nested ones too."""
    return fill_defaults(load_schema()["$defs"][settings["kind"]], settings)


def canonical_json(value: Any) -> str:
    """Stable JSON text (sorted keys, no spaces): equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
