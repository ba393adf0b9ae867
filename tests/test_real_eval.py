"""Real-instrument evaluation (notewise.pitch.real_eval, notewise.pitch.peers): held out by
construction, clips and references, mir_eval scoring, and basic-pitch where it is installed."""
import copy
import json

import numpy as np
import pytest
import yaml

from notewise.config import REPO_ROOT, ConfigError
from notewise.music.checks import default_soundfont_path
from notewise.music.corpus import MusicCorpus
from notewise.synth.bins import midi_to_hz
from notewise.pitch import peers, real_eval

SETTINGS = {"soundfont": "default", "corpus": "bach", "split": "val", "val_percent": 20,
            "pieces": 2, "clip_s": 1.0, "release_tail_s": 0.5,
            "instruments": {"piano": 0, "flute": 73}, "checkpoint": None}


@pytest.fixture(scope="module")
def default_config():
    with open(REPO_ROOT / "config.yaml") as fh:
        return yaml.safe_load(fh)


def corpus_of(names, split):
    pieces = {}
    for k, name in enumerate(names):
        start = np.array([0.0, 0.0, 0.25, 0.5])
        pieces[f"{split}/{name}"] = {"start_s": start + 0.1 * k, "end_s": start + 0.1 * k + 0.4,
                                     "pitch": [72, 60, 64, 67], "velocity": [100] * 4,
                                     "program": [0] * 4, "track": [0, 1, 1, 1]}
    return MusicCorpus.from_pieces(pieces, {})


def test_the_default_config_holds_out_pieces_and_soundfont(default_config):
    real_eval.check_held_out(default_config)
    trained = real_eval.training_datasets(default_config)
    assert "train" in trained and "music_train" in trained
    assert real_eval.real_eval_settings(default_config)["split"] == "val"


def test_a_training_set_on_the_held_out_split_is_refused(default_config):
    config = copy.deepcopy(default_config)
    config["datasets"]["music_train"]["split"] = "val"
    with pytest.raises(ConfigError, match="music_train.*holds out"):
        real_eval.check_held_out(config)


def test_a_training_soundfont_equal_to_the_held_out_one_is_refused(default_config):
    config = copy.deepcopy(default_config)
    config["real_eval"] = {"soundfont": str(default_soundfont_path())}
    with pytest.raises(ConfigError, match="soundfont_train's SoundFont"):
        real_eval.check_held_out(config)


def test_render_refuses_pieces_that_a_training_set_holds(tmp_path):
    held_out = corpus_of(["a.mid", "b.mid"], "val")
    held_out.save(tmp_path / "eval.npz")
    corpus_of(["c.mid", "b.mid"], "train").save(tmp_path / "train.npz")  # b.mid in both
    with pytest.raises(ValueError, match="share 1 pieces.*b.mid"):
        real_eval.render_clips(tmp_path / "eval.npz", default_soundfont_path(),
                               SETTINGS, tmp_path / "out", [tmp_path / "train.npz"])


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("real_eval")
    corpus_of(["a.mid", "b.mid"], "val").save(root / "eval.npz")
    corpus_of(["c.mid"], "train").save(root / "train.npz")
    real_eval.render_clips(root / "eval.npz", default_soundfont_path(), SETTINGS,
                           root / "audio", [root / "train.npz"])
    return root


def test_clips_and_references(clips):
    from scipy.io import wavfile

    manifest = json.loads((clips / "audio" / "manifest.json").read_text())
    assert sorted(manifest["clips"]) == sorted(real_eval.clip_names(SETTINGS))
    rate, audio = wavfile.read(clips / "audio" / "00_piano_poly.wav")
    assert rate == 44100 and audio.dtype == np.float32 and len(audio) == 44100
    assert 0.01 < np.abs(audio).max() <= 0.9
    times, freqs = real_eval.read_frames(clips / "audio" / "00_piano_poly.ref.txt")
    np.testing.assert_allclose(times, np.arange(100) * 0.01)
    counts = [len(f) for f in freqs]
    # C5 + C4 from 0 s, E4 from 0.25 s, G4 from 0.5 s, each key released 0.4 s after its onset
    assert [counts[k] for k in (0, 30, 45, 55, 95)] == [2, 3, 1, 2, 0]
    np.testing.assert_allclose(freqs[0], midi_to_hz([60, 72]), rtol=1e-5)
    _, mono = real_eval.read_frames(clips / "audio" / "00_piano_mono.ref.txt")
    assert {len(f) for f in mono} == {0, 1}  # the top voice alone
    np.testing.assert_allclose(mono[0], midi_to_hz([72]), rtol=1e-5)


def test_rendering_is_deterministic(clips, tmp_path):
    real_eval.render_clips(clips / "eval.npz", default_soundfont_path(), SETTINGS,
                           tmp_path)
    for name in real_eval.clip_names(SETTINGS):
        again = (tmp_path / f"{name}.wav").read_bytes()
        assert again == (clips / "audio" / f"{name}.wav").read_bytes()


def test_later_pieces_render_under_their_own_names(clips, tmp_path):
    names = real_eval.clip_names({**SETTINGS, "pieces": 1}, first_piece=1, textures=("mono",))
    assert names == ["01_piano_mono", "01_flute_mono"]
    manifest = real_eval.render_clips(clips / "eval.npz", default_soundfont_path(), SETTINGS,
                                      tmp_path, names=names)
    assert sorted(manifest["clips"]) == sorted(names)
    assert {c["piece"] for c in manifest["clips"].values()} == {"val/b.mid"}
    for name in names:  # the same clip as the full render's
        assert (tmp_path / f"{name}.wav").read_bytes() == \
            (clips / "audio" / f"{name}.wav").read_bytes()
    with pytest.raises(ValueError, match="2 pieces, the clips ask for 3"):
        real_eval.render_clips(clips / "eval.npz", default_soundfont_path(), SETTINGS,
                               tmp_path / "more", names=["02_piano_mono"])


def test_a_soundfont_clip_is_the_evaluations_clip_with_its_reference(clips):
    from scipy.io import wavfile

    from notewise.music.soundfont import NoteRenderer
    from notewise.pitch.alignment import soundfont_clip

    corpus = MusicCorpus.load(clips / "eval.npz")
    clip = soundfont_clip(NoteRenderer(default_soundfont_path(), 44100), 44100, corpus, 0, 0,
                          SETTINGS["clip_s"], "poly", SETTINGS["release_tail_s"])
    _, audio = wavfile.read(clips / "audio" / "00_piano_poly.wav")
    np.testing.assert_array_equal(clip.audio, audio)
    times, freqs = clip.reference_frames()
    ref_times, ref = real_eval.read_frames(clips / "audio" / "00_piano_poly.ref.txt")
    np.testing.assert_allclose(times, ref_times)
    assert all(np.allclose(a, b, rtol=1e-5) for a, b in zip(freqs, ref))


def write_predict_csv(path, times, freqs):
    rows = ["time,f0_hz,confidence,energy_share"]
    rows += [f"{t:.2f},{f},0.9,0.5" for t, row in zip(times, freqs) for f in row]
    path.write_text("\n".join(rows) + "\n")


def test_scores_pool_mir_eval_over_each_subset(clips, tmp_path):
    ours = tmp_path / "ours"
    ours.mkdir()
    for name in real_eval.clip_names(SETTINGS):
        times, freqs = real_eval.read_frames(clips / "audio" / f"{name}.ref.txt")
        if name.endswith("poly"):  # drop the lowest note of every poly frame: recall < 1
            freqs = [f[1:] for f in freqs]
        write_predict_csv(ours / f"{name}.csv", times, freqs)
    table = real_eval.score(clips / "audio", ours)
    mono = table.query("texture == 'mono' and instrument == 'all'").iloc[0]
    poly = table.query("texture == 'poly' and instrument == 'piano'").iloc[0]
    assert mono["precision"] == mono["recall"] == mono["f1"] == 1.0
    assert poly["precision"] == 1.0 and 0.3 < poly["recall"] < 0.7
    assert set(table["system"]) == {"notewise"}
    assert len(table) == 3 * 3  # (mono, poly, all) x (piano, flute, all)


def test_the_melody_score_counts_the_reference_melodys_frames(clips, tmp_path):
    """A prediction of each mono clip's own melody, an octave up over its second half: raw
    pitch accuracy is the share of the voiced frames before the octave."""
    ours = tmp_path / "ours"
    ours.mkdir()
    expected = {}
    for name in real_eval.clip_names(SETTINGS):
        times, freqs = real_eval.read_frames(clips / "audio" / f"{name}.ref.txt")
        melody = real_eval.first_frequency(freqs)
        half = len(times) // 2
        melody[half:] *= 2
        write_predict_csv(ours / f"{name}.csv", times, [[f] if f > 0 else [] for f in melody])
        voiced = melody > 0
        expected[name] = (voiced[:half].sum(), voiced.sum())
    table = real_eval.melody_score(clips / "audio", ours).set_index("instrument")
    assert list(table.index) == ["flute", "piano", "all"] and set(table["system"]) == {"notewise"}
    for instrument in ("flute", "piano", "all"):  # abs: melody notes under 50 ms are dropped
        mono = [counts for name, counts in expected.items() if name.endswith("mono")
                and instrument in ("all", name.split("_")[1])]
        hit, voiced = sum(h for h, _ in mono), sum(v for _, v in mono)
        assert table.loc[instrument, "voiced_frames"] == voiced
        assert table.loc[instrument, "raw_pitch_accuracy"] == pytest.approx(hit / voiced, abs=0.01)


def test_a_melody_keeps_its_silent_frames_on_the_grid(tmp_path):
    """Rests stay empty frames: resampled onto the reference they must not take a neighbour's
    note (mir_eval's nearest-frame rule fills a frame that is missing, not one that is empty)."""
    times = np.arange(41) * real_eval.FRAME_S
    notes = [[440.0] if t < 0.105 or t > 0.295 else [] for t in times]
    write_predict_csv(tmp_path / "ours.csv", times, notes)
    grid, melody = real_eval.melody_from_predict_csv(tmp_path / "ours.csv")
    np.testing.assert_allclose(grid, times)
    assert [len(f) for f in melody] == [1] * 11 + [0] * 19 + [1] * 11
    resampled = real_eval.on_reference_grid(times, grid, melody)
    assert [len(f) for f in resampled] == [len(f) for f in melody]


def test_melody_hits_need_a_voiced_estimate_within_50_cents():
    reference = np.array([440.0, 440.0, 440.0, 0.0, 440.0])
    estimate = np.array([440.0, 452.0, 0.0, 300.0, 880.0])  # 0, +47 cents, none, unvoiced, octave
    assert real_eval.melody_hits(reference, estimate).tolist() == [True, True, False, False, False]


def test_event_and_posteriorgram_frames():
    times, freqs = peers.note_event_frames([(0.1, 0.3, 69, 0.8, None)], 0.5)
    assert [len(f) for f in freqs] == [0] * 10 + [1] * 20 + [0] * 20
    np.testing.assert_allclose(freqs[15], [440.0])


@pytest.mark.skipif(peers.basic_pitch_problem() is not None,
                    reason=str(peers.basic_pitch_problem()))
def test_basic_pitch_hears_the_rendered_clip(clips):
    output, events = peers.BasicPitch().run(clips / "audio" / "00_flute_mono.wav")
    times, freqs = peers.posteriorgram_frames(output["note"])
    assert len(times) == output["note"].shape[0] and 0.9 < times[-1] < 1.2
    melody_times, melody = peers.posteriorgram_melody(output["note"])
    np.testing.assert_array_equal(melody_times, times)
    assert all(len(m) == min(len(f), 1) for m, f in zip(melody, freqs))
    heard = np.concatenate([f for f in freqs if len(f)])
    assert np.any(np.abs(12 * np.log2(heard / midi_to_hz(72))) < 0.5)  # the top voice C5
    assert any(key == 72 for _, _, key, *_ in events)


def test_validation_instruments_replace_a_preset_an_octave_below_its_key(capsys):
    from notewise.music.soundfont import NoteRenderer

    renderer = NoteRenderer(default_soundfont_path(), 16000)
    kept = real_eval.instruments_at_key(renderer, {"piano": 0, "organ": 19, "choir": 16})
    assert kept == {"piano": 0, "organ": real_eval.STAND_INS["organ"]}
    said = capsys.readouterr().out
    assert "organ (program 19) sounds an octave below its key; program 20 plays it" in said
    assert "choir (program 16) sounds an octave below its key; left out" in said
