"""The pitch matrix helpers (notewise.pitch.matrix): mixing sources, scoring subsets, assembly."""
import json

import numpy as np
import pandas as pd
import pytest

from notewise.pitch.matrix_commands import matrix_settings
from notewise.pitch.matrix import ConcatSource, assemble_matrix, evenly_spaced
from notewise.pitch.train import ArraySource


def _source(offset, n):
    waves = np.arange(offset, offset + n, dtype=np.float32)[:, None] * np.ones((1, 8), np.float32)
    return ArraySource(waves, np.zeros((n, 4)), np.zeros((n, 4)))


def test_concat_source_takes_prefixes_and_keeps_the_asked_order():
    source = ConcatSource([_source(0, 10), _source(100, 10)], [4, 3])
    assert len(source) == 7
    batch = source.get_batch(np.array([6, 0, 4, 3, 5]))
    # rows 0..3 are the first source's 0..3, rows 4..6 the second's 0..2 (values 100..102)
    assert batch["waveform"][:, 0, 0].tolist() == [102.0, 0.0, 100.0, 3.0, 101.0]


def test_evenly_spaced_covers_the_whole_set():
    rows = evenly_spaced(4096, 512)
    assert len(rows) == 512 and rows[0] == 0 and rows[-1] == 4095
    assert evenly_spaced(100, None).tolist() == list(range(100))


def test_matrix_settings_override_the_pitch_model():
    spec = {"pitch_model": {"train": {"epochs": 9, "lr": 0.01}},
            "mixture": {"train": {"epochs": 1}, "model": {"width": 8}}}
    settings = matrix_settings(spec)
    assert settings["train"]["epochs"] == 1 and settings["train"]["lr"] == 0.01
    assert settings["model"]["width"] == 8 and settings["bins"]["n_bins"] == 2048


def test_assemble_matrix_writes_every_cell(tmp_path):
    results = {}
    for model, base in (("random", 0.5), ("music", 0.7)):
        rows = [{"eval_set": name, "f_measure": base + k / 10, "precision": 1.0, "recall": 0.5}
                for k, name in enumerate(("random", "music", "sanity"))]
        results[model] = tmp_path / f"{model}.json"
        results[model].write_text(json.dumps(rows))
    frame = assemble_matrix(results, tmp_path / "m.csv", tmp_path / "m.png")
    table = pd.read_csv(tmp_path / "m.csv")
    assert len(table) == 6 and set(table["trained_on"]) == {"random", "music"}
    assert frame.set_index(["trained_on", "eval_set"]).loc[("music", "sanity"), "f_measure"] == \
        pytest.approx(0.9)
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cells_score_against_the_fully_labelled_notes_as_evaluate_does(tmp_path):
    """A predictor that finds exactly the class-2/4 notes scores 1: the matrix uses the same
    reference as the polyphonic evaluation (classes 1 and 3 are below the threshold by design)."""
    from types import SimpleNamespace

    from notewise.store.layout import targets_path, waveform_path
    from notewise.store.shards import write_shard
    from notewise.pitch.matrix import score_dataset
    from shardkit import fake_shard

    shard = fake_shard(48)
    write_shard(waveform_path(tmp_path, 0), targets_path(tmp_path, 0), shard)
    notes = shard.notes
    full = np.isin(notes["note_class"], (2, 4))
    assert full.any() and (~full).any()

    class FindsFullNotes:
        def notes(self, waves):
            assert len(waves) == 48
            return SimpleNamespace(window=notes["note_sample"][full].astype(np.int64),
                                   f0_hz=notes["note_freq"][full].astype(np.float64))

    scores = score_dataset(FindsFullNotes(), tmp_path, None)
    assert scores["ref_notes"] == int(full.sum())
    assert scores["recall"] == pytest.approx(1.0) and scores["precision"] == pytest.approx(1.0)
