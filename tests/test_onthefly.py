"""The on-the-fly dataset regenerates exactly what the stored shards hold, with no shard on disk."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from notewise.loading.onthefly import OnTheFlyDataset
from notewise.loading.batches import BatchLoader, ShardBatchSampler
from notewise.loading.reader import DatasetReader

from shardkit import build_with_cli

CONFIG = {
    "seed": 11,
    "timbres": {"count": 12},
    "datasets": {
        "mix": {"kind": "random_polyphony", "num_samples": 20, "shard_size": 8,
                "polyphony": [0, 1, 3, 6], "timbres": [0, 4, 7, 11]},
        "sine": {"kind": "single_note", "samples_per_bin": 1, "shard_size": 2048},
    },
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    return build_with_cli(results, CONFIG, "mix")


def as_bytes(batch: dict) -> dict:
    return {k: v.numpy().tobytes() for k, v in batch.items()}


def test_items_equal_the_stored_shards_byte_for_byte(built):
    stored = DatasetReader(built)
    fly = OnTheFlyDataset.from_config(CONFIG, "mix")
    assert len(fly) == len(stored) == 20
    for i in range(len(stored)):
        a, b = stored[i], fly[i]
        assert set(a) == set(b)
        for key in a:
            assert a[key].dtype == b[key].dtype == torch.float32
            assert a[key].shape == b[key].shape
            assert a[key].numpy().tobytes() == b[key].numpy().tobytes(), (i, key)


def test_batches_in_any_order_equal_the_stored_batches(built):
    stored = DatasetReader(built)
    fly = OnTheFlyDataset.from_meta(built)  # the spec and size from meta.json, timbres beside it
    indices = [17, 3, 3, 9, 0, 12]  # unsorted, across shards, with a repeat
    assert as_bytes(fly.get_batch(indices)) == as_bytes(stored.get_batch(indices))
    assert fly.get_batch(indices)["waveform"].shape == (6, 1, 4096)


def test_note_table_matches_the_shard(built):
    from notewise.store.shards import read_targets

    stored = read_targets(built / "targets" / "shard_00001.npz")
    notes = OnTheFlyDataset.from_config(CONFIG, "mix").arrays(np.arange(8, 16)).notes
    for key, column in notes.items():
        assert column.tobytes() == stored[key].tobytes(), key


def test_single_note_kind_and_float32_targets():
    fly = OnTheFlyDataset.from_config(CONFIG, "sine")
    assert len(fly) == 2048
    item = fly[700]
    assert int(item["target_confidence"].argmax()) == 700
    exact = OnTheFlyDataset.from_config(CONFIG, "sine", round_targets=False)
    assert exact[700]["target_energy"].sum().item() == pytest.approx(1.0, abs=1e-5)
    assert not torch.equal(exact[700]["target_energy"], item["target_energy"])  # not rounded


def test_batch_loader_and_dataloader_workers_train_without_shards():
    fly = OnTheFlyDataset.from_config(CONFIG, "mix")
    sampler = ShardBatchSampler(fly, batch_size=8, shuffle=True, seed=3)
    seen = []
    for batch, indices in zip(BatchLoader(fly, sampler, prefetch=1), iter(sampler)):
        assert as_bytes(batch) == as_bytes(fly.get_batch(indices))
        seen.extend(indices.tolist())
    assert sorted(seen) == list(range(20))
    loader = torch.utils.data.DataLoader(fly, batch_size=5, num_workers=2)
    batches = list(loader)
    assert [b["waveform"].shape for b in batches] == [(5, 1, 4096)] * 4
    assert torch.equal(torch.cat([b["waveform"] for b in batches]),
                       fly.get_batch(np.arange(20))["waveform"])


def test_errors_name_the_problem(tmp_path):
    fly = OnTheFlyDataset.from_config(CONFIG, "mix")
    with pytest.raises(IndexError, match="20"):
        fly.get_batch([20])
    with pytest.raises(IndexError):
        fly[-21]
    with pytest.raises(KeyError, match="nope"):
        OnTheFlyDataset.from_config(CONFIG, "nope")
    (tmp_path / "meta.json").write_text('{"num_samples": 4}')
    with pytest.raises(ValueError, match="meta.json"):
        OnTheFlyDataset.from_meta(tmp_path)
