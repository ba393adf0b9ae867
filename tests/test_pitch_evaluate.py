"""Evaluation metrics on synthetic predictions with known answers, and dataset reading."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from notewise.store.shards import write_shard
from notewise.pitch.evaluate import (
    ReferenceNotes,
    load_windows,
    polyphonic_report,
    single_note_by_octave,
    single_note_metrics,
    window_position_row,
    window_position_waves,
)


def cents_shift(freq, shift):
    return np.asarray(freq) * 2 ** (shift / 1200)


def reference(n_windows=60, seed=0) -> ReferenceNotes:
    """Windows of 1-9 notes at least 150 cents apart, classes 1-4 in turn."""
    rng = np.random.default_rng(seed)
    window, freq = [], []
    for w in range(n_windows):
        count = 1 + w % 9
        semitone_steps = rng.choice(np.arange(0, 80, 2), size=count, replace=False)  # >= 200 c
        window += [w] * count
        freq += list(40.0 * 2 ** (semitone_steps / 12))
    n = len(window)
    shares = rng.random(n)
    return ReferenceNotes(np.array(window), np.array(freq), 1 + np.arange(n) % 4, shares)


def full_notes(ref):
    keep = np.isin(ref.note_class, (2, 4))
    return ref.window[keep], ref.freq[keep], ref.energy_share[keep]


def test_perfect_predictor_scores_one_everywhere():
    ref = reference()
    window, freq, share = full_notes(ref)
    overall, by_poly, by_class = polyphonic_report(ref, window, freq, share, 60)
    for key in ("precision", "recall", "f_measure", "accuracy"):
        assert overall[key] == pytest.approx(1.0)
    assert overall["energy_share_mae"] == 0.0
    assert list(by_poly["polyphony"]) == ["1", "2", "3", "4-6", "7+"]
    scored = by_poly[by_poly["ref_notes"] > 0]
    assert (scored["f_measure"] == 1.0).all()
    assert by_poly["windows"].sum() == 60
    recall = dict(zip(by_class["note_class"], by_class["recall"]))
    assert recall[2] == recall[4] == 1.0 and recall[1] == recall[3] == 0.0
    precision = dict(zip(by_class["note_class"], by_class["precision"]))
    assert precision[2] == precision[4] == 1.0  # other classes' hits are not false alarms


def test_by_class_scores_count_only_that_class_and_unmatched_estimates():
    ref = reference()
    keep = ref.note_class != 3  # every note but class 3, plus one false note per class-3 window
    false_windows = np.unique(ref.window[ref.note_class == 3])
    window = np.r_[ref.window[keep], false_windows]
    freq = np.r_[ref.freq[keep], np.full(len(false_windows), 4999.0)]
    share = np.r_[ref.energy_share[keep], np.zeros(len(false_windows))]
    _, _, by_class = polyphonic_report(ref, window, freq, share, 60)
    row = by_class.set_index("note_class")
    assert (row.loc[[1, 2, 4], "recall"] == 1.0).all()
    # an unmatched estimate is a false alarm for every class present in its window
    assert (row.loc[[1, 2, 4], "precision"] < 1.0).all()
    assert row.loc[3, "recall"] == 0.0 and row.loc[3, "precision"] == 0.0
    assert row.loc[3, "est_notes"] == len(false_windows)
    assert row.loc[3, "ref_notes"] == (ref.note_class == 3).sum()


@pytest.mark.parametrize("shift, expected", [(30.0, 1.0), (-49.0, 1.0), (51.0, 0.0),
                                             (120.0, 0.0)])
def test_a_shifted_predictor_loses_exactly_what_the_tolerance_says(shift, expected):
    ref = reference()
    window, freq, share = full_notes(ref)
    overall, _, _ = polyphonic_report(ref, window, cents_shift(freq, shift), share, 60)
    assert overall["f_measure"] == pytest.approx(expected)
    assert overall["precision"] == pytest.approx(expected)


def test_half_the_notes_missing_halves_recall_not_precision():
    ref = reference()
    window, freq, share = full_notes(ref)
    keep = np.arange(len(window)) % 2 == 0
    overall, _, _ = polyphonic_report(ref, window[keep], freq[keep], share[keep], 60)
    assert overall["precision"] == pytest.approx(1.0)
    assert overall["recall"] == pytest.approx(keep.sum() / len(keep))


def test_energy_share_error_of_matched_notes():
    ref = reference()
    window, freq, share = full_notes(ref)
    overall, _, by_class = polyphonic_report(ref, window, freq, share + 0.1, 60)
    assert overall["energy_share_mae"] == pytest.approx(0.1)
    errors = dict(zip(by_class["note_class"], by_class["energy_share_mae"]))
    assert errors[2] == pytest.approx(0.1) and np.isnan(errors[1])


def test_single_note_metrics_with_a_known_shift_and_misses():
    ref = 55.0 * 2 ** (np.arange(100) / 20)
    est = cents_shift(ref, 12.0)
    est[:10] = np.nan  # no peak found: wrong for RPA, left out of the cents statistics
    est[10:15] = ref[10:15] * 2  # octave errors
    m = single_note_metrics(ref, est)
    assert m["raw_pitch_accuracy"] == pytest.approx(0.85)
    assert m["detected_share"] == pytest.approx(0.9)
    assert m["cents_median_abs"] == pytest.approx(12.0)
    assert m["cents_mean_within"] == pytest.approx(12.0) and m["cents_std_within"] < 1e-9
    assert m["cents_mean"] == pytest.approx((85 * 12 + 5 * 1200) / 90)
    table = single_note_by_octave(ref, est, 20.0, 5000.0)
    assert table["windows"].sum() == 100


def test_window_position_rows_and_waves():
    est = cents_shift(np.full(50, 440.0), np.linspace(-3, 5, 50))
    row = window_position_row(440.0, est)
    assert row["bias_cents"] == pytest.approx(1.0)
    assert row["std_cents"] == pytest.approx(np.linspace(-3, 5, 50).std())
    waves = window_position_waves(440.0, 4, step=37)
    assert waves.shape == (4, 4096)
    np.testing.assert_array_equal(waves[1, :-37], waves[0, 37:])  # one tone, shifted windows


def test_load_windows_reads_shards_and_offsets_note_rows(tmp_path):
    from notewise.store.layout import NOTE_DTYPES, targets_path, waveform_path

    for shard, n in enumerate((3, 2)):
        notes = {k: np.zeros(n, dt) for k, dt in NOTE_DTYPES.items()}
        notes["note_sample"] = np.arange(n)
        notes["note_freq"] = 100.0 * (shard + 1) + np.arange(n)
        notes["note_class"] = np.full(n, 2)
        data = SimpleNamespace(waveforms=np.full((n, 4096), shard, np.float32),
                               confs=np.zeros((n, 2048)), energies=np.zeros((n, 2048)),
                               notes=notes)
        (tmp_path / "waveforms").mkdir(exist_ok=True)
        (tmp_path / "targets").mkdir(exist_ok=True)
        write_shard(waveform_path(tmp_path, shard), targets_path(tmp_path, shard), data)
    waves, ref, maps = load_windows(tmp_path)
    assert waves.shape == (5, 4096) and maps["confs"].shape == (5, 2048)
    assert ref.window.tolist() == [0, 1, 2, 3, 4]
    assert ref.freq.tolist() == [100.0, 101.0, 102.0, 200.0, 201.0]
    capped, ref_capped, _ = load_windows(tmp_path, max_windows=4)
    assert len(capped) == 4 and ref_capped.window.tolist() == [0, 1, 2, 3]
