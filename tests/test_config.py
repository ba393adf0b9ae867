"""Config defaults, semantic checks, shard plans and generation specs."""

import copy

import jsonschema
import pytest
import yaml

from notewise.config import ConfigError, SCHEMA_PATH, load_schema
from notewise.workflow.specs import check_config, generation_spec, num_samples, shard_plan
from notewise.config import REPO_ROOT

DEFAULT_CONFIG = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())


def config_with(**datasets):
    config = copy.deepcopy(DEFAULT_CONFIG)
    config["datasets"] = datasets
    return config


def test_default_config_passes_schema_and_checks():
    jsonschema.validate(DEFAULT_CONFIG, load_schema())
    full = check_config(DEFAULT_CONFIG)
    assert full["datasets"]["val"]["polyphony"] == [1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6, 7, 8, 10, 12, 16]
    assert full["datasets"]["sanity"]["timbre"] == 0


def test_full_size_override_gives_one_million_samples_in_100_shards():
    config = copy.deepcopy(DEFAULT_CONFIG)
    override = yaml.safe_load((REPO_ROOT / "configs" / "full.yaml").read_text())
    config["datasets"]["train"].update(override["datasets"]["train"])
    plan = shard_plan(config, "train")
    assert len(plan) == 100
    assert sum(count for _, count in plan) == 1_000_000


def test_sanity_size_is_bins_times_samples_per_bin():
    config = config_with(s={"kind": "single_note", "samples_per_bin": 3, "shard_size": 1000})
    assert num_samples(config, "s") == 2048 * 3
    plan = shard_plan(config, "s")
    assert plan[-1] == (6000, 144)
    assert [start for start, _ in plan] == [0, 1000, 2000, 3000, 4000, 5000, 6000]


def test_shard_size_gb_is_converted_to_a_count():
    config = config_with(t={"kind": "random_polyphony", "num_samples": 100_000, "shard_size_gb": 0.5})
    (start, count), *_ = shard_plan(config, "t")
    assert start == 0
    assert 10_000 < count < 40_000  # 0.5 GB of 16 KiB waveforms plus float16 targets


def test_generation_spec_leaves_out_size_keys_and_expands_timbres():
    config = config_with(t={"kind": "random_polyphony", "num_samples": 10, "shard_size": 5})
    spec = generation_spec(config, "t")
    assert "num_samples" not in spec["settings"] and "shard_size" not in spec["settings"]
    assert spec["settings"]["timbres"] == list(range(100))
    bigger = config_with(t={"kind": "random_polyphony", "num_samples": 99, "shard_size": 7})
    assert generation_spec(bigger, "t") == spec


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"freq_range": [5000.0, 20.0]}, "datasets.t.freq_range"),
        ({"freq_range": [20.0, 30000.0]}, "datasets.t.freq_range"),
        ({"velocity_range": [0.9, 0.1]}, "datasets.t.velocity_range"),
        ({"onset_range": [5000, 6000]}, "datasets.t.onset_range"),
        ({"timbres": [3, 100]}, "datasets.t.timbres"),
        ({"freq_range": [5.0, 15000.0]}, "datasets.t.freq_range"),  # beyond the bins: unlabelled
        ({"onset_range": [100, 5000], "offset_max": 50}, "datasets.t.onset_range"),
    ],
)
def test_bad_values_name_their_key(settings, key):
    config = config_with(t={"kind": "random_polyphony", "num_samples": 10, "shard_size": 5, **settings})
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_config(config)


@pytest.mark.parametrize(
    "dataset, fragment",
    [
        ({"kind": "random_polyphony", "num_samples": -1, "shard_size": 5}, "num_samples"),
        ({"kind": "random_polyphony", "num_samples": 10}, "shard_size"),
        ({"kind": "random_polyphony", "num_samples": 10, "shard_size": 5, "polyphonyy": [1]}, "polyphonyy"),
        ({"kind": "single_note", "samples_per_bin": 0, "shard_size": 5}, "samples_per_bin"),
        ({"kind": "chords", "num_samples": 10, "shard_size": 5}, "kind"),
    ],
)
def test_schema_rejects_bad_datasets(dataset, fragment):
    config = config_with(t=dataset)
    with pytest.raises(jsonschema.ValidationError) as excinfo:
        jsonschema.validate(config, load_schema())
    assert fragment in str(excinfo.value)


def test_schema_file_is_the_one_the_workflow_validates_with():
    assert SCHEMA_PATH == REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
    assert 'validate(config, "workflow/schemas/config.schema.yaml")' in (REPO_ROOT / "Snakefile").read_text()


def test_notes_beyond_the_bins_are_allowed_when_asked_for():
    config = config_with(t={"kind": "random_polyphony", "num_samples": 10, "shard_size": 5,
                            "freq_range": [5.0, 15000.0], "unlabelled_notes": True})
    assert check_config(config)["datasets"]["t"]["freq_range"] == [5.0, 15000.0]
