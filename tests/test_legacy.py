"""Legacy V1 shards (``shard_NNNNN.npz`` with waveforms/confs/energies): read as they are, and
converted by ``notewise convert-legacy``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from notewise.cli import main
from notewise.store.legacy import convert_legacy, is_legacy_dataset
from notewise.loading.reader import DatasetReader
from notewise.store.validate import validate_dataset_dir

from shardkit import make_legacy_fixture

SIZES = [12, 12, 5]


@pytest.fixture()
def v1(tmp_path):
    source = tmp_path / "v1"
    shards = make_legacy_fixture(source, SIZES)
    (source / "meta.json").write_text(json.dumps({"num_samples": 29, "note": "seed layout"}))
    arrays = {key: np.concatenate([getattr(s, key) for s in shards])
              for key in ("waveforms", "confs", "energies")}
    return source, arrays


def test_v1_directory_reads_as_stored(v1):
    source, arrays = v1
    assert is_legacy_dataset(source)
    reader = DatasetReader(source)
    assert len(reader) == 29 and reader.layout.legacy
    item = reader[13]
    assert item["waveform"].shape == (1, arrays["waveforms"].shape[1])
    np.testing.assert_array_equal(item["waveform"][0].numpy(), arrays["waveforms"][13])
    np.testing.assert_array_equal(item["target_confidence"].numpy(), arrays["confs"][13])
    batch = reader.get_batch([28, 0, 12])
    np.testing.assert_array_equal(batch["target_energy"].numpy(), arrays["energies"][[28, 0, 12]])
    assert batch["target_energy"].dtype == torch.float32


def test_convert_legacy_command(v1, tmp_path):
    source, arrays = v1
    destination = tmp_path / "v2"
    assert main(["convert-legacy", str(source), str(destination)]) == 0
    meta = json.loads((destination / "meta.json").read_text())
    assert meta["format"]["version"] == 2 and meta["num_samples"] == 29
    assert meta["note_table"] is False
    assert meta["converted_from"]["meta"]["note"] == "seed layout"
    assert [s["samples"] for s in meta["shards"]] == SIZES
    assert not is_legacy_dataset(destination)
    reader = DatasetReader(destination, preload=True)
    batch = reader.get_batch(np.arange(29))
    np.testing.assert_array_equal(batch["waveform"][:, 0].numpy(), arrays["waveforms"])
    stored = arrays["confs"].astype(np.float16).astype(np.float32)  # targets are float16 now
    np.testing.assert_array_equal(batch["target_confidence"].numpy(), stored)
    summary = validate_dataset_dir(destination)  # integrity checks and sha256 against meta.json
    assert summary["num_samples"] == 29


def test_conversion_is_deterministic(v1, tmp_path):
    source, _ = v1
    first = convert_legacy(source, tmp_path / "a")
    second = convert_legacy(source, tmp_path / "b")
    assert first["shards"] == second["shards"]


def test_bad_sources_are_named(tmp_path, v1):
    source, _ = v1
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        convert_legacy(tmp_path / "empty", tmp_path / "out")
    assert main(["convert-legacy", str(tmp_path / "empty"), str(tmp_path / "out")]) == 1
    (source / "shard_00001.npz").rename(source / "shard_00007.npz")
    with pytest.raises(ValueError, match="numbered"):
        convert_legacy(source, tmp_path / "out")
    (source / "shard_00007.npz").unlink()
    np.savez(source / "shard_00001.npz", waveforms=np.zeros((2, 8), np.float32))
    with pytest.raises(ValueError, match="shard_00001.npz.*missing"):
        convert_legacy(source, tmp_path / "out2")
