"""Window generation: contract, determinism, sample purity, counter RNG, NumPy cross-check."""
import copy
import subprocess
import sys

import numpy as np
import pytest

from notewise.synth import rng
from notewise.synth.bins import Bins
from notewise.store.layout import NOTE_DTYPES
from notewise.synth.generate import (ShardData, generate_range,
                                    generate_single_note, write_generated_shard)
from notewise.store.shards import write_shard

import numpy_reference
from shardkit import digest


BINS = Bins()
POLYPHONY = [1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6, 7, 8, 10, 12, 16]
SPEC = {
    "seed": 1234, "dataset": "train",
    "audio": {"sample_rate": 44100, "window": 4096},
    "bins": {"n_bins": 2048, "f_min": 20.0, "f_max": 5000.0},
    "labels": {"sigma_bins": 1.5},
    "settings": {"kind": "random_polyphony", "polyphony": POLYPHONY,
                 "freq_range": [20.0, 5000.0], "velocity_range": [0.1, 1.0],
                 "onset_range": [-4095, 4095], "offset_max": 8192,
                 "timbres": list(range(100))},
}
SANITY = {**SPEC, "dataset": "sanity",
          "settings": {"kind": "single_note", "samples_per_bin": 2, "velocity": 0.8,
                       "timbre": 0}}


@pytest.fixture(scope="module")
def shard(lib):
    return generate_range(SPEC, 0, 24, lib)


def test_shapes_dtypes_and_note_table(shard):
    assert shard.waveforms.shape == (24, 4096) and shard.waveforms.dtype == np.float32
    assert shard.confs.shape == shard.energies.shape == (24, 2048)
    assert shard.confs.dtype == shard.energies.dtype == np.float32
    assert list(shard.notes) == list(NOTE_DTYPES)
    lengths = {len(column) for column in shard.notes.values()}
    assert len(lengths) == 1 and lengths.pop() > 24
    for name, dtype in NOTE_DTYPES.items():
        assert shard.notes[name].dtype == dtype, name


def test_targets_and_note_table_are_consistent(shard):
    notes = shard.notes
    assert np.isfinite(shard.waveforms).all() and np.abs(shard.waveforms).max() < 1.0
    sums = shard.energies.sum(1, dtype=np.float64)
    has_notes = np.isin(np.arange(24), notes["note_sample"])
    np.testing.assert_allclose(sums[has_notes], 1.0, atol=1e-5)
    assert not shard.energies[~has_notes].any() and not shard.confs[~has_notes].any()
    assert ((notes["note_class"] >= 1) & (notes["note_class"] <= 4)).all()
    assert set(np.unique(notes["note_class"])) == {1, 2, 3, 4}
    hard = np.isin(notes["note_class"], [2, 4])
    assert (notes["note_weight"][hard] == 1.0).all() and (notes["note_weight"][~hard] <= 0.3).all()
    assert (notes["note_onset"] < 0).any(), "negative onsets are kept, not clamped"
    assert (np.minimum(notes["note_offset"], 4096) > np.maximum(notes["note_onset"], 0)).all()
    for row in range(24):
        mine = notes["note_sample"] == row
        if mine.any():
            assert notes["note_energy_share"][mine].sum() == pytest.approx(1.0, abs=1e-5)
    rows, bins = notes["note_sample"], np.round(BINS.freq_to_bin(notes["note_freq"])).astype(int)
    bins = np.clip(bins, 0, 2047)
    assert (shard.confs[rows, bins] >= 0.8 * notes["note_weight"]).all()


def test_deterministic(lib, shard):
    assert digest(generate_range(SPEC, 0, 24, lib)) == digest(shard)


def test_samples_are_pure_functions_of_their_index(lib):
    whole = generate_range(SPEC, 0, 20, lib)
    part = generate_range(SPEC, 10, 5, lib)
    assert np.array_equal(part.waveforms, whole.waveforms[10:15])
    assert np.array_equal(part.confs, whole.confs[10:15])
    assert np.array_equal(part.energies, whole.energies[10:15])
    in_part = (whole.notes["note_sample"] >= 10) & (whole.notes["note_sample"] < 15)
    for name, column in part.notes.items():
        expected = whole.notes[name][in_part]
        if name == "note_sample":
            expected = expected - 10
        assert np.array_equal(column, expected), name


def test_seed_dataset_and_settings_change_the_data(lib, shard):
    other_seed = copy.deepcopy(SPEC) | {"seed": 1235}
    other_name = copy.deepcopy(SPEC) | {"dataset": "val"}
    assert not np.array_equal(generate_range(other_seed, 0, 4, lib).waveforms,
                              shard.waveforms[:4])
    assert not np.array_equal(generate_range(other_name, 0, 4, lib).waveforms,
                              shard.waveforms[:4])


def test_settings_are_honoured(lib):
    spec = copy.deepcopy(SPEC)
    spec["settings"].update(polyphony=[3], freq_range=[100.0, 200.0],
                            velocity_range=[0.5, 0.5], onset_range=[-4095, -4095],
                            offset_max=8192, timbres=[4, 9])
    data = generate_range(spec, 0, 50, lib)
    notes = data.notes
    assert np.bincount(notes["note_sample"], minlength=50).max() <= 3
    assert ((notes["note_freq"] >= 100) & (notes["note_freq"] <= 200)).all()
    assert (notes["note_velocity"] == 0.5).all() and set(notes["note_timbre"]) <= {4, 9}
    assert (notes["note_onset"] == -4095).all() and set(notes["note_class"]) <= {1, 4}


def test_out_buffers_are_filled_in_place(lib, shard):
    out = ShardData(np.full((24, 4096), 9, np.float32), np.full((24, 2048), 9, np.float32),
                    np.full((24, 2048), 9, np.float32), {})
    data = generate_range(SPEC, 0, 24, lib, out=out)
    assert data.waveforms is out.waveforms and digest(data) == digest(shard)
    with pytest.raises(ValueError, match="out arrays"):
        generate_range(SPEC, 0, 23, lib, out=out)


@pytest.mark.parametrize("chunk_rows", [5, 24, 100])
def test_a_shard_job_writes_what_write_shard_writes(tmp_path, lib, shard, chunk_rows):
    """Generated chunk by chunk (reused buffers, a short last chunk) or whole: the same bytes."""
    write_shard(tmp_path / "w.npy", tmp_path / "t.npz", generate_range(SPEC, 7, 24, lib))
    write_generated_shard(SPEC, 7, 24, lib, tmp_path / "wc.npy", tmp_path / "tc.npz",
                          chunk_rows=chunk_rows)
    assert (tmp_path / "wc.npy").read_bytes() == (tmp_path / "w.npy").read_bytes()
    assert (tmp_path / "tc.npz").read_bytes() == (tmp_path / "t.npz").read_bytes()


def test_counter_rng_is_stable_and_uniform():
    assert rng.dataset_key(1234, "train") == np.uint64(18241995286472416091)
    assert rng.dataset_key(1234, "train") != rng.dataset_key(1234, "val")
    assert rng.dataset_key(1234, "train") != rng.dataset_key(1235, "train")
    key = rng.dataset_key(0, "x")
    draws = np.array([rng.uniform01(key, i, d) for i in range(200) for d in range(20)])
    assert 0.0 <= draws.min() and draws.max() < 1.0
    assert abs(draws.mean() - 0.5) < 0.02 and abs(draws.var() - 1 / 12) < 0.005
    ints = np.array([rng.randint(key, i, 3, -2, 2) for i in range(2000)])
    assert set(ints) == {-2, -1, 0, 1, 2} and np.bincount(ints + 2).min() > 320
    assert rng.uniform01(key, 5, 1) == rng.uniform01(key, 5, 1) != rng.uniform01(key, 5, 2)


def test_single_note_dataset(lib):
    data = generate_range(SANITY, 0, 8, lib)
    assert (data.confs.argmax(1) == np.arange(8) // 2).all()
    np.testing.assert_allclose(data.confs.max(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(data.energies.sum(1), 1.0, atol=1e-6)
    assert (data.notes["note_class"] == 4).all()
    peaks = np.abs(data.waveforms).max(1)
    assert (peaks <= 0.8 + 1e-6).all() and (peaks[2:] > 0.75).all()  # a sine at velocity 0.8
    assert not np.array_equal(data.waveforms[0], data.waveforms[1]), "random phases"
    last = generate_range(SANITY, 4094, 2, lib)
    assert (last.confs.argmax(1) == 2047).all()
    with pytest.raises(ValueError, match="samples"):
        generate_range(SANITY, 4095, 2, lib)


def test_generate_single_note_is_the_seed_api():
    sample = generate_single_note(bin_idx=5)
    assert set(sample) == {"waveform", "confs", "energies"}
    assert sample["waveform"].shape == (4096,) and sample["waveform"].dtype == np.float32
    assert sample["confs"].shape == sample["energies"].shape == (2048,)
    assert int(np.argmax(sample["confs"])) == 5 and sample["confs"][5] == pytest.approx(1.0)
    assert sample["energies"].sum() == pytest.approx(1.0, abs=1e-6)
    again = generate_single_note(bin_idx=5)
    assert np.array_equal(sample["waveform"], again["waveform"])
    assert not np.array_equal(generate_single_note(bin_idx=5, seed=1)["waveform"],
                              sample["waveform"])
    fixed = generate_single_note(bin_idx=700, phase=0.0)
    n = np.arange(4096)
    freq = float(BINS.bin_to_freq(700))
    np.testing.assert_allclose(fixed["waveform"], 0.8 * np.sin(2 * np.pi * freq / 44100 * n),
                               atol=2e-7)
    loud = generate_single_note(bin_idx=100, timbre=3, velocity=1.0)
    assert np.abs(loud["waveform"]).max() <= 0.99 + 1e-6


def test_bad_settings_fail_with_the_key_named(lib):
    bad_kind = copy.deepcopy(SPEC)
    bad_kind["settings"]["kind"] = "chords"
    with pytest.raises(ValueError, match="kind"):
        generate_range(bad_kind, 0, 1, lib)
    bad_timbre = copy.deepcopy(SPEC)
    bad_timbre["settings"]["timbres"] = [0, 100]
    with pytest.raises(ValueError, match="timbres"):
        generate_range(bad_timbre, 0, 1, lib)
    bad_range = copy.deepcopy(SPEC)
    bad_range["settings"]["onset_range"] = [10, -10]
    with pytest.raises(ValueError, match="onset_range"):
        generate_range(bad_range, 0, 1, lib)


@pytest.mark.parametrize("spec,start", [(SPEC, 40), (SANITY, 1000)])
def test_numba_path_agrees_with_the_numpy_reference(lib, spec, start):
    fast = generate_range(spec, start, 12, lib)
    slow = numpy_reference.generate_range(spec, start, 12, lib)
    assert np.abs(fast.waveforms - slow["waveforms"]).max() < 2e-5
    np.testing.assert_allclose(fast.confs, slow["confs"], atol=1e-6)
    np.testing.assert_allclose(fast.energies, slow["energies"], atol=1e-6)
    for name, column in fast.notes.items():
        np.testing.assert_allclose(column, slow["notes"][name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_generation_path_does_not_import_torch():
    code = ("import sys, notewise.synth.generate, notewise.synth.timbres; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
