"""A file streamed through ``predict`` in blocks (``notewise.pitch.audio``) gives what the whole
array gives -- the same samples, windows, frame table, notes and MIDI -- in memory that does not
grow with the file."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st

from notewise.pitch import audio as stream
from notewise.pitch.inference import Predictor, concat_notes
from notewise.pitch.model import save_model
from notewise.pitch.predict import (file_frames, predict_frames, predict_file, read_audio,
                                    write_prediction)

from pitch_helpers import spectral_peak_model

SR = 44100


def noisy_tones(n: int, rate: int, channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    tones = [0.4 * np.sin(2 * np.pi * f * t) for f in (440.0, 300.0, 1250.0)[:channels]]
    audio = np.stack(tones, axis=1) + 0.05 * rng.standard_normal((n, channels))
    return audio.astype(np.float32)


def whole_file(path, nonfinite="error") -> np.ndarray:
    """Today's path: the whole file read, then ``model_audio``."""
    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return stream.model_audio(audio, rate, SR, path, nonfinite)


# --------------------------------------------------------------------------- samples


@pytest.mark.parametrize("rate", [22050, 48000, 44100, 8000])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("block", [5, 157, 2000])
def test_streamed_samples_equal_the_whole_files(tmp_path, rate, channels, block):
    path = tmp_path / "in.wav"
    soundfile.write(path, noisy_tones(rate + 1234, rate, channels), rate, subtype="FLOAT")
    blocks = list(stream.stream_audio(path, SR, block_s=block / rate))
    whole = whole_file(path)
    np.testing.assert_array_equal(np.concatenate(blocks), whole)
    up, down = stream.resample_ratio(rate, SR)
    assert len(blocks) >= (rate + 1234) // max(block, down) // 2  # many blocks
    longest = (block + 2 * stream.resample_margin(up, down)) * up // down + up
    assert max(map(len, blocks)) <= longest  # a block and its margin, never the file
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 3000), rate=st.sampled_from([8000, 11025, 16000, 22050, 32000, 48000,
                                                     96000]),
       sizes=st.lists(st.integers(1, 700), min_size=1, max_size=8))
def test_resampled_blocks_of_any_sizes_join_to_the_whole_resampling(n, rate, sizes):
    up, down = stream.resample_ratio(rate, SR)
    audio = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    cuts = np.cumsum(np.resize(sizes, n + 1))
    blocks = np.split(audio, cuts[cuts < n])
    joined = list(stream.resample_blocks(blocks, up, down))
    want = stream.resample(audio, up, down) if n else np.zeros(0, np.float32)
    np.testing.assert_array_equal(np.concatenate(joined) if joined else want[:0], want)


def test_non_finite_samples_across_blocks_are_counted_over_the_file(tmp_path):
    path = tmp_path / "nan.wav"
    audio = noisy_tones(48000, 48000, 2)
    audio[12000, 0] = np.nan
    audio[30000:30003, 1] = np.inf
    soundfile.write(path, audio, 48000, subtype="FLOAT")
    said = r"nan\.wav: 4 non-finite samples \(the first at 0\.250 s\)"
    with pytest.raises(ValueError, match=said):
        read_audio(path, SR, block_s=0.01)
    with pytest.raises(ValueError, match=said):
        whole_file(path)
    np.testing.assert_array_equal(read_audio(path, SR, "zero", block_s=0.01),
                                  whole_file(path, "zero"))


# --------------------------------------------------------------------------- windows


@settings(max_examples=150, deadline=None)
@given(n=st.integers(0, 3000), window=st.integers(1, 600), hop_share=st.floats(0.01, 2.0),
       stamp=st.floats(0.0, 1.0), block=st.integers(1, 900), batch=st.integers(1, 9))
def test_streamed_windows_are_frames_windows(n, window, hop_share, stamp, block, batch):
    hop = max(1, int(window * hop_share))
    audio = np.arange(1, n + 1, dtype=np.float32)
    blocks = [audio[i:i + block] for i in range(0, n, block)]
    framer = stream._Framer(window, hop, stamp, batch)
    parts = []
    for b in blocks:
        parts.append(framer.push(b))
        assert len(framer.held) < window + batch * hop  # so at most a block more, ever
    parts.append(framer.finish())
    parts = [p for p in parts if p is not None]
    firsts = [k for k, _ in parts]
    assert firsts == list(np.cumsum([0] + [len(w) for _, w in parts])[:-1])
    assert all(len(w) % batch == 0 for _, w in parts[:-1])  # the model's batches, unchanged
    want = stream.frame(audio, window, hop, stamp).numpy()
    np.testing.assert_array_equal(np.concatenate([w.numpy() for _, w in parts]), want)


# --------------------------------------------------------------------------- predict


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "peaks.pth"
    save_model(spectral_peak_model(), path)
    return Predictor.load(path, batch_size=16, device="cpu"), path


@pytest.mark.parametrize("rate, channels", [(48000, 2), (22050, 1)])
def test_a_streamed_file_gives_the_whole_arrays_frames_notes_and_midi(tmp_path, predictor,
                                                                      rate, channels):
    model, checkpoint = predictor
    path = tmp_path / "in.flac"
    soundfile.write(path, noisy_tones(int(1.3 * rate), rate, channels), rate)
    whole = predict_frames(model, whole_file(path), 441)
    streamed = file_frames(model, path, 441, block_s=0.013)  # 100 blocks
    assert len(whole) > 100
    pd.testing.assert_frame_equal(streamed, whole, check_exact=True)
    assert file_frames(model, path, 441).equals(whole)  # one block
    notes = predict_file(path, checkpoint, batch_size=16, block_s=0.013)
    pd.testing.assert_frame_equal(notes, predict_file(path, checkpoint, batch_size=16))
    for block_s in (0.013, 30.0):
        write_prediction(path, checkpoint, tmp_path / f"{block_s}.mid", batch_size=16,
                         block_s=block_s)
    assert (tmp_path / "0.013.mid").read_bytes() == (tmp_path / "30.0.mid").read_bytes()


class CountingPredictor:
    """No model: records the most windows it is handed at once, finds no notes."""

    def __init__(self, window=4096, batch_size=256):
        self.model = type("M", (), {"cfg": type("C", (), {"window": window, "sample_rate": SR})})
        self.batch_size, self.most, self.windows = batch_size, 0, 0

    def notes(self, windows):
        self.most, self.windows = max(self.most, len(windows)), self.windows + len(windows)
        return concat_notes([])


def long_wav(path, seconds: float, rate: int = 22050) -> None:
    """``seconds`` of int16 noise, written a second at a time."""
    rng = np.random.default_rng(0)
    with soundfile.SoundFile(path, "w", rate, 2, "PCM_16") as out:
        for _ in range(int(seconds)):
            out.write(0.3 * rng.standard_normal((rate, 2)))


def streamed_peak(path, block_s: float) -> tuple[int, CountingPredictor]:
    counter = CountingPredictor()
    tracemalloc.start()
    try:
        file_frames(counter, path, 441, block_s=block_s)
        return tracemalloc.get_traced_memory()[1], counter
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_file(tmp_path):
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    long_wav(short, 60)
    long_wav(long, 600)
    short_peak, _ = streamed_peak(short, block_s=2.0)
    long_peak, counter = streamed_peak(long, block_s=2.0)
    whole_bytes = 600 * SR * 4  # the model-rate signal alone, had it been held: 106 MB
    assert counter.windows == 600 * SR // 441 + 1
    assert counter.most <= (2.0 * SR + 4096 + 256 * 441) // 441 + 1
    assert long_peak < 16e6 < whole_bytes / 6, long_peak
    assert long_peak < 1.1 * short_peak + 1e6, (short_peak, long_peak)
