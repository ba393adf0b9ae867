"""DatasetReader: items as the SPEC says, lazy (mmap + bounded targets cache) and preloaded,
DataLoader workers, the sorted-batch path, ShardBatchSampler and BatchLoader."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from notewise.loading.batches import BatchLoader, ShardBatchSampler
from notewise.loading.reader import DatasetReader, read_target_arrays
from notewise.store.layout import targets_path, waveform_path

from shardkit import N_BINS, WINDOW, fake_shard, write_dataset

SIZES = [24, 24, 24, 10]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("reader") / "ds"
    write_dataset(root, SIZES)
    return root


@pytest.fixture(scope="module")
def expected():
    """The dataset's arrays as a reader must return them (targets through float16)."""
    shards = [fake_shard(n, seed=i) for i, n in enumerate(SIZES)]
    return {"waveform": np.concatenate([s.waveforms for s in shards]),
            "target_confidence": np.concatenate([s.confs for s in shards]).astype(np.float16).astype(np.float32),
            "target_energy": np.concatenate([s.energies for s in shards]).astype(np.float16).astype(np.float32)}


def check_batch(batch, expected, indices):
    assert batch["waveform"].shape == (len(indices), 1, WINDOW)
    for key, values in expected.items():
        assert batch[key].dtype == torch.float32
        np.testing.assert_array_equal(batch[key].reshape(len(indices), -1).numpy(), values[indices])


@pytest.mark.parametrize("preload", [False, True])
def test_items_are_the_seeds_dict_of_float32_tensors(dataset, expected, preload):
    reader = DatasetReader(dataset, preload=preload)
    assert len(reader) == sum(SIZES)
    for i in (0, 23, 24, 71, 72, 81, -1):
        item = reader[i]
        assert set(item) == {"waveform", "target_confidence", "target_energy"}
        assert item["waveform"].shape == (1, WINDOW)
        assert item["target_confidence"].shape == item["target_energy"].shape == (N_BINS,)
        for key, values in expected.items():
            assert item[key].dtype == torch.float32
            np.testing.assert_array_equal(item[key].reshape(-1).numpy(), values[i])
    with pytest.raises(IndexError, match="82"):
        reader[82]


def test_lazy_reader_memory_maps_and_bounds_its_targets_cache(dataset, monkeypatch):
    reader = DatasetReader(dataset, preload=False, cache_shards=2)
    loads = []
    original = reader._load_shard
    monkeypatch.setattr(reader, "_load_shard", lambda s: loads.append(s) or original(s))
    for i in range(len(reader)):
        reader[i]
        assert len(reader._cache) <= 2
    assert loads == [1, 2, 3]  # shard 0 was cached when the reader probed its shapes
    assert all(isinstance(m, np.memmap) for m in reader._waveform_maps.values())
    reader[0]
    assert loads[-1] == 0  # evicted, so read again


@pytest.mark.parametrize("preload", [False, True])
def test_get_batch_any_order_across_shards(dataset, expected, preload):
    reader = DatasetReader(dataset, preload=preload)
    for indices in ([3, 4, 5, 6], [70, 2, 30, 30, 81, 0], list(range(20, 50))):
        check_batch(reader.get_batch(indices), expected, np.array(indices))
    check_batch(reader.get_batch(torch.tensor([5, 1])), expected, np.array([5, 1]))
    with pytest.raises(IndexError, match="82"):
        reader.get_batch([0, 82])


def test_dataloader_with_two_workers(dataset, expected):
    reader = DatasetReader(dataset, preload=False)
    loader = torch.utils.data.DataLoader(reader, batch_size=16, shuffle=False, num_workers=2)
    batches = list(loader)
    assert len(batches) == 6
    waveforms = torch.cat([b["waveform"] for b in batches])
    assert waveforms.shape == (82, 1, WINDOW)
    np.testing.assert_array_equal(waveforms[:, 0].numpy(), expected["waveform"])
    confs = torch.cat([b["target_confidence"] for b in batches]).numpy()
    np.testing.assert_array_equal(confs, expected["target_confidence"])


def test_batch_sampler_covers_each_index_once_in_sorted_in_shard_batches(dataset):
    reader = DatasetReader(dataset)
    sampler = ShardBatchSampler(reader, batch_size=8, seed=4)
    epoch0 = list(sampler)
    assert sorted(np.concatenate(epoch0).tolist()) == list(range(82))
    assert all((np.diff(b) > 0).all() for b in epoch0)
    starts = np.array([0, 24, 48, 72])
    crossing = sum(len(set(np.searchsorted(starts, b, side="right"))) > 1 for b in epoch0)
    assert crossing <= len(SIZES)  # only where one shard's rest meets the next shard
    assert [b.tolist() for b in sampler] == [b.tolist() for b in epoch0]  # deterministic
    sampler.set_epoch(1)
    assert [b.tolist() for b in sampler] != [b.tolist() for b in epoch0]
    ranks = [list(ShardBatchSampler(reader, 8, seed=4, rank=r, world_size=2)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1])
    assert not set(np.concatenate(ranks[0]).tolist()) & set(np.concatenate(ranks[1]).tolist())


@pytest.mark.parametrize("prefetch, cache", [(0, 2), (2, 2), (2, 3)])
def test_batch_loader_returns_ready_tensors_and_reads_each_shard_once(dataset, expected, prefetch,
                                                                      cache, monkeypatch):
    reader = DatasetReader(dataset, preload=False, cache_shards=cache)
    reader._cache.clear()
    loads, threads = [], set()
    original = reader._load_shard

    def load(shard):
        loads.append(shard)
        threads.add(threading.current_thread().name.split("_")[0])
        return original(shard)

    monkeypatch.setattr(reader, "_load_shard", load)
    sampler = ShardBatchSampler(reader, batch_size=8, seed=2)
    for batch, indices in zip(BatchLoader(reader, sampler, prefetch=prefetch), sampler):
        check_batch(batch, expected, indices)
    assert sorted(loads) == [0, 1, 2, 3]  # one decompression per shard per epoch
    assert ("shard-prefetch" in threads) == (prefetch > 0 and cache >= 3)  # read-ahead thread


def test_batch_loader_hands_errors_to_the_consumer(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, [8, 8])
    reader = DatasetReader(root)
    targets_path(root, 1).write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="shard_00001.npz: unreadable targets"):
        for _ in BatchLoader(reader, ShardBatchSampler(reader, 4, shuffle=False), prefetch=2):
            pass


@pytest.mark.parametrize("shard", [0, 1])
def test_a_truncated_waveform_file_is_named(tmp_path, shard):
    """It raised NumPy's ``mmap length is greater than file size``, naming no file."""
    root = tmp_path / "ds"
    write_dataset(root, [8, 8])
    path = waveform_path(root, shard)
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(ValueError, match=rf"shard_0000{shard}\.npy: unreadable waveforms "
                       r"\(.* bytes, its header \(8, \d+\) float32 needs .* \(truncated\)\)"):
        DatasetReader(root).get_batch(range(16))


def _flip_bit(path, position, bit=0):
    data = bytearray(path.read_bytes())
    data[position] ^= 1 << bit
    path.write_bytes(bytes(data))


def _silent_target_flip(root, shard):
    """Flip bits inside the targets' deflate streams until one still inflates, to other data."""
    path = targets_path(root, shard)
    clean = path.read_bytes()
    reference = read_target_arrays(path)
    for position in range(200, len(clean) - 200, 7):
        _flip_bit(path, position, bit=position % 8)
        try:
            changed = read_target_arrays(path)
        except ValueError:
            changed = None
        if changed is not None and any(not np.array_equal(changed[k], reference[k])
                                       for k in reference):
            return path
        path.write_bytes(clean)
    raise AssertionError("no single-bit flip reads back as changed data")


def test_verify_refuses_flipped_bits_the_trusting_reader_returns_as_data(tmp_path, expected):
    root = tmp_path / "ds"
    write_dataset(root, SIZES)
    check_batch(DatasetReader(root, verify=True).get_batch(range(82)), expected, np.arange(82))
    damaged = _silent_target_flip(root, 1)
    wave = waveform_path(root, 2)
    _flip_bit(wave, wave.stat().st_size - 5 * WINDOW, bit=3)
    read = DatasetReader(root).get_batch(range(82))  # the trusting reader: damage read as data
    assert not np.array_equal(read["waveform"].reshape(82, -1).numpy(), expected["waveform"])
    assert not all(np.array_equal(read[k].numpy(), expected[k]) for k in ("target_confidence",
                                                                           "target_energy"))
    with pytest.raises(ValueError, match=rf"{damaged.name}: unreadable targets .*CRC-32"):
        DatasetReader(root, verify=True).get_batch(range(24, 48))
    with pytest.raises(ValueError, match=rf"{wave.name}: waveform bytes have CRC-32 .* "
                       r"shard_00002.npz recorded"):
        DatasetReader(root, verify=True).get_batch(range(48, 72))
    with pytest.raises(ValueError, match="shard_00001.npz: unreadable targets"):
        DatasetReader(root, preload=True, verify=True)


def test_verify_checks_each_shard_once_per_process(dataset, monkeypatch):
    from notewise.loading import reader as reader_module
    from notewise.store.shards import waveform_crc32

    calls = []
    monkeypatch.setattr(reader_module, "waveform_crc32",
                        lambda a: calls.append(1) or waveform_crc32(a))
    reader = DatasetReader(dataset, verify=True, cache_shards=1)
    for _ in range(2):
        for batch in BatchLoader(reader, ShardBatchSampler(reader, 16, shuffle=True), prefetch=2):
            pass
    assert len(calls) == len(SIZES)


def test_reader_without_meta_scans_the_directory(tmp_path, expected):
    root = tmp_path / "ds"
    write_dataset(root, SIZES, with_meta=False)
    with pytest.warns(UserWarning, match="no meta.json"):
        reader = DatasetReader(root)
    assert len(reader) == 82 and reader.shard_bounds == [(0, 24), (24, 24), (48, 24), (72, 10)]
    check_batch(reader.get_batch([81, 0]), expected, np.array([81, 0]))
    with pytest.raises(FileNotFoundError, match="no shards"):
        DatasetReader(tmp_path / "empty")


def test_device_needs_preload(dataset):
    with pytest.raises(ValueError, match="preload=True"):
        DatasetReader(dataset, preload=False, device="cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.gpu
def test_preloaded_on_the_gpu(dataset, expected):
    reader = DatasetReader(dataset, preload=True, device="cuda")
    batch = reader.get_batch([70, 2, 30])
    assert all(v.device.type == "cuda" for v in batch.values())
    assert reader[5]["waveform"].device.type == "cuda"
    check_batch({k: v.cpu() for k, v in batch.items()}, expected, np.array([70, 2, 30]))
    moved = next(iter(BatchLoader(DatasetReader(dataset), ShardBatchSampler(82, 4), device="cuda")))
    assert moved["waveform"].device.type == "cuda"


@pytest.mark.parametrize("level", [0, 1, 9])
def test_fast_target_reads_equal_zipfiles_at_any_deflate_level(tmp_path, level):
    from notewise.loading.reader import read_target_arrays
    from notewise.store.shards import read_targets, write_shard

    write_shard(tmp_path / "w.npy", tmp_path / "t.npz", fake_shard(16), compresslevel=level)
    fast, checked = read_target_arrays(tmp_path / "t.npz"), read_targets(tmp_path / "t.npz")
    for key in ("confs", "energies"):
        assert fast[key].dtype == np.float16
        assert fast[key].tobytes() == checked[key].tobytes()


def test_a_dataset_without_meta_is_read_only_with_a_warning(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, [16], with_meta=False)
    with pytest.warns(UserWarning, match="no meta.json"):
        assert len(DatasetReader(root)) == 16


def test_shards_of_another_build_beside_meta_are_refused_by_name(tmp_path):
    from shardkit import make_spec
    from notewise.store.shards import write_shard

    root = tmp_path / "ds"
    spec = write_dataset(root, [16, 16])
    write_shard(waveform_path(root, 1), targets_path(root, 1), fake_shard(8, spec or make_spec()))
    with pytest.raises(ValueError, match="shard_00001.npy: 8 samples"):
        DatasetReader(root)
    waveform_path(root, 1).unlink()
    with pytest.raises(FileNotFoundError, match="shard_00001.npy: listed in"):
        DatasetReader(root)


def test_a_shard_of_another_build_with_the_same_size_is_refused_when_read(tmp_path):
    """A rebuild (new settings) replaced shard 1 beside the old meta.json: same sample count, so
    only the build id tells; the reader raises on that shard instead of mixing two builds."""
    from notewise.store.shards import write_shard

    root = tmp_path / "ds"
    spec = write_dataset(root, [16, 16], build="aaaaaaaaaaaaaaaa")
    write_shard(waveform_path(root, 1), targets_path(root, 1), fake_shard(16, spec, seed=9),
                build="bbbbbbbbbbbbbbbb")
    reader = DatasetReader(root)
    assert reader[3]["waveform"].shape == (1, WINDOW)  # shard 0 is of meta.json's build
    with pytest.raises(ValueError, match=r"shard_00001.npz: a shard of build bbbb.*describes build aaaa"):
        reader.get_batch([20])
