"""The pitch model: shapes, the front end's invariances, checkpoint formats."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from notewise.pitch.model import (
    CONFIG_FILE,
    PitchModel,
    PitchModelConfig,
    count_parameters,
    load_model,
    save_model,
)

from pitch_helpers import BINS, tone

SMALL = PitchModelConfig(width=8, dilations=(1, 2), stride=1, fft_oversample=8)
STRIDED = PitchModelConfig(width=8, dilations=(1, 2), stride=8, fft_oversample=2)


def sine(freq: float, phase: float = 0.0, start: int = 0, n: int = 4096) -> torch.Tensor:
    t = (np.arange(n) + start) / 44100
    return torch.tensor(0.5 * np.sin(2 * np.pi * freq * t + phase), dtype=torch.float32)


@pytest.mark.parametrize("cfg", [SMALL, STRIDED], ids=["stride1", "stride8"])
def test_output_shapes_and_default_size(cfg):
    model = PitchModel(cfg).eval()
    conf, energy = model(torch.randn(3, 1, 4096))
    assert conf.shape == energy.shape == (3, 2048)
    assert 2_000 < count_parameters(PitchModel()) < 100_000  # small by design


def test_front_end_peaks_at_the_tone_and_at_its_harmonic_channels():
    front = PitchModel(SMALL).frontend
    for freq in (110.0, 440.0, 1234.5):
        spec = front(sine(freq).view(1, 1, -1))[0][0]
        assert abs(spec[1].argmax().item() - BINS.freq_to_bin(freq)) <= 1.0  # h = 1: exact grid
        # channel h = 2 at bin b holds the spectrum at 2 f_b: the tone shows up an octave lower
        assert abs(spec[2].argmax().item() - BINS.freq_to_bin(freq / 2)) <= 1.0
        assert spec.max() <= 1.1 and spec.min() >= 0.0


def test_front_end_ignores_phase_window_position_and_level():
    front = PitchModel(SMALL).frontend
    ref = front(sine(440.0).view(1, 1, -1))[0]
    for phase, start, gain in ((1.0, 0, 1.0), (0.0, 1234, 1.0), (2.5, 517, 0.01)):
        other = front((gain * sine(440.0, phase, start)).view(1, 1, -1))[0]
        # the main lobe (+-40 bins) of the h = 1 channel; far sidelobes near the -80 dB floor
        # do depend on phase (the negative-frequency image), by up to ~0.1 dB
        lobe = slice(1106, 1186)
        assert torch.allclose(other[0, 1, lobe], ref[0, 1, lobe], atol=1e-3)


@pytest.mark.parametrize("cfg", [SMALL, STRIDED], ids=["stride1", "stride8"])
def test_grid_db_is_cubic_interpolation_maxed_with_the_fft_samples_nearest_each_point(cfg):
    """The front end's gathers against the definition, in NumPy: Catmull-Rom at each grid
    point's FFT position, then the maximum with every FFT sample pooled into that point."""
    front = PitchModel(cfg).frontend
    waves = torch.randn(3, 1, 4096)
    x = waves.reshape(3, -1).double().numpy()
    x = x / np.sqrt((x**2).mean(axis=1, keepdims=True))
    hann = front.hann.double().numpy()
    power = np.abs(np.fft.rfft(x * hann, n=front.n_fft)) ** 2 * 4 / hann.sum() ** 2
    db = 10 * np.log10(np.maximum(power, 1e-12))
    index, weights = front.interp_index.numpy(), front.interp_weights.double().numpy()
    want = sum(db[:, index[k]] * weights[k] for k in range(4))
    for point, members in zip(front.pool_grid_index.numpy(), front.pool_fft_index.numpy().T):
        want[:, point] = np.maximum(want[:, point], db[:, members].max(axis=1))
    assert len(front.pool_grid_index) > 100  # the high octaves are pooled
    np.testing.assert_allclose(front.grid_db(waves).numpy(), want, atol=2e-3)


def test_pool_table_lists_every_member_of_each_grid_point():
    from notewise.pitch.model import pool_table

    grid = np.array([5, 3, 5, 5, 4, 3])
    pooled, members = pool_table(grid, np.arange(10, 16))
    assert pooled.tolist() == [3, 4, 5]
    assert members.shape == (3, 3)
    for point, column in zip(pooled, members.T):
        assert set(column) == set(10 + np.flatnonzero(grid == point))


def test_silence_gives_the_floor_not_nan():
    for cfg in (SMALL, STRIDED):
        for level in PitchModel(cfg).frontend(torch.zeros(2, 1, 4096)):
            assert torch.isfinite(level).all() and level.abs().max().item() == 0.0


def test_save_load_and_harness_checkpoint_formats(tmp_path):
    torch.manual_seed(0)
    model = PitchModel(SMALL).eval()
    x = torch.tensor(tone(330.0, 0.2, 0.3), dtype=torch.float32).view(1, 1, -1)
    expected = model(x)[0]
    save_model(model, tmp_path / "export.pth")
    assert torch.allclose(load_model(tmp_path / "export.pth")(x)[0], expected)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, ckpt / "model.pth")
    (ckpt / CONFIG_FILE).write_text(json.dumps(SMALL.to_dict()))
    for path in (ckpt, ckpt / "model.pth"):
        assert torch.allclose(load_model(path)(x)[0], expected)


def test_config_round_trip():
    assert PitchModelConfig.from_dict(json.loads(json.dumps(SMALL.to_dict()))) == SMALL
    with pytest.raises(TypeError):
        PitchModelConfig(width="8", bogus=1)  # unknown keys are an error when passed directly


def test_library_defaults_are_the_workflow_defaults():
    from notewise.pitch.settings import model_config, pitch_settings

    assert model_config(pitch_settings({})) == PitchModelConfig()


def test_a_strided_front_end_pools_the_full_resolution_one():
    """Stride s: the fundamental holds the stride-1 ``h = 1`` levels bin for bin, and each
    harmonic channel is the loudest of the s bins of its position (shifted within half a
    position)."""
    fine, coarse = PitchModel(PitchModelConfig(stride=1)).frontend, \
        PitchModel(PitchModelConfig(stride=8, fft_oversample=2)).frontend
    x = torch.stack([sine(f) + 0.3 * sine(2.7 * f, 1.0) for f in (65.0, 440.0, 1500.0)])
    full, _ = fine(x.unsqueeze(1))
    harmonics, fundamental = coarse(x.unsqueeze(1))
    assert harmonics.shape == (3, 8, 256) and fundamental.shape == (3, 8, 256)
    assert torch.equal(fundamental.transpose(1, 2).reshape(3, -1), full[:, 1])
    assert torch.equal(harmonics[:, 1], full[:, 1].view(3, 256, 8).amax(dim=2))
    for h in (0, 2, 5):  # channels 0.5, 2 and 5: a peak moves by at most one position
        peak_full = full[:, h].argmax(dim=1) // 8
        assert (harmonics[:, h].argmax(dim=1) - peak_full).abs().max() <= 1


def test_the_head_writes_position_k_s_plus_j_from_its_channel_j():
    """The depth-to-space of the head: output bin ``k * stride + j`` is channel ``j`` at
    position ``k`` (confidence) and ``stride + j`` (energy)."""
    torch.manual_seed(0)
    model = PitchModel(STRIDED).eval()
    with torch.no_grad():
        model.head.weight.zero_()
        bias = torch.arange(16, dtype=torch.float32)
        model.head.bias.copy_(bias)
        conf, energy = model(torch.randn(1, 1, 4096))
    assert torch.equal(conf[0], bias[:8].repeat(256)) and torch.equal(energy[0], bias[8:].repeat(256))


def test_a_stride_must_divide_the_bins():
    with pytest.raises(ValueError, match="stride 7 does not divide n_bins 2048"):
        PitchModelConfig(stride=7)


def test_a_config_written_before_strides_reads_as_stride_one():
    old = {k: v for k, v in SMALL.to_dict().items() if k != "stride"}
    assert PitchModelConfig.from_dict(old) == SMALL
