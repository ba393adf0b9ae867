"""The config as the rules use it: the semantic check, and per dataset its generation spec (what
decides its bytes), its size and its shard plan.

The *generation spec* of a dataset is everything that determines its shards' bytes except the
sample range (``docs/architecture.md``); a shard job gets it plus ``start`` and ``count``.
"""
from __future__ import annotations

from notewise import kinds
from notewise.config import require, with_defaults
from notewise.store.layout import samples_per_shard

#: Dataset keys that say how many samples there are and how they are split, not what they are.
#: They are left out of the generation spec so that resizing a dataset keeps its shards' bytes.
SIZE_KEYS = ("num_samples", "shard_size", "shard_size_gb")
#: Dataset keys that decide no byte of a shard (size, or what the config check allows): kept out
#: of the generation spec, so that setting them reruns no shard job.
NOT_GENERATION_KEYS = (*SIZE_KEYS, "unlabelled_notes")


def check_config(config: dict) -> dict:
    """Semantic checks the schema cannot express: the bins, then each dataset by its kind's
    check (``notewise.kinds``). Returns the config with defaults filled in."""
    full = with_defaults(config)
    bins = full["bins"]
    nyquist = full["audio"]["sample_rate"] / 2
    require(bins["f_min"] < bins["f_max"], "bins.f_max", f"must exceed bins.f_min ({bins['f_min']})")
    require(bins["f_max"] < nyquist, "bins.f_max", f"must be below Nyquist ({nyquist} Hz)")
    for name, ds in full["datasets"].items():
        kinds.kind(ds["kind"]).check(ds, f"datasets.{name}", full)
    return full


def num_samples(config: dict, dataset: str) -> int:
    full = with_defaults(config)
    ds = full["datasets"][dataset]
    return kinds.kind(ds["kind"]).num_samples(ds, full)


def shard_plan(config: dict, dataset: str) -> list[tuple[int, int]]:
    """``(start, count)`` of each shard of ``dataset``; the last one may be partial."""
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
