"""Music-driven windows (kind midi_render): note selection, classes, rendering, validation,
determinism and corpus reading (notewise.music.render)."""
import copy
import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notewise.config import ConfigError
from notewise.workflow.specs import check_config
from notewise.music.corpus import MusicCorpus, build_corpus_file
from notewise.synth.bins import midi_to_hz
from notewise.music import render as music
from notewise.synth.generate import generate_range
from notewise.synth.labels import classify_note
from notewise.store.validate import ShardValidationError, validate_shard

from midi_helpers import write_midi_file
from shardkit import write_one_shard as write

W = 4096
SR = 44100
SPEC = {"seed": 3, "dataset": "music", "audio": {"sample_rate": SR, "window": W},
        "bins": {"n_bins": 2048, "f_min": 20.0, "f_max": 5000.0}, "labels": {"sigma_bins": 1.5},
        "settings": {"kind": "midi_render"}}
ALL_AUGMENT = {name: {"enabled": True} for name in
               ("gain", "noise", "detune", "vibrato", "room", "timbre_mix")}


def _piece(rng, n_notes, span_s):
    start = np.sort(rng.uniform(0, span_s, n_notes))
    length = rng.choice([0.02, 0.05, 0.08, 0.2, 0.5, 1.5], n_notes)  # classes 1-4 all occur
    pitch = rng.integers(10, 125, n_notes)  # below 20 Hz and above 5 kHz included
    return {"start_s": start, "end_s": start + length, "pitch": pitch,
            "velocity": rng.integers(1, 128, n_notes), "program": rng.integers(0, 3, n_notes),
            "track": rng.integers(0, 4, n_notes)}


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(5)
    pieces = {"one": _piece(rng, 60, 3.0), "two": _piece(rng, 25, 1.0),
              "high_only": {"start_s": [0.0], "end_s": [2.0], "pitch": [120], "velocity": [100],
                            "program": [0], "track": [0]}}
    return MusicCorpus.from_pieces(pieces, {})


def with_augment(spec, augment):
    return {**spec, "settings": {**spec["settings"], "augment": augment}}


def expected_notes(ctx, sample):
    """(onset, offset, f0) of the notes that sound in the window of ``sample`` and are in range."""
    piece, pos = music.window_position(ctx, sample)
    a, b = ctx.corpus.piece_start[piece], ctx.corpus.piece_start[piece + 1]
    start, end = ctx.start[a:b], ctx.end[a:b]
    f0 = midi_to_hz(ctx.corpus.pitch[a:b])
    sounding = (start < pos + W) & (end > pos) & (f0 >= 20.0) & (f0 <= 5000.0)
    return start[sounding] - pos, end[sounding] - pos, f0[sounding]


@settings(max_examples=25, deadline=None)
@given(sample=st.integers(0, 10**7))
def test_window_carries_exactly_the_sounding_notes(lib, corpus, sample):
    data = music.generate_music_range(SPEC, sample, 1, lib, corpus=corpus)
    ctx = music.music_context(SPEC, corpus, len(lib))
    onset, offset, f0 = expected_notes(ctx, sample)
    table = data.notes
    got = {(o, e, round(float(f), 2)) for o, e, f in
           zip(table["note_onset"].tolist(), table["note_offset"].tolist(), table["note_freq"])}
    want = {(o, e, round(float(f), 2)) for o, e, f in zip(onset.tolist(), offset.tolist(), f0)}
    assert len(got) == len(table["note_onset"]) and got <= want  # no other note
    piece, pos, _, notes = music.window_notes(ctx, sample, lib)
    for o, e, f in want - got:  # a sounding note is left out only when it is silent here
        (j,) = np.flatnonzero((notes.onset == o) & (notes.offset == e))
        alone = music.render_dry(notes.subset(j), W, 0, SR)
        assert np.abs(alone).max() < 1e-6, (o, e, f)


def test_classes_follow_true_onsets_and_offsets(lib, corpus):
    data = music.generate_music_range(SPEC, 0, 300, lib, corpus=corpus)
    t = data.notes
    want = [classify_note(o, e, W) for o, e in zip(t["note_onset"], t["note_offset"])]
    np.testing.assert_array_equal(t["note_class"], want)
    assert set(t["note_class"].tolist()) == {1, 2, 3, 4}
    assert (t["note_onset"] < 0).any()  # onsets before the window are kept, not clamped
    weights = np.where(np.isin(t["note_class"], (2, 4)), 1.0,
                       np.minimum((np.minimum(t["note_offset"], W)
                                   - np.maximum(t["note_onset"], 0)) / W * 0.5, 0.3))
    np.testing.assert_allclose(t["note_weight"], weights, rtol=1e-6)


def test_out_of_range_notes_sound_but_are_not_labelled(lib, corpus):
    ctx = music.music_context(SPEC, corpus, len(lib))
    high = list(corpus.names).index("high_only")
    samples = [s for s in range(400) if music.window_position(ctx, s)[0] == high]
    assert samples
    data = music.generate_music_samples(SPEC, samples, lib, corpus=corpus)
    assert len(data.notes["note_sample"]) == 0
    assert np.abs(data.waveforms).max(axis=1).min() > 0.1  # the 8.4 kHz note is synthesised
    assert data.confs.max() == 0 and data.energies.max() == 0


def test_window_is_a_cut_of_the_rendered_piece(lib, corpus):
    ctx = music.music_context(SPEC, corpus, len(lib))
    piece = list(corpus.names).index("one")
    a, b = corpus.piece_start[piece], corpus.piece_start[piece + 1]
    whole = music.WindowNotes(ctx, piece, 0, np.arange(a, b), lib)
    length = int(ctx.end[a:b].max())
    rendered = music.render_dry(whole, length, 0, SR)
    samples = [s for s in range(60) if music.window_position(ctx, s)[0] == piece][:8]
    data = music.generate_music_samples(SPEC, samples, lib, corpus=corpus)
    for row, sample in enumerate(samples):
        _, pos = music.window_position(ctx, sample)
        cut = rendered[pos:pos + W].astype(np.float64)
        wave = data.waveforms[row].astype(np.float64)
        gain = np.dot(wave, cut) / np.dot(cut, cut)  # the window's peak limit
        assert 0 < gain <= 1 + 1e-6
        assert np.abs(wave - gain * cut).max() < 1e-4 * np.abs(cut).max()


@pytest.mark.parametrize("timbre_by, column", [("track", "track"), ("program", "program")])
def test_one_timbre_per_track_or_program_and_fixed_programs(lib, corpus, timbre_by, column):
    spec = {**SPEC, "settings": {"kind": "midi_render", "timbre_by": timbre_by,
                                 "timbres": [3, 4, 5, 6, 7], "program_timbres": {"2": 42}}}
    ctx = music.music_context(spec, corpus, len(lib))
    seen = {}
    for sample in range(80):
        piece, _, _, notes = music.window_notes(ctx, sample, lib)
        ids = music.sounding_notes(ctx, piece, music.window_position(ctx, sample)[1])
        for note, timbre in zip(ids, notes.timbre):
            program = int(corpus.program[note])
            assert timbre == 42 if program == 2 else timbre in (3, 4, 5, 6, 7)
            slot = (piece, int(getattr(corpus, column)[note]), program == 2)
            assert seen.setdefault(slot, timbre) == timbre  # the same all through the piece
    assert len(set(seen.values())) > 2


@pytest.mark.parametrize("augment", [{}, ALL_AUGMENT], ids=["plain", "augmented"])
def test_shards_validate_and_are_deterministic(lib, corpus, tmp_path, augment):
    spec = with_augment(SPEC, augment)
    digests = []
    for attempt in range(2):
        data = music.generate_music_range(spec, 10, 40, lib, corpus=corpus)
        wpath, tpath = write(tmp_path / str(attempt), data)
        report = validate_shard(wpath, tpath, spec)
        assert report["checks"] == "all" and report["samples"] == 40
        digests.append(hashlib.sha256(wpath.read_bytes() + tpath.read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    # a sample is the same in any range (pure in seed, dataset, index)
    single = music.generate_music_range(spec, 25, 1, lib, corpus=corpus)
    np.testing.assert_array_equal(single.waveforms[0], data.waveforms[15])


def test_generate_range_dispatches_to_the_note_file(lib, corpus, tmp_path):
    path = tmp_path / "notes.npz"
    corpus.save(path)
    spec = {**SPEC, "notes_file": str(path)}
    via_generate = generate_range(spec, 3, 5, lib)
    direct = music.generate_music_range(SPEC, 3, 5, lib, corpus=corpus)
    np.testing.assert_array_equal(via_generate.waveforms, direct.waveforms)
    np.testing.assert_array_equal(via_generate.notes["note_freq"], direct.notes["note_freq"])
    with pytest.raises(FileNotFoundError, match="missing"):
        generate_range({**SPEC, "notes_file": str(tmp_path / "absent.npz")}, 0, 1, lib)


def test_validation_rejects_a_deviation_that_does_not_explain_the_pitch(lib, corpus, tmp_path):
    data = music.generate_music_range(SPEC, 0, 20, lib, corpus=corpus)
    notes = dict(data.notes)
    notes["note_freq"] = notes["note_freq"] * np.float32(2 ** (20 / 1200))  # 20 cents sharp
    wpath, tpath = write(tmp_path, data._replace(notes=notes))
    with pytest.raises(ShardValidationError, match="cents") as err:
        validate_shard(wpath, tpath, SPEC)
    assert err.value.check == "notes" and err.value.path == str(tpath)


# --------------------------------------------------------------------------- corpus reading


def test_corpus_reads_tracks_in_seconds_and_skips_bad_files_with_a_reason(tmp_path):
    root = tmp_path / "corpus"
    (root / "train").mkdir(parents=True)
    (root / "val").mkdir()
    write_midi_file(root / "train" / "good.mid", 1_000_000,
               [[(0, 480, 60, 100)], [(480, 1440, 64, 50)]])
    (root / "train" / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    (root / "train" / "text.mid").write_text("not midi at all")
    write_midi_file(root / "train" / "silent.mid", 500_000, [[]])
    write_midi_file(root / "val" / "other.mid", 500_000, [[(0, 10, 70, 90)]])
    out = tmp_path / "notes.npz"
    corpus = build_corpus_file(root, "train", out)
    loaded = MusicCorpus.load(out)
    assert list(loaded.names) == ["train/good.mid"]
    np.testing.assert_allclose(loaded.start_s, [0.0, 1.0])  # 480 ticks at 1 s per beat
    np.testing.assert_allclose(loaded.end_s, [1.0, 3.0])
    assert loaded.track.tolist() == [0, 1] and loaded.velocity.tolist() == [100, 50]
    reasons = dict(zip(corpus.skipped_names, corpus.skipped_reasons))
    assert set(reasons) == {"train/corrupt.mid", "train/text.mid", "train/silent.mid"}
    assert all(reason for reason in reasons.values())
    assert reasons["train/silent.mid"] == "no pitched notes"
    assert out.read_bytes() == (build_corpus_file(root, "train", tmp_path / "again.npz"),
                                (tmp_path / "again.npz").read_bytes())[1]


def test_config_checks_name_the_key():
    base = {"seed": 1, "audio": {}, "bins": {}, "datasets": {
        "m": {"kind": "midi_render", "num_samples": 8, "shard_size": 8}}}
    assert check_config(base)["datasets"]["m"]["kind"] == "midi_render"
    bad = copy.deepcopy(base)
    bad["datasets"]["m"]["timbres"] = [0, 500]
    with pytest.raises(ConfigError, match="datasets.m.timbres"):
        check_config(bad)
    bad = copy.deepcopy(base)
    bad["datasets"]["m"]["augment"] = {"room": {"enabled": True, "rt60_s": [0.5, 0.1]}}
    with pytest.raises(ConfigError, match="datasets.m.augment.room.rt60_s"):
        check_config(bad)
