"""The shard format: standard, deterministic, fast-deflated .npz targets; atomic writes; the
seed's DatasetWriter API."""

from __future__ import annotations

import hashlib
import json
import zipfile

import numpy as np
import pytest

from notewise.store import shards
from notewise.store.f16 import float32_to_float16, hardware_conversion
from notewise.synth.generate import generate_single_note
from notewise.store.npzfile import npz_bytes
from notewise.store.layout import NOTE_DTYPES, bytes_per_sample, samples_per_shard, sha256_file
from notewise.store.shards import DEFAULT_COMPRESSLEVEL, ShardWriter, read_targets, write_shard
from notewise.store.writer import DatasetWriter

from shardkit import fake_shard


@pytest.fixture(scope="module")
def shard():
    return fake_shard(48)


def written(tmp_path, data, name="a", **kwargs):
    wpath, tpath = tmp_path / name / "w.npy", tmp_path / name / "t.npz"
    result = write_shard(wpath, tpath, data, **kwargs)
    return wpath, tpath, result


def test_targets_are_a_standard_npz_with_the_note_table(tmp_path, shard):
    wpath, tpath, result = written(tmp_path, shard)
    with np.load(tpath) as npz:  # plain numpy reads it
        assert npz["confs"].dtype == npz["energies"].dtype == np.float16
        np.testing.assert_array_equal(npz["confs"], shard.confs.astype(np.float16))
        np.testing.assert_array_equal(npz["energies"], shard.energies.astype(np.float16))
        for key, dtype in NOTE_DTYPES.items():
            assert npz[key].dtype == dtype
            np.testing.assert_array_equal(npz[key], np.asarray(shard.notes[key], dtype))
    np.testing.assert_array_equal(np.load(wpath), shard.waveforms)
    assert result == {"samples": 48, "waveforms_sha256": sha256_file(wpath),
                      "targets_sha256": sha256_file(tpath)}


def test_deflate_level_is_fast_and_members_are_compressed(tmp_path, shard):
    _, tpath, _ = written(tmp_path, shard)
    with zipfile.ZipFile(tpath) as archive:
        infos = {i.filename: i for i in archive.infolist()}
    confs = infos["confs.npy"]
    assert DEFAULT_COMPRESSLEVEL <= 3
    assert confs.compress_type == zipfile.ZIP_DEFLATED
    assert confs.compress_size < confs.file_size / 2  # mostly zeros
    stored = npz_bytes({"confs": shard.confs.astype(np.float16)}, compresslevel=0)
    assert len(stored) > confs.compress_size * 2


def test_identical_arrays_give_identical_bytes(tmp_path, shard):
    first = written(tmp_path, shard, "a")
    second = written(tmp_path, fake_shard(48), "b")  # rebuilt from scratch, later in time
    assert first[2] == second[2]
    for a, b in zip(first[:2], second[:2]):
        assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(first[1]) as archive:
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def chunked(tmp_path, data, sizes, name="chunked", **kwargs):
    wpath, tpath = tmp_path / name / "w.npy", tmp_path / name / "t.npz"
    rows, window = data.waveforms.shape
    with ShardWriter(wpath, tpath, rows, window, data.confs.shape[1], **kwargs) as writer:
        at = 0
        for size in sizes:
            notes = {k: v[(data.notes["note_sample"] >= at) & (data.notes["note_sample"] < at + size)]
                     for k, v in data.notes.items()}
            notes["note_sample"] = notes["note_sample"] - at
            writer.append(data.waveforms[at:at + size], data.confs[at:at + size],
                          data.energies[at:at + size], notes)
            at += size
    return wpath, tpath, writer


@pytest.mark.parametrize("sizes", [[48], [1, 47], [16, 16, 16], [5, 0, 43]])
def test_a_shard_written_in_chunks_is_byte_identical(tmp_path, shard, sizes):
    whole = written(tmp_path, shard, "whole")
    parts = chunked(tmp_path, shard, sizes, sha256=True)
    assert parts[0].read_bytes() == whole[0].read_bytes()
    assert parts[1].read_bytes() == whole[1].read_bytes()
    assert parts[2].sha256 == {k: whole[2][k] for k in ("waveforms_sha256", "targets_sha256")}


def test_a_shard_writer_that_fails_or_is_short_leaves_no_file(tmp_path, shard):
    with pytest.raises(ValueError, match="2 rows appended, shard has 48"):
        chunked(tmp_path, shard, [2], name="short")
    with pytest.raises(ValueError, match="50 rows for a shard of 48"):
        with ShardWriter(tmp_path / "long" / "w.npy", tmp_path / "long" / "t.npz", 48, 256, 128) as writer:
            for rows in (slice(0, 48), slice(0, 2)):
                writer.append(shard.waveforms[rows], shard.confs[rows], shard.energies[rows])
    with pytest.raises(RuntimeError):
        with ShardWriter(tmp_path / "boom" / "w.npy", tmp_path / "boom" / "t.npz", 4, 4096, 2048):
            raise RuntimeError("generator failed")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["boom", "long", "short"]


def test_a_shard_writer_wants_notes_with_every_chunk_or_none(tmp_path, shard):
    with pytest.raises(ValueError, match="every chunk or with none"):
        with ShardWriter(tmp_path / "w.npy", tmp_path / "t.npz", 48, 256, 128) as writer:
            writer.append(shard.waveforms[:8], shard.confs[:8], shard.energies[:8], None)
            writer.append(shard.waveforms[8:], shard.confs[8:], shard.energies[8:],
                          {k: v[:0] for k, v in shard.notes.items()})


def test_shard_size_in_gigabytes():
    assert samples_per_shard(shard_size_gb=1.0) == 40_690  # 1e9 / 24,576 bytes per sample
    assert samples_per_shard(shard_size=7) == 7
    with pytest.raises(ValueError, match="exactly one"):
        samples_per_shard(shard_size=7, shard_size_gb=1.0)
    with pytest.raises(ValueError, match="shard_size_gb"):
        samples_per_shard(shard_size_gb=0)


def test_dataset_writer_is_the_seeds_api(tmp_path):
    from notewise.loading.reader import DatasetReader

    size_gb = 5.5 * bytes_per_sample() / 1e9  # five samples per shard
    with DatasetWriter(tmp_path / "ds", shard_size_gb=size_gb) as writer:
        for bin_idx in range(0, 2048, 200):  # 11 samples
            s = generate_single_note(bin_idx=bin_idx)
            writer.add_sample(waveform=s["waveform"], confs=s["confs"], energies=s["energies"])
    meta = json.loads((tmp_path / "ds" / "meta.json").read_text())
    assert [s["samples"] for s in meta["shards"]] == [5, 5, 1]
    assert meta["num_samples"] == 11 and meta["note_table"] is False
    for entry in meta["shards"]:
        digest = hashlib.sha256((tmp_path / "ds" / entry["targets"]).read_bytes()).hexdigest()
        assert digest == entry["targets_sha256"]
    reader = DatasetReader(tmp_path / "ds")
    assert int(reader[10]["target_confidence"].argmax()) == 2000
    assert set(read_targets(tmp_path / "ds" / "targets" / "shard_00002.npz")) == {
        "confs", "energies", "waveforms_crc32"}


def test_dataset_writer_keeps_note_tables_and_writes_nothing_on_error(tmp_path):
    data = fake_shard(6)
    rows = data.notes["note_sample"]
    with DatasetWriter(tmp_path / "ok", shard_size=4) as writer:
        for i in range(6):
            notes = {k: v[rows == i] for k, v in data.notes.items() if k != "note_sample"}
            writer.add_sample(data.waveforms[i], data.confs[i], data.energies[i], notes=notes)
    table = read_targets(tmp_path / "ok" / "targets" / "shard_00001.npz")
    np.testing.assert_array_equal(table["note_freq"], data.notes["note_freq"][rows >= 4])
    np.testing.assert_array_equal(table["note_sample"], rows[rows >= 4] - 4)
    with pytest.raises(RuntimeError), DatasetWriter(tmp_path / "bad", shard_size=4) as writer:
        writer.add_sample(data.waveforms[0], data.confs[0], data.energies[0])
        raise RuntimeError("interrupted")
    assert not (tmp_path / "bad" / "meta.json").exists()
    with pytest.raises(ValueError, match="notes"), DatasetWriter(tmp_path / "mixed", shard_size=4) as w:
        w.add_sample(data.waveforms[0], data.confs[0], data.energies[0], notes={})
        w.add_sample(data.waveforms[1], data.confs[1], data.energies[1])


@pytest.mark.parametrize("hardware", [False, pytest.param(True, marks=pytest.mark.skipif(
    not hardware_conversion(), reason="Numba's target CPU has no float16 conversion"))])
def test_fast_float16_conversion_has_numpys_bits(hardware):
    """Every exponent and sign with the mantissa patterns around rounding ties, plus random bits
    (NaN payloads, infinities, subnormals included), by either conversion path."""
    high = np.arange(1 << 16, dtype=np.uint32) << 16
    lows = np.array([0, 1, 0x7FF, 0x800, 0xFFF, 0x1000, 0x1001, 0x1FFF, 0x2000, 0x3000, 0x3FFF,
                     0xFFFF], np.uint32)
    random = np.random.default_rng(0).integers(0, 1 << 32, 300_000, dtype=np.uint64)
    bits = np.concatenate([(high[:, None] | lows).reshape(-1), random.astype(np.uint32)])
    values = bits.view(np.float32)
    with np.errstate(all="ignore"):
        expected = values.astype(np.float16).view(np.uint16)
    np.testing.assert_array_equal(float32_to_float16(values, hardware=hardware).view(np.uint16),
                                  expected)
    targets = fake_shard(8).confs
    assert shards.to_float16(targets).tobytes() == targets.astype(np.float16).tobytes()


def test_the_hardware_float16_path_is_refused_where_the_target_cpu_lacks_it(monkeypatch):
    from notewise.store import f16

    monkeypatch.setattr(f16, "_HARDWARE", False)
    with pytest.raises(ValueError, match="no float16 conversion instruction"):
        float32_to_float16(np.ones(4, np.float32), hardware=True)
    assert float32_to_float16(np.ones(4, np.float32)).tolist() == [1.0] * 4
