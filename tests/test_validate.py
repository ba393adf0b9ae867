"""Validation: a clean shard passes; each kind of damage fails, naming the damaged file."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest

from notewise.store.layout import targets_path, waveform_path
from notewise.store.shards import write_shard
from notewise.store.validate import (DatasetValidationError, ShardValidationError, summarize_dataset,
                                    validate_dataset_dir, validate_shard)

from shardkit import fake_shard, make_spec, write_dataset


@pytest.fixture()
def dataset(tmp_path):
    root = tmp_path / "ds"
    spec = write_dataset(root, [40, 40])
    return root, spec


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])


def flip_byte(path, fraction=0.15, at=None):
    data = bytearray(path.read_bytes())
    at = int(len(data) * fraction) if at is None else at
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def flip_header_byte(path):
    flip_byte(path, at=10)  # the first local header's time field: zip never reads it


def rewrite_with_nan(path_kind):
    def corrupt(root, spec):
        data = fake_shard(40, spec, seed=1)
        array = data.waveforms if path_kind == "waveforms" else data.confs
        array[3, 7] = np.nan
        write_shard(waveform_path(root, 1), targets_path(root, 1), data)
    return corrupt


def damage(action, which):
    def corrupt(root, spec):
        action(waveform_path(root, 1) if which == "waveforms" else targets_path(root, 1))
    return corrupt


CORRUPTIONS = {
    "truncated waveforms": (damage(truncate, "waveforms"), "waveforms", "load"),
    "truncated targets": (damage(truncate, "targets"), "targets", "load"),
    "flipped waveform byte": (damage(flip_byte, "waveforms"), "waveforms", "checksum"),
    "flipped targets byte": (damage(flip_byte, "targets"), "targets", "load"),
    "flipped zip header byte": (damage(flip_header_byte, "targets"), "targets", "container"),
    "NaN in waveforms": (rewrite_with_nan("waveforms"), "waveforms", "finite"),
    "NaN in confs": (rewrite_with_nan("targets"), "targets", "finite"),
}


def test_clean_shards_pass_with_a_full_report(dataset):
    root, spec = dataset
    report = validate_shard(waveform_path(root, 0), targets_path(root, 0), spec)
    assert report["checks"] == "all" and report["samples"] == 40 and report["note_table"]
    assert report["stats"]["energy_sum_max_error"] < 2e-3
    summary = validate_dataset_dir(root)
    assert summary["num_samples"] == 80 and summary["num_shards"] == 2


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_damage_fails_naming_the_file(dataset, name):
    root, spec = dataset
    corrupt, which, check = CORRUPTIONS[name]
    corrupt(root, spec)
    bad = waveform_path(root, 1) if which == "waveforms" else targets_path(root, 1)
    with pytest.raises(ShardValidationError) as info:
        validate_shard(waveform_path(root, 1), targets_path(root, 1), spec)
    assert info.value.path == str(bad) and info.value.check == check
    assert str(bad) in str(info.value)
    with pytest.raises(ShardValidationError, match="shard_00001"):
        validate_dataset_dir(root)


def test_a_valid_but_different_shard_fails_against_meta(dataset):
    root, spec = dataset
    write_shard(waveform_path(root, 1), targets_path(root, 1), fake_shard(40, spec, seed=9))
    validate_shard(waveform_path(root, 1), targets_path(root, 1), spec)  # fine on its own
    with pytest.raises(ShardValidationError, match="sha256") as info:
        validate_dataset_dir(root)
    assert "shard_00001" in info.value.path


@pytest.mark.parametrize("edit, fragment", [
    (lambda d: d.confs.__setitem__((0, slice(None)), 0.0), "peaks"),  # labels lost, notes kept
    (lambda d: d.energies.__setitem__(0, d.energies[0] * 1.5), "energy"),
    (lambda d: d.waveforms.__setitem__((2, 5), 1.5), "range"),
    (lambda d: d.notes["note_class"].__setitem__(0, (d.notes["note_class"][0] % 4) + 1), "notes"),
])
def test_semantic_errors_fail_their_check(tmp_path, edit, fragment):
    spec = make_spec(polyphony=[1, 2])
    data = fake_shard(16, spec, seed=3)
    data = data._replace(notes={k: v.copy() for k, v in data.notes.items()})
    edit(data)
    write_shard(tmp_path / "waveforms" / "shard_00000.npy", tmp_path / "targets" / "shard_00000.npz", data)
    with pytest.raises(ShardValidationError, match=fragment):
        validate_shard(tmp_path / "waveforms" / "shard_00000.npy",
                       tmp_path / "targets" / "shard_00000.npz", spec)


def test_polyphony_beyond_the_setting_fails_the_dataset(tmp_path):
    spec = make_spec()
    write_dataset(tmp_path, [64], spec=spec, with_meta=False)
    report = validate_shard(waveform_path(tmp_path, 0), targets_path(tmp_path, 0), spec)
    narrow = copy.deepcopy(spec)
    narrow["settings"]["polyphony"] = [1]
    with pytest.raises(ShardValidationError, match="polyphony"):
        validate_shard(waveform_path(tmp_path, 0), targets_path(tmp_path, 0), narrow)
    with pytest.raises(DatasetValidationError, match="shards must be 0"):
        summarize_dataset([{**report, "index": 1}], spec)


def test_the_cli_fails_naming_the_file(dataset, tmp_path):
    root, spec = dataset
    flip_byte(waveform_path(root, 1))
    notewise = [sys.executable, "-m", "notewise.cli"]
    result = subprocess.run([*notewise, "check-dataset", str(root)], capture_output=True, text=True)
    assert result.returncode != 0
    assert str(waveform_path(root, 1)) in result.stderr and "checksum" in result.stderr
    import json

    result = subprocess.run([*notewise, "validate-shard", "--spec", json.dumps(spec),
                             "--waveforms", str(waveform_path(root, 1)), "--targets",
                             str(targets_path(root, 1)), "-o", str(tmp_path / "r.json")],
                            capture_output=True, text=True)
    assert result.returncode != 0 and str(waveform_path(root, 1)) in result.stderr
    assert not (tmp_path / "r.json").exists()


def test_every_flip_in_the_zip_structure_is_caught(tmp_path):
    """Flip each byte outside the members' compressed data: reading fails or the container
    check names the damage (the data itself is covered by zip's CRC-32)."""
    import zipfile

    from notewise.store.npzfile import npz_members
    from notewise.store.validate import npz_container_problem

    write_shard(tmp_path / "w.npy", tmp_path / "t.npz", fake_shard(4))
    raw = (tmp_path / "t.npz").read_bytes()
    assert npz_container_problem(raw) is None
    with zipfile.ZipFile(tmp_path / "t.npz") as archive:
        data = [(i.header_offset + 30 + len(i.filename) + 20, i.compress_size) for i in archive.infolist()]
    in_data = {p for start, size in data for p in range(start, start + size)}
    structure = [p for p in range(len(raw)) if p not in in_data]
    assert len(structure) > 500
    missed = []
    for at in structure:
        damaged = bytearray(raw)
        damaged[at] ^= 0xFF
        try:
            npz_members(bytes(damaged))
            if npz_container_problem(bytes(damaged)) is None:
                missed.append(at)
        except Exception:
            pass
    assert missed == []


def test_every_dataset_kind_has_one_complete_registry_entry():
    """Each kind the schema allows has an entry, whose generator exists; an unknown kind is named."""
    from notewise import kinds
    from notewise.config import load_schema

    schema_kinds = load_schema()["properties"]["datasets"]["additionalProperties"]["properties"]
    assert set(kinds.KINDS) == set(schema_kinds["kind"]["enum"])
    for kind in kinds.KINDS.values():
        assert callable(kind.generate()) and callable(kind.check)
        assert callable(kind.shard_notes) and callable(kind.distributions) and kind.code
    with pytest.raises(ValueError, match="unknown dataset kind 'chirps'"):
        kinds.kind("chirps")


def test_check_dataset_refuses_shards_no_meta_describes(dataset):
    root, _ = dataset
    (root / "meta.json").unlink()
    with pytest.raises(DatasetValidationError, match="meta.json is missing"):
        validate_dataset_dir(root)


def test_meta_assembly_removes_shards_beyond_a_smaller_plan(tmp_path):
    """num_samples lowered: the shards of the larger build go, the new meta.json holds."""
    from notewise.store.meta import build_meta
    from notewise.store.layout import list_shard_indices

    root = tmp_path / "ds"
    spec = write_dataset(root, [40, 40, 40])  # the earlier, larger build
    reports = [validate_shard(waveform_path(root, 0), targets_path(root, 0), spec)]
    meta = build_meta(root, spec, summarize_dataset(reports, spec), "test")
    assert meta["num_samples"] == 40 and list_shard_indices(root) == [0]
    assert not waveform_path(root, 2).exists() and not targets_path(root, 2).exists()


def test_remove_damaged_deletes_exactly_the_damaged_shards(tmp_path):
    from notewise.cli import main

    root = tmp_path / "ds"
    write_dataset(root, [40, 40, 40])
    flip_byte(waveform_path(root, 1))  # damage that keeps the mtime: Snakemake sees nothing
    targets_path(root, 2).unlink()     # a deleted file
    kept = waveform_path(root, 0).read_bytes()
    assert main(["check-dataset", str(root), "--remove-damaged"]) in (0, None)
    assert not waveform_path(root, 1).exists() and not targets_path(root, 1).exists()
    assert not waveform_path(root, 2).exists() and not (root / "meta.json").exists()
    assert waveform_path(root, 0).read_bytes() == kept and targets_path(root, 0).exists()


def test_build_ids_follow_the_generation_spec_and_code_not_the_size():
    from notewise.workflow.specs import generation_spec
    from notewise.store.layout import build_id

    small = {"seed": 0, "datasets": {"d": {"kind": "random_polyphony", "num_samples": 100}}}
    large = {"seed": 0, "datasets": {"d": {"kind": "random_polyphony", "num_samples": 900}}}
    other = {"seed": 0, "datasets": {"d": {"kind": "random_polyphony", "num_samples": 100,
                                           "polyphony": [1]}}}
    ids = [build_id(generation_spec(c, "d"), ("code",)) for c in (small, large, other)]
    assert ids[0] == ids[1] != ids[2]  # raising num_samples keeps the shards already built
    assert build_id(generation_spec(small, "d"), ("other code",)) != ids[0]


def test_meta_refuses_validated_shards_of_another_build(tmp_path):
    from notewise.store.meta import build_meta

    root = tmp_path / "ds"
    spec = write_dataset(root, [20, 20], with_meta=False, build="aaaaaaaaaaaaaaaa")
    reports = [validate_shard(waveform_path(root, i), targets_path(root, i), spec) for i in (0, 1)]
    assert {r["build_id"] for r in reports} == {"aaaaaaaaaaaaaaaa"}
    meta = build_meta(root, spec, summarize_dataset(reports, spec), "test", build="aaaaaaaaaaaaaaaa")
    assert meta["build_id"] == "aaaaaaaaaaaaaaaa"
    with pytest.raises(ValueError, match="shard_00000 is of build aaaaaaaaaaaaaaaa, this build is cc"):
        build_meta(root, spec, summarize_dataset(reports, spec), "test", build="cccccccccccccccc")


def test_check_dataset_names_every_damaged_shard_and_the_way_to_rebuild(tmp_path, caplog):
    from notewise.cli import main

    root = tmp_path / "ds"
    write_dataset(root, [40, 40, 40])
    flip_byte(waveform_path(root, 0))
    flip_byte(targets_path(root, 2))
    assert main(["check-dataset", str(root)]) == 1
    err = caplog.text
    assert "2 damaged shards" in err and "--remove-damaged" in err
    assert str(waveform_path(root, 0)) in err and str(targets_path(root, 2)) in err
    assert str(waveform_path(root, 1)) not in err
