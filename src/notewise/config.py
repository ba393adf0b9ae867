"""Configuration: schema defaults, semantic checks, and the per-dataset slices the rules use.

The JSON schema (``workflow/schemas/config.schema.yaml``) is the one place where keys and their
defaults are written down; Snakemake validates the merged config against it, and this module reads
the same defaults so that code and documentation cannot drift apart. What a schema cannot say
(ranges inside bounds, ordered pairs, ids that exist) is checked here, with messages that name
the key.
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

#: Dataset keys that say how many samples there are and how they are split, not what they are.
#: They are left out of the generation spec so that resizing a dataset keeps its shards' bytes.
SIZE_KEYS = ("num_samples", "shard_size", "shard_size_gb")
#: Dataset keys that decide no byte of a shard (size, or what the config check allows): kept out
#: of the generation spec, so that setting them reruns no shard job.
NOT_GENERATION_KEYS = (*SIZE_KEYS, "unlabelled_notes")


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


def _require(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"config key '{key}': {message}")


def _check_pair(value: list, key: str) -> None:
    _require(value[0] <= value[1], key, f"expected [low, high] with low <= high, got {value}")


def check_config(config: dict) -> dict:
    """Semantic checks the schema cannot express. Returns the config with defaults filled in."""
    full = with_defaults(config)
    bins, timbres = full["bins"], full["timbres"]
    nyquist = full["audio"]["sample_rate"] / 2
    _require(bins["f_min"] < bins["f_max"], "bins.f_max", f"must exceed bins.f_min ({bins['f_min']})")
    _require(bins["f_max"] < nyquist, "bins.f_max", f"must be below Nyquist ({nyquist} Hz)")
    for name, ds in full["datasets"].items():
        key = f"datasets.{name}"
        if ds["kind"] == "single_note":
            _require(ds["timbre"] < timbres["count"], f"{key}.timbre",
                     f"timbre id {ds['timbre']} does not exist (timbres.count = {timbres['count']})")
            continue
        if ds["kind"] == "midi_render":
            from notewise.music.checks import check_music_settings

            check_music_settings(ds, key, timbres["count"])
            continue
        if ds["kind"] == "soundfont_render":
            from notewise.music.checks import check_soundfont_settings

            check_soundfont_settings(ds, key)
            continue
        for pair in ("freq_range", "velocity_range", "onset_range"):
            _check_pair(ds[pair], f"{key}.{pair}")
        low, high = ds["freq_range"]
        _require(low > 0 and high < nyquist, f"{key}.freq_range",
                 f"{ds['freq_range']} must lie in (0, {nyquist}) Hz")
        _require(ds["unlabelled_notes"] or bins["f_min"] <= low and high <= bins["f_max"],
                 f"{key}.freq_range", f"{ds['freq_range']} reaches beyond the bins "
                 f"[{bins['f_min']}, {bins['f_max']}] Hz: those notes would sound but be labelled"
                 " as silence (set unlabelled_notes: true if that is wanted)")
        _require(ds["onset_range"][1] <= ds["offset_max"], f"{key}.onset_range",
                 f"onsets up to {ds['onset_range'][1]} exceed offset_max ({ds['offset_max']}):"
                 " a note cannot end before it starts")
        window = full["audio"]["window"]
        _require(ds["onset_range"][0] > -ds["offset_max"], f"{key}.onset_range",
                 "notes starting before -offset_max can never be visible")
        _require(ds["onset_range"][0] < window, f"{key}.onset_range",
                 f"the lowest onset must be inside the window (< {window})")
        ids = ds["timbres"]
        if ids != "all":
            bad = [t for t in ids if t >= timbres["count"]]
            _require(not bad, f"{key}.timbres",
                     f"timbre ids {bad} do not exist (timbres.count = {timbres['count']})")
    return full


def num_samples(config: dict, dataset: str) -> int:
    full = with_defaults(config)
    ds = full["datasets"][dataset]
    if ds["kind"] == "single_note":
        return full["bins"]["n_bins"] * ds["samples_per_bin"]
    return ds["num_samples"]


def shard_plan(config: dict, dataset: str) -> list[tuple[int, int]]:
    """``(start, count)`` of each shard of ``dataset``; the last one may be partial."""
    from notewise.store.layout import samples_per_shard

    full = with_defaults(config)
    ds = full["datasets"][dataset]
    per_shard = samples_per_shard(
        shard_size=ds.get("shard_size"),
        shard_size_gb=ds.get("shard_size_gb"),
        window=full["audio"]["window"],
        n_bins=full["bins"]["n_bins"],
    )
    total = num_samples(config, dataset)
    return [(start, min(per_shard, total - start)) for start in range(0, total, per_shard)]


def generation_spec(config: dict, dataset: str) -> dict:
    """Everything that determines a dataset's sample bytes, except how many and how split."""
    full = with_defaults(config)
    settings = {k: v for k, v in full["datasets"][dataset].items()
                if k not in NOT_GENERATION_KEYS}
    if settings.get("timbres") == "all":
        settings["timbres"] = list(range(full["timbres"]["count"]))
    return {
        "seed": full["seed"],
        "dataset": dataset,
        "audio": full["audio"],
        "bins": full["bins"],
        "labels": full["labels"],
        "settings": settings,
    }


def canonical_json(value: Any) -> str:
    """Stable JSON text (sorted keys, no spaces): equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
