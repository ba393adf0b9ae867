"""Sampled-instrument windows (kind soundfont_render, notewise.music.soundfont): the mixture is the
sum of the notes' own signals, shares are their measured power, key-release labels, determinism,
validation, and SoundFont errors that name the file."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notewise.config import ConfigError
from notewise.workflow.specs import check_config
from notewise.music.checks import SoundFontError, default_soundfont_path
from notewise.music.corpus import MusicCorpus
from notewise.synth.bins import midi_to_hz
from notewise.music import soundfont
from notewise.synth.generate import generate_range
from notewise.synth.labels import classify_note
from notewise.synth.oscillator import PEAK_LIMIT
from notewise.store.validate import validate_shard

from shardkit import write_one_shard as write

W = 4096
SR = 44100
SPEC = {"seed": 3, "dataset": "sf", "audio": {"sample_rate": SR, "window": W},
        "bins": {"n_bins": 2048, "f_min": 20.0, "f_max": 5000.0}, "labels": {"sigma_bins": 1.5},
        "settings": {"kind": "soundfont_render", "programs": [0, 20, 40, 73]}}


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(11)
    pieces = {}
    for name, n, span in (("one", 40, 3.0), ("two", 20, 1.5)):
        start = np.sort(rng.uniform(0, span, n))
        length = rng.choice([0.03, 0.08, 0.3, 1.0], n)  # classes 1-4
        pieces[name] = {"start_s": start, "end_s": start + length,
                        "pitch": rng.integers(14, 122, n),  # below 20 Hz and above 5 kHz too
                        "velocity": rng.integers(30, 128, n), "program": np.zeros(n, int),
                        "track": rng.integers(0, 3, n)}
    return MusicCorpus.from_pieces(pieces, {})


@pytest.fixture(scope="module")
def ctx(corpus):
    return soundfont.soundfont_context(SPEC, corpus)


def _range(corpus, start, count, spec=SPEC):
    return soundfont.generate_soundfont_samples(spec, np.arange(start, start + count),
                                                corpus=corpus)


@settings(max_examples=20, deadline=None)
@given(sample=st.integers(0, 10**6))
def test_mixture_is_the_sum_of_parts_and_shares_their_measured_power(ctx, corpus, sample):
    data = _range(corpus, sample, 1)
    parts = soundfont.render_parts(ctx, *soundfont.window_position(ctx, sample))
    mix = parts.parts.astype(np.float64).sum(axis=0) if len(parts.parts) else np.zeros(W)
    peak = np.abs(mix).max()
    expected = mix * (PEAK_LIMIT / peak if peak > PEAK_LIMIT else 1.0)
    np.testing.assert_allclose(data.waveforms[0], expected, rtol=0, atol=2e-7)
    # the labelled notes' shares are the measured power of their own signals over the visible span
    freqs = midi_to_hz(parts.pitch)
    power = np.zeros(len(parts.pitch))
    for j in range(len(power)):
        first, stop = max(parts.onset[j], 0), min(parts.offset[j], W)
        if stop > first:
            power[j] = np.mean(parts.parts[j, first:stop].astype(np.float64) ** 2)
            cls = classify_note(parts.onset[j], parts.offset[j], W)
            power[j] *= (stop - first) / W * 0.5 if cls in (1, 3) else 1.0
    labelled = (freqs >= 20.0) & (freqs <= 5000.0) & (power > 0)
    assert len(data.notes["note_freq"]) == labelled.sum()
    np.testing.assert_allclose(np.sort(data.notes["note_energy_share"]),
                               np.sort(power[labelled] / power[labelled].sum()), rtol=1e-5)
    # labels end at the key release: the class follows onset and the MIDI note-off
    np.testing.assert_array_equal(data.notes["note_offset"], parts.offset[labelled])
    np.testing.assert_array_equal(
        data.notes["note_class"],
        [classify_note(a, b, W) for a, b in zip(parts.onset[labelled], parts.offset[labelled])])


def test_release_tails_ring_past_the_key_release_unlabelled(ctx):
    signal = ctx.renderer.note_signal(0, 60, 0.8, 4410, 2 * SR)
    assert len(signal) > 4410 + 441  # the piano rings on after its key is released
    assert np.abs(signal[4410:]).max() > 1e-3


def test_note_signals_do_not_depend_on_what_was_rendered_before(ctx):
    renderer = soundfont.NoteRenderer(default_soundfont_path(), SR)
    first = renderer.render_note(40, 67, 0.5, 3000, 9000)
    for program, key in ((0, 30), (20, 90), (73, 72)):
        renderer.render_note(program, key, 1.0, 20000, 25000)
    np.testing.assert_array_equal(renderer.render_note(40, 67, 0.5, 3000, 9000), first)
    renderer._cache.clear()
    cached = renderer.note_signal(40, 67, 0.5, 3000, 40000)
    np.testing.assert_array_equal(cached[:9000], first[:len(cached[:9000])])


def test_deterministic_and_independent_of_the_range(corpus):
    whole = _range(corpus, 0, 24)
    part = _range(corpus, 16, 8)
    np.testing.assert_array_equal(whole.waveforms[16:], part.waveforms)
    np.testing.assert_array_equal(whole.energies[16:], part.energies)
    again = _range(corpus, 0, 24)
    assert whole.waveforms.tobytes() == again.waveforms.tobytes()
    assert whole.confs.tobytes() == again.confs.tobytes()


def test_programs_are_drawn_per_voice_from_the_list(corpus):
    data = _range(corpus, 0, 64)
    assert set(data.notes["note_timbre"].tolist()) <= {0, 20, 40, 73}
    assert len(set(data.notes["note_timbre"].tolist())) >= 2


def test_shards_validate_and_wrong_labels_fail(tmp_path, corpus):
    data = _range(corpus, 0, 32)
    wpath, tpath = write(tmp_path / "ok", data)
    report = validate_shard(wpath, tpath, SPEC)
    assert report["checks"] == "all" and report["samples"] == 32
    wrong = np.full_like(data.notes["note_timbre"], 5)
    bad = data._replace(notes={**data.notes, "note_timbre": wrong})
    wpath, tpath = write(tmp_path / "bad", bad)
    with pytest.raises(ValueError, match="not among the configured programs"):
        validate_shard(wpath, tpath, SPEC)


def _config(soundfont_value):
    return {"seed": 0, "audio": {}, "bins": {}, "datasets": {
        "s": {"kind": "soundfont_render", "num_samples": 8, "shard_size": 8,
              "soundfont": str(soundfont_value)}}}


def test_bad_soundfont_fails_at_config_time_naming_the_file(tmp_path):
    missing = tmp_path / "missing.sf2"
    with pytest.raises(ConfigError, match="missing.sf2"):
        check_config(_config(missing))
    junk = tmp_path / "junk.sf2"
    junk.write_bytes(b"RIFF\0\0\0\0WAVEjunk")
    with pytest.raises(ConfigError, match="junk.sf2.*not an SF2/SF3"):
        check_config(_config(junk))
    assert check_config(_config("default"))["datasets"]["s"]["kind"] == "soundfont_render"


def test_unloadable_soundfont_and_missing_program_name_the_file(tmp_path):
    broken = tmp_path / "broken.sf2"
    broken.write_bytes(b"RIFF\x10\0\0\0sfbk" + b"\0" * 8)
    with pytest.raises(SoundFontError, match="broken.sf2"):
        soundfont.NoteRenderer(broken, SR)
    renderer = soundfont.NoteRenderer(default_soundfont_path(), SR)
    assert renderer.has_program(73) and not renderer.has_program(73, bank=99)
    renderer.has_program = lambda program, bank=0: program != 73
    with pytest.raises(SoundFontError, match=r"TimGM6mb.sf2.*\[73\]"):
        renderer.check_programs([0, 73])


def test_a_preset_sounding_an_octave_below_its_key_is_refused():
    """TimGM6mb's church organ (19) has a 16' rank: its f0/2 partial is within a few dB of the
    strongest, so labels by key would be an octave high; its reed organ (20) sounds at its key."""
    renderer = soundfont.NoteRenderer(default_soundfont_path(), SR)
    assert renderer.octave_below_db(19) > soundfont.OCTAVE_BELOW_DB + 10
    assert renderer.octave_below_db(20) < soundfont.OCTAVE_BELOW_DB - 30
    assert not renderer.sounds_at_key(19) and renderer.sounds_at_key(0)
    with pytest.raises(SoundFontError, match=r"TimGM6mb.sf2: GM programs 19 \(.\d+ dB\) sound an"
                                             " octave below"):
        renderer.check_programs([0, 19, 73])
    renderer.check_programs([0, 20, 73])


def test_the_octave_check_finds_a_synthetic_sub_octave():
    """A preset stand-in whose note is the key's partials plus one at f0/2, at a chosen level."""
    renderer = soundfont.NoteRenderer(default_soundfont_path(), SR)
    t = np.arange(SR) / SR

    def fake_note(level_db):
        def render(program, key, velocity, held, length):
            f0 = float(midi_to_hz(key))
            tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in (1, 2, 3))
            return (tone + 10 ** (level_db / 20) * np.sin(np.pi * f0 * t)).astype(np.float32)
        return render

    for level_db in (-40.0, -25.0, -15.0, 0.0):
        renderer._octave_below.clear()
        renderer.render_note = fake_note(level_db)
        assert renderer.octave_below_db(0) == pytest.approx(level_db, abs=1.5)
        assert renderer.sounds_at_key(0) == (level_db < soundfont.OCTAVE_BELOW_DB)
    renderer._octave_below.clear()
    renderer.render_note = lambda program, key, velocity, held, length: np.zeros(length, np.float32)
    assert renderer.octave_below_db(0) == -np.inf and renderer.sounds_at_key(0)


def test_generate_range_dispatches_the_kind(tmp_path, corpus):
    corpus.save(tmp_path / "notes.npz")
    spec = {**SPEC, "notes_file": str(tmp_path / "notes.npz")}
    via_generate = generate_range(spec, 5, 3, None)
    np.testing.assert_array_equal(via_generate.waveforms, _range(corpus, 5, 3).waveforms)


def test_runs_of_samples_share_a_piece_drawn_by_length(ctx):
    run = ctx.settings["piece_run"]
    positions = [soundfont.window_position(ctx, s) for s in range(64 * run)]
    pieces = np.array([p for p, _ in positions]).reshape(-1, run)
    assert (pieces == pieces[:, :1]).all()
    starts = np.array([s for _, s in positions]).reshape(-1, run)
    assert (np.ptp(starts, axis=1) > 0).mean() > 0.9  # each sample its own start
    runs = np.array([soundfont.window_position(ctx, s * run)[0] for s in range(3000)])
    weights = np.diff(np.concatenate([[0], ctx.cumulative])) / ctx.cumulative[-1]
    observed = np.bincount(runs, minlength=len(weights)) / len(runs)
    assert np.abs(observed - weights).max() < 4 * np.sqrt(weights.max() / len(runs))
