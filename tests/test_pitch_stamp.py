"""Where a window's prediction is stamped in time: ``predict``'s ``stamp`` setting (framing,
default, CLI) and the measurement behind its default (``notewise.pitch.alignment``)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from notewise.music import render as music
from notewise.music.corpus import MusicCorpus
from notewise.pitch import alignment
from notewise.pitch.inference import Predictor
from notewise.pitch.model import PitchModelConfig
from notewise.pitch.predict import default_stamp, frame, predict_frames, stamp_offset

SR, W, HOP = 44100, 4096, 441


# --------------------------------------------------------------------------- framing


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 3000), window=st.integers(1, 600), hop_share=st.floats(0.01, 1.0),
       stamp=st.floats(0.0, 1.0))
def test_window_k_is_stamped_at_sample_k_hop(n, window, hop_share, stamp):
    hop = max(1, int(window * hop_share))
    audio = np.arange(1, n + 1, dtype=np.float32)  # sample i holds i + 1; padding holds 0
    windows = frame(audio, window, hop, stamp).numpy()
    assert windows.shape == (n // hop + 1, window)
    left = stamp_offset(window, stamp)
    assert left == round(stamp * window)
    index = np.arange(len(windows))[:, None] * hop - left + np.arange(window)[None, :]
    inside = (index >= 0) & (index < n)
    want = np.where(inside, index + 1, 0).astype(np.float32)
    np.testing.assert_array_equal(windows, want)
    if left < window:  # the stamped point is a sample of the window
        k = np.arange(len(windows))
        stamped = k * hop < n
        np.testing.assert_array_equal(windows[k[stamped], left], k[stamped] * hop + 1)


@pytest.mark.parametrize("stamp", [-0.1, 1.5, float("nan")])
def test_a_stamp_outside_the_window_is_refused(stamp):
    with pytest.raises(ValueError, match="stamp"):
        frame(np.zeros(100, np.float32), 64, 10, stamp)


class LookAtModel(torch.nn.Module):
    """A note at 440 Hz in every window whose samples ``[at, at + span)`` are not all zero: a
    model whose notes sound at a known place in the window."""

    def __init__(self, at: int, span: int = 64):
        super().__init__()
        self.cfg = PitchModelConfig(width=2, dilations=(1,))
        self.at, self.span = at, span
        self.bin = int(round(self.cfg.freq_to_bin(440.0)))

    def forward(self, x):
        on = x[:, 0, self.at:self.at + self.span].abs().amax(-1) > 0
        conf = torch.full((len(x), self.cfg.n_bins), -30.0)
        conf[on, self.bin] = 30.0
        return conf, torch.zeros_like(conf)


def tone_times(look: float, stamp: float, start: int, stop: int):
    """First and last frame times at which ``LookAtModel`` (looking at ``look`` of the window)
    finds a tone sounding over samples ``[start, stop)``, windows stamped at ``stamp``."""
    at = int(np.clip(round(look * W) - 32, 0, W - 64))
    predictor = Predictor(LookAtModel(at), threshold=0.5, batch_size=64)
    audio = np.zeros(SR, np.float32)
    audio[start:stop] = 0.5 * np.sin(2 * np.pi * 440 * np.arange(stop - start) / SR)
    table = predict_frames(predictor, audio, HOP, stamp)
    return table["time"].min(), table["time"].max()


@pytest.mark.parametrize("stamp", [0.0, 0.5, 0.75, 1.0])
def test_a_tone_is_found_at_its_onset_and_offset_when_stamped_where_the_model_looks(stamp):
    start, stop = 13_237, 30_011  # 0.300 s and 0.681 s, not on the hop grid
    first, last = tone_times(stamp, stamp, start, stop)
    assert abs(first - start / SR) <= 2 * HOP / SR
    assert abs(last - stop / SR) <= 2 * HOP / SR


def test_a_mismatched_stamp_moves_the_notes_by_the_gap():
    """The test above can fail: a model looking at the window's end stamped at its centre puts
    the tone half a window (46 ms, 4.6 hops) early."""
    start, stop = 13_237, 30_011
    first, last = tone_times(1.0, 0.5, start, stop)
    assert first - start / SR == pytest.approx(-0.5 * W / SR, abs=2 * HOP / SR)
    assert last - stop / SR == pytest.approx(-0.5 * W / SR, abs=2 * HOP / SR)


def test_one_stamp_default_the_schemas(tmp_path):
    from notewise.pitch import commands
    from notewise.pitch.settings import pitch_settings

    assert default_stamp() == pitch_settings({})["decode"]["stamp"] == 0.375  # measured
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["predict", "x.wav"]).stamp is None  # None: the schema's
    assert parser.parse_args(["predict", "x.wav", "--stamp", "1"]).stamp == 1.0
    predictor = Predictor(LookAtModel(W - 64), threshold=0.5)
    audio = np.zeros(SR // 2, np.float32)
    audio[5000:9000] = 0.3
    by_default = predict_frames(predictor, audio, HOP)
    assert by_default.equals(predict_frames(predictor, audio, HOP, default_stamp()))


def test_the_workflow_passes_the_configured_stamp_to_predict():
    from pathlib import Path

    rules = (Path(__file__).resolve().parents[1] / "rules" / "real_eval.smk").read_text()
    body = rules.split("rule real_eval_predict:")[1].split("\nrule ")[0]
    assert 'stamp=PITCH["decode"]["stamp"]' in body and "--stamp {params.stamp}" in body


# --------------------------------------------------------------------------- label truth


def test_label_truth_scores_the_full_labels_against_the_notes_sounding_at_p():
    # window 0: a class-2 note from 60 on, a class-4 note throughout, a class-1 note up to 40;
    # window 1: a class-2 note from 10, whose key is up at 70 (its room tail reaches past 100)
    notes = alignment.LabelNotes(
        window=np.array([0, 0, 0, 1]), freq=np.array([440.0, 220.0, 330.0, 550.0]),
        note_class=np.array([2, 4, 1, 2]), onset=np.array([60, -10, -5, 10]),
        offset=np.array([200, 150, 40, 130]), key_offset=np.array([200, 150, 40, 70]),
        n_windows=2, window_size=100)
    table = alignment.label_truth(notes, [0.0, 0.5, 1.0]).set_index("p")
    # p = 1: exactly the labels (the SPEC's rule); p = 0.5: the note from 60 not yet sounding
    assert table.loc[1.0, ["precision", "recall", "f1"]].tolist() == [1.0, 1.0, 1.0]
    assert table.loc[0.5, "precision"] == pytest.approx(2 / 3)
    assert table.loc[0.5, "recall"] == 1.0
    # p = 0: the class-1 note sounds, the two class-2 notes do not
    assert table.loc[0.0, "precision"] == pytest.approx(1 / 3)
    assert table.loc[0.0, "recall"] == pytest.approx(1 / 2)
    assert table.loc[1.0, "mp_f1"] == pytest.approx(1.0)
    key = alignment.label_truth(notes, [1.0], key=True).iloc[0]
    assert key["precision"] == pytest.approx(2 / 3) and key["recall"] == 1.0


SPEC = {"seed": 3, "dataset": "music", "audio": {"sample_rate": SR, "window": W},
        "bins": {"n_bins": 2048, "f_min": 20.0, "f_max": 5000.0}, "labels": {"sigma_bins": 1.5},
        "settings": {"kind": "midi_render",
                     "augment": {name: {"enabled": True} for name in
                                 ("gain", "noise", "detune", "vibrato", "room", "timbre_mix")}}}


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(7)

    def piece(n, span):
        start = np.sort(rng.uniform(0, span, n))
        return {"start_s": start, "end_s": start + rng.choice([0.03, 0.1, 0.3, 0.8], n),
                "pitch": rng.integers(30, 100, n), "velocity": rng.integers(40, 128, n),
                "program": np.zeros(n, int), "track": rng.integers(0, 3, n)}

    return MusicCorpus.from_pieces({"a": piece(40, 3.0), "b": piece(30, 2.0)}, {})


def test_label_notes_are_the_datasets_note_tables(lib, corpus):
    """The re-drawn notes are the generator's own (classes, onsets, offsets, f0s), with the key
    release beside the labelled (room-extended) offset."""
    samples = np.arange(24)
    data = music.generate_music_samples(SPEC, samples, lib, corpus=corpus)
    notes = alignment.music_label_notes(SPEC, corpus, lib, samples)
    table = data.notes
    np.testing.assert_array_equal(notes.window, table["note_sample"])
    np.testing.assert_array_equal(notes.note_class, table["note_class"])
    np.testing.assert_array_equal(notes.onset, table["note_onset"])
    np.testing.assert_array_equal(notes.offset, table["note_offset"])
    np.testing.assert_allclose(notes.freq, table["note_freq"], rtol=1e-6)
    assert (notes.key_offset <= notes.offset).all() and (notes.key_offset < notes.offset).any()
    ctx = music.music_context(SPEC, corpus, len(lib))
    kept = [s for s in samples if music.window_position(ctx, int(s))[0] != 0]
    without_a = alignment.music_label_notes(SPEC, corpus, lib, samples, exclude_pieces=["a"])
    assert without_a.n_windows == len(kept) < len(samples)


# --------------------------------------------------------------------------- model vs stamp


def test_rendered_clip_sounds_exactly_while_its_keys_are_down(lib, corpus):
    clip = alignment.render_music_clip(SPEC, corpus, 0, lib, clip_s=2.0, texture="poly",
                                       chunk=10_000)
    assert clip.audio.shape == (2 * SR,) and np.abs(clip.audio).max() <= 0.9 + 1e-6
    assert clip.start.min() == 0.0
    times, freqs = clip.reference_frames()
    frames = clip.audio[:len(times) * 441].reshape(len(times), 441)
    loud = np.abs(frames).max(axis=1) > 0
    down = np.array([len(f) > 0 for f in freqs])
    # a frame with a key down at its start sounds; silent frames have no key down in them
    assert loud[down].all()
    for t in np.flatnonzero(~loud):
        assert not ((clip.start < times[t] + 0.01) & (clip.end > times[t])).any()
    wet = alignment.render_music_clip(SPEC, corpus, 0, lib, clip_s=2.0, texture="poly",
                                      augment=1)  # draw 1 of SPEC's key: a room, gain, noise
    np.testing.assert_array_equal(wet.freq, clip.freq)
    np.testing.assert_array_equal(wet.end, clip.end)
    assert not np.allclose(wet.audio, clip.audio, atol=1e-3)
    mono = alignment.render_music_clip(SPEC, corpus, 0, lib, clip_s=2.0, texture="mono")
    assert len(mono.freq) < len(clip.freq)
    assert set(np.round(mono.freq, 3)) <= set(np.round(clip.freq, 3))  # the same performance


def synthetic_estimates(true_p: float, hop: int = 147) -> alignment.ClipEstimates:
    """Windows that hold a 440 Hz note exactly when sample ``start + true_p * W`` is inside
    the reference note (1.0 s to 2.0 s)."""
    n = 3 * SR
    starts = np.arange(-W, n, hop)
    stamp = starts + true_p * W
    has = (stamp >= SR) & (stamp < 2 * SR)
    times = np.arange(300) * 0.01
    ref = [np.array([440.0]) if 1.0 <= t < 2.0 else np.zeros(0) for t in times]
    return alignment.ClipEstimates(starts, np.flatnonzero(has), np.full(has.sum(), 440.0),
                                   times, ref, W, SR)


@pytest.mark.parametrize("true_p", [0.25, 0.5, 0.75, 1.0])
def test_stamp_scores_peak_where_the_estimates_are_true(true_p):
    table = alignment.stamp_scores([synthetic_estimates(true_p)])
    # within a 10 ms frame (1/32 of the window is 2.9 ms: neighbours of true_p may tie)
    assert abs(alignment.best_stamp(table) - true_p) < 0.01 * SR / W
    assert table.set_index("p").loc[true_p, "f1"] == pytest.approx(1.0, abs=0.005)
    assert table.set_index("p").loc[true_p - 0.25, "f1"] < 0.99  # 23 ms off at each end
