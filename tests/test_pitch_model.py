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

SMALL = PitchModelConfig(width=8, dilations=(1, 2))


def sine(freq: float, phase: float = 0.0, start: int = 0, n: int = 4096) -> torch.Tensor:
    t = (np.arange(n) + start) / 44100
    return torch.tensor(0.5 * np.sin(2 * np.pi * freq * t + phase), dtype=torch.float32)


def test_output_shapes_and_default_size():
    model = PitchModel(SMALL).eval()
    conf, energy = model(torch.randn(3, 1, 4096))
    assert conf.shape == energy.shape == (3, 2048)
    assert 2_000 < count_parameters(PitchModel()) < 100_000  # small by design


def test_front_end_peaks_at_the_tone_and_at_its_harmonic_channels():
    front = PitchModel().frontend
    for freq in (110.0, 440.0, 1234.5):
        spec = front(sine(freq).view(1, 1, -1))[0]
        assert abs(spec[1].argmax().item() - BINS.freq_to_bin(freq)) <= 1.0  # h = 1: exact grid
        # channel h = 2 at bin b holds the spectrum at 2 f_b: the tone shows up an octave lower
        assert abs(spec[2].argmax().item() - BINS.freq_to_bin(freq / 2)) <= 1.0
        assert spec.max() <= 1.1 and spec.min() >= 0.0


def test_front_end_ignores_phase_window_position_and_level():
    front = PitchModel().frontend
    ref = front(sine(440.0).view(1, 1, -1))
    for phase, start, gain in ((1.0, 0, 1.0), (0.0, 1234, 1.0), (2.5, 517, 0.01)):
        other = front((gain * sine(440.0, phase, start)).view(1, 1, -1))
        # the main lobe (+-40 bins) of the h = 1 channel; far sidelobes near the -80 dB floor
        # do depend on phase (the negative-frequency image), by up to ~0.1 dB
        lobe = slice(1106, 1186)
        assert torch.allclose(other[0, 1, lobe], ref[0, 1, lobe], atol=1e-3)


def test_silence_gives_the_floor_not_nan():
    spec = PitchModel().frontend(torch.zeros(2, 1, 4096))
    assert torch.isfinite(spec).all() and spec.abs().max().item() == 0.0


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
