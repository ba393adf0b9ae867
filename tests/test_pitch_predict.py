"""``notewise predict`` on generated WAV files with known notes.

The model is hand-wired (``spectral_peak_model``: a note at every strong spectral peak), so what
is tested is the command's own work: reading, mixing down, resampling, framing, batching, timing
and the CSV, with answers known in advance.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
from scipy.io import wavfile

from notewise.pitch import commands
from notewise.pitch.model import save_model
from notewise.pitch.inference import default_threshold
from notewise.pitch.predict import CSV_COLUMNS, frame, read_audio

from pitch_helpers import spectral_peak_model


def cents(a, b):
    return 1200 * np.log2(np.asarray(a) / b)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "peaks.pth"
    save_model(spectral_peak_model(), path)
    return path


def two_part_wav(path, rate: int, dtype) -> None:
    """0.0-0.5 s: 440 Hz in both channels; 0.5-1.0 s: 300 Hz left + 1250 Hz right."""
    t = np.arange(rate) / rate
    first = t < 0.5
    left = np.where(first, 0.5 * np.sin(2 * np.pi * 440 * t), 0.4 * np.sin(2 * np.pi * 300 * t))
    right = np.where(first, 0.5 * np.sin(2 * np.pi * 440 * t), 0.4 * np.sin(2 * np.pi * 1250 * t))
    stereo = np.stack([left, right], axis=1)
    if np.issubdtype(dtype, np.integer):
        stereo = np.round(stereo * np.iinfo(dtype).max)
    wavfile.write(path, rate, stereo.astype(dtype))


def run_cli(argv):
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.parametrize("rate, dtype", [(22050, np.int16), (48000, np.float32)])
def test_predict_finds_the_known_notes_at_the_right_times(tmp_path, checkpoint, rate, dtype):
    wav, out = tmp_path / "in.wav", tmp_path / "out.csv"
    two_part_wav(wav, rate, dtype)
    run_cli(["predict", str(wav), "--checkpoint", str(checkpoint), "-o", str(out),
             "--batch-size", "16"])
    assert out.read_text().splitlines()[0] == ",".join(CSV_COLUMNS)
    table = pd.read_csv(out)
    assert list(table.columns) == CSV_COLUMNS
    times = np.unique(table["time"])
    np.testing.assert_allclose(np.diff(times).min(), 0.01, atol=1e-9)  # the 10 ms grid
    assert table["time"].max() <= 1.0 + 1e-9
    first = table[(table["time"] > 0.1) & (table["time"] < 0.4)]
    second = table[(table["time"] > 0.6) & (table["time"] < 0.9)]
    assert first.groupby("time").size().eq(1).all()  # one note per window
    assert np.abs(cents(first["f0_hz"], 440.0)).max() < 20
    assert second.groupby("time").size().eq(2).all()  # the mix-down keeps both channels
    low, high = second[second["f0_hz"] < 700], second[second["f0_hz"] >= 700]
    assert np.abs(cents(low["f0_hz"], 300.0)).max() < 20
    assert np.abs(cents(high["f0_hz"], 1250.0)).max() < 20
    assert (second.groupby("time")["energy_share"].sum() <= 1.0 + 1e-5).all()
    assert table["confidence"].between(default_threshold(), 1.0).all()


def test_read_audio_mixes_down_and_resamples(tmp_path):
    wav = tmp_path / "in.wav"
    two_part_wav(wav, 22050, np.int16)
    audio = read_audio(wav, 44100)
    assert audio.ndim == 1 and audio.dtype == np.float32
    assert len(audio) == 44100
    assert 0.45 < np.abs(audio[:20000]).max() < 0.55


def test_frames_stamped_at_the_centre_are_centred_on_multiples_of_the_hop():
    audio = np.arange(10_000, dtype=np.float32)
    windows = frame(audio, 4096, 441, 0.5)
    assert windows.shape == (10_000 // 441 + 1, 4096)
    assert windows[0, 2048].item() == 0.0 and windows[0, 2047].item() == 0.0  # zero padding
    assert windows[3, 2048].item() == 3 * 441  # the centre sample of window k is k * hop


def test_one_threshold_default_the_schemas(checkpoint):
    from notewise.pitch.settings import pitch_settings

    assert default_threshold() == pitch_settings({})["decode"]["threshold"] == 0.3
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["predict", "x.wav"]).threshold is None  # None: the schema's


def test_other_formats_are_read_through_libsndfile(tmp_path):
    import soundfile

    wav, flac = tmp_path / "in.wav", tmp_path / "in.flac"
    two_part_wav(wav, 22050, np.int16)
    rate, samples = wavfile.read(wav)
    soundfile.write(flac, samples, rate)
    np.testing.assert_allclose(read_audio(flac, 44100), read_audio(wav, 44100), atol=1e-6)


def test_non_finite_samples_are_refused_naming_the_file_or_zeroed(tmp_path, checkpoint):
    wav = tmp_path / "nan.wav"
    audio = (0.5 * np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)).astype(np.float32)
    audio[22050] = np.nan
    wavfile.write(wav, 44100, audio)
    with pytest.raises(ValueError, match=r"nan\.wav: 1 non-finite samples \(the first at 0\.500 s\)"):
        read_audio(wav, 44100)
    repaired = read_audio(wav, 44100, nonfinite="zero")
    assert np.isfinite(repaired).all() and repaired[22050] == 0
    out = tmp_path / "out.csv"
    run_cli(["predict", str(wav), "--checkpoint", str(checkpoint), "-o", str(out),
             "--nonfinite", "zero"])
    table = pd.read_csv(out)
    assert (np.abs(cents(table[table["time"].between(0.45, 0.55)]["f0_hz"], 440.0)) < 20).all()


@pytest.mark.parametrize("size", [30, 0])
def test_an_unreadable_file_is_named_and_leaves_no_output(tmp_path, checkpoint, size):
    wav, out = tmp_path / "bad.wav", tmp_path / "out.csv"
    full = tmp_path / "full.wav"
    two_part_wav(full, 22050, np.int16)
    wav.write_bytes(full.read_bytes()[:size])
    with pytest.raises(ValueError, match="bad.wav: unreadable audio"):
        run_cli(["predict", str(wav), "--checkpoint", str(checkpoint), "-o", str(out)])
    assert not out.exists()


def test_a_truncated_file_says_how_much_was_read(tmp_path, caplog):
    full, cut = tmp_path / "full.wav", tmp_path / "cut.wav"
    two_part_wav(full, 22050, np.int16)
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level("INFO", logger="notewise.pitch.audio"):
        audio = read_audio(cut, 22050)
    assert 0 < len(audio) < 22050
    assert f"read {len(audio)} frames" in caplog.text and "cut.wav" in caplog.text


def test_predict_writes_midi_notes_or_a_melody_by_the_output_name(tmp_path, checkpoint):
    import mido

    wav = tmp_path / "in.wav"
    two_part_wav(wav, 22050, np.int16)
    for name in ("song.mid", "song.notes.csv", "song.melody.csv"):
        run_cli(["predict", str(wav), "--checkpoint", str(checkpoint), "-o", str(tmp_path / name)])
    notes = pd.read_csv(tmp_path / "song.notes.csv")
    line = pd.read_csv(tmp_path / "song.melody.csv")
    assert set(line.loc[line["time"].between(0.05, 0.45), "pitch"]) == {69}
    assert set(line.loc[line["time"].between(0.55, 0.95), "pitch"]) <= {62, 87}
    # 440 Hz (A4) for 0-0.5 s, then 300 Hz (D4, 62.4) with 1250 Hz (D#6, 87.1) to 1.0 s
    assert sorted(notes["pitch"]) == [62, 69, 87]
    by_pitch = notes.set_index("pitch")
    assert abs(by_pitch.loc[69, "onset"]) < 0.03 and abs(by_pitch.loc[69, "offset"] - 0.5) < 0.06
    assert abs(by_pitch.loc[62, "onset"] - 0.5) < 0.06 and abs(by_pitch.loc[87, "offset"] - 1.0) < 0.06
    midi = mido.MidiFile(tmp_path / "song.mid")
    ons = [m.note for m in midi.tracks[0] if m.type == "note_on" and m.velocity > 0]
    assert sorted(ons) == [62, 69, 87]


def test_the_python_api_gives_the_notes_of_the_cli(tmp_path, checkpoint):
    import notewise

    wav, out = tmp_path / "in.wav", tmp_path / "out.notes.csv"
    two_part_wav(wav, 48000, np.float32)
    run_cli(["predict", str(wav), "--checkpoint", str(checkpoint), "-o", str(out)])
    from_file = notewise.predict_file(wav, checkpoint)
    audio, rate = soundfile_read(wav)
    from_array = notewise.predict(audio, rate, checkpoint)
    pd.testing.assert_frame_equal(from_file, from_array)
    np.testing.assert_allclose(pd.read_csv(out)[["onset", "offset", "pitch"]],
                               from_file[["onset", "offset", "pitch"]], rtol=1e-5)
    with pytest.raises(ValueError, match="must be \\[samples\\]"):
        notewise.predict(np.zeros((2, 2, 2)), rate, checkpoint)


def soundfile_read(path):
    import soundfile

    return soundfile.read(str(path), dtype="float32")
