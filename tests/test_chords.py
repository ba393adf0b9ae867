"""Chord-structured polyphony (the ``chords`` setting of random_polyphony, notewise.synth.chords):
off is byte-identical, interval / family / share / detune statistics match the settings, and
chord sets keep every label invariant of random sets (validation and the dataset checks)."""
import copy
from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notewise.config import fill_defaults, load_schema
from notewise.synth import chords
from notewise.synth.generate import generate_range
from notewise.synth.rng import dataset_key
from notewise.store.validate import summarize_dataset, validate_shard

from shardkit import digest
from test_generate import SPEC
from shardkit import write_one_shard as write


def family_intervals(family):
    """Semitone intervals (mod 12) a family's notes can form: any two tones of one of its shapes,
    either way up (inversions and octave doublings move tones by octaves)."""
    return {(a - b) % 12 for shape in chords.SHAPES[family] for a in shape for b in shape}


PITCHED_FAMILIES = ("octave", "fifth", "third", "triad", "seventh")



def with_chords(**chord_settings):
    spec = copy.deepcopy(SPEC)
    spec["settings"]["chords"] = chord_settings
    return spec


def params(**chord_settings):
    filled = fill_defaults(load_schema()["$defs"]["chords"], chord_settings)
    return chords.chord_params(filled, (20.0, 5000.0))


def window_notes(data):
    return [data.notes["note_freq"][data.notes["note_sample"] == r].astype(np.float64)
            for r in range(len(data.waveforms))]


def test_off_is_the_seed_distribution_byte_for_byte(lib):
    reference = digest(generate_range(SPEC, 0, 48, lib))
    assert digest(generate_range(with_chords(share=0.0), 0, 48, lib)) == reference
    assert digest(generate_range(with_chords(share=0.5), 0, 48, lib)) != reference


@pytest.mark.parametrize("family", PITCHED_FAMILIES)
def test_intervals_are_the_family_s(lib, family):
    spec = with_chords(share=1.0, weights={family: 1.0}, detune_cents=0.0, grid_offset_cents=0.0)
    data = generate_range(spec, 0, 120, lib)
    seen = set()
    for freqs in window_notes(data):
        for a, b in combinations(freqs, 2):
            semis = 12 * np.log2(b / a)
            assert abs(semis - round(semis)) < 1e-3, "notes off the 12-TET grid"
            seen.add(int(round(semis)) % 12)
    assert seen == family_intervals(family)


def test_cluster_steps_are_semitones_and_whole_tones(lib):
    key = dataset_key(0, "clusters")
    p = params(share=1.0, weights={"cluster": 1.0}, detune_cents=0.0, grid_offset_cents=0.0)
    out = np.zeros(8)
    steps = set()
    for sample in range(200):
        assert chords.chord_frequencies(key, sample, p, 8, 1, 8, out)
        semis = 12 * np.log2(out / out[0])  # note order: each one 1 or 2 semitones above
        np.testing.assert_allclose(semis, np.round(semis), atol=1e-6)
        steps |= set((np.diff(np.round(semis)).astype(int) % 12).tolist())
    assert steps == {1, 2}  # octave folding moves notes by whole octaves only


def test_share_and_family_frequencies_match_the_weights():
    weights = {"octave": 1.0, "fifth": 2.0, "third": 0.0, "triad": 3.0, "seventh": 4.0,
               "cluster": 2.0}
    p = params(share=0.3, weights=weights)
    key = dataset_key(7, "stats")
    n = 20000
    draws = [chords.chord_draw(key, s, p) for s in range(n)]
    is_chord = np.array([d[0] for d in draws])
    share = is_chord.mean()
    assert abs(share - 0.3) < 4 * np.sqrt(0.3 * 0.7 / n)
    families = np.array([d[1] for d in draws if d[0]])
    total = sum(weights.values())
    for index, family in enumerate(chords.FAMILIES):
        expected = weights[family] / total
        observed = np.mean(families == index)
        sigma = np.sqrt(expected * (1 - expected) / len(families))
        assert abs(observed - expected) <= 4 * sigma
    shapes = np.array([d[2] for d in draws if d[0] and d[1] == chords.FAMILIES.index("seventh")])
    assert len(np.unique(shapes)) == len(chords.SHAPES["seventh"])  # every seventh chord occurs


def test_detune_and_grid_offset_stay_within_their_settings(lib):
    detuned = generate_range(with_chords(share=1.0, detune_cents=10.0, grid_offset_cents=0.0),
                             0, 200, lib)
    cents = 1200 * np.log2(detuned.notes["note_freq"].astype(np.float64) / 440.0)
    deviation = cents - 100 * np.round(cents / 100)
    assert np.abs(deviation).max() <= 10.0 + 0.01 and np.abs(deviation).max() > 8.0
    assert abs(np.mean(deviation)) < 1.0  # uniform around the grid
    shifted = generate_range(with_chords(share=1.0, detune_cents=0.0, grid_offset_cents=30.0),
                             0, 200, lib)
    offsets = []
    for freqs in window_notes(shifted):
        cents = 1200 * np.log2(freqs / 440.0)
        frac = cents - 100 * np.round(cents / 100)
        if len(frac):
            assert np.ptp(frac) < 0.01, "one grid shift per window"
            offsets.append(frac[0])
    assert np.abs(offsets).max() <= 30.0 + 0.01 and np.abs(offsets).max() > 20.0


def test_other_draws_are_unchanged(lib):
    plain = generate_range(SPEC, 0, 64, lib).notes
    chordal = generate_range(with_chords(share=1.0), 0, 64, lib).notes
    for column in ("note_sample", "note_timbre", "note_velocity", "note_onset", "note_offset",
                   "note_class", "note_weight"):
        if len(plain[column]) == len(chordal[column]):
            np.testing.assert_array_equal(plain[column], chordal[column])
    # counts can only differ where a chord tone falls outside the labelled range
    difference = abs(len(plain["note_freq"]) - len(chordal["note_freq"]))
    assert difference <= 0.05 * len(plain["note_freq"])


@settings(max_examples=8, deadline=None)
@given(share=st.sampled_from([0.25, 1.0]), family=st.sampled_from(chords.FAMILIES),
       detune=st.floats(0, 45), offset=st.floats(0, 50), start=st.integers(0, 10**6))
def test_chord_sets_keep_every_label_invariant(tmp_path_factory, lib, share, family, detune,
                                               offset, start):
    spec = with_chords(share=share, weights={family: 1.0, "triad": 1.0}, detune_cents=detune,
                       grid_offset_cents=offset)
    data = generate_range(spec, start, 64, lib)
    wpath, tpath = write(tmp_path_factory.mktemp("chords"), data)
    report = validate_shard(wpath, tpath, spec)  # classes, weights, peaks, energy sums, range
    assert report["checks"] == "all"
    summarize_dataset([report], spec)  # polyphony distribution allowed by the settings
