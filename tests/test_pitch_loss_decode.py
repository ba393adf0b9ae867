"""Pitch loss and decoding on hand-made targets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from notewise.synth.bins import Bins
from notewise.pitch.decode import decode, find_peaks
from notewise.pitch.loss import confidence_loss, energy_kl, pitch_loss

from pitch_helpers import gaussian

N_BINS = 2048
BINS = Bins()


def logit(p: np.ndarray) -> torch.Tensor:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return torch.tensor(np.log(p / (1 - p)), dtype=torch.float32)


def energy_target(centres, shares) -> np.ndarray:
    out = np.zeros(N_BINS)
    for c, s in zip(centres, shares):
        g = gaussian(N_BINS, c)
        out += s * g / g.sum()
    return out


def test_kl_is_zero_for_the_target_itself_and_positive_otherwise():
    target = torch.tensor(energy_target([500.3, 900.0], [0.7, 0.3]), dtype=torch.float32)[None]
    exact = torch.log(target.clamp_min(1e-30))
    kl, voiced = energy_kl(exact, target)
    assert voiced.tolist() == [True]
    assert kl.item() == pytest.approx(0.0, abs=1e-4)
    uniform = torch.zeros_like(target)
    kl_uniform, _ = energy_kl(uniform, target)
    entropy = -(target * torch.log(target.clamp_min(1e-30))).sum()
    assert kl_uniform.item() == pytest.approx(math.log(N_BINS) - entropy.item(), rel=1e-4)


def test_silent_windows_add_nothing_to_the_energy_term():
    voiced = torch.tensor(energy_target([700.0], [1.0]), dtype=torch.float32)
    target = torch.stack([voiced, torch.zeros(N_BINS)])
    logits = torch.randn(2, N_BINS, generator=torch.Generator().manual_seed(0))
    kl, mask = energy_kl(logits, target)
    assert mask.tolist() == [True, False]
    assert kl[1].item() == 0.0
    conf = torch.zeros(2, N_BINS)
    parts = pitch_loss(conf - 5, logits, conf, target)
    assert parts.voiced.item() == 1
    assert parts.energy.item() == pytest.approx(kl[0].item(), rel=1e-6)  # mean over voiced only
    # the silent window's energy logits get no gradient
    logits.requires_grad_(True)
    pitch_loss(conf - 5, logits, conf, target).total.backward()
    assert logits.grad[1].abs().max().item() == 0.0
    assert logits.grad[0].abs().max().item() > 0.0


def test_confidence_bce_is_summed_over_bins_and_minimal_at_the_target():
    target = torch.tensor(gaussian(N_BINS, 321.4), dtype=torch.float32)[None]
    at_target = confidence_loss(logit(target.numpy()), target)
    off_target = confidence_loss(logit(np.roll(target.numpy(), 20)), target)
    assert at_target.item() < off_target.item()
    half = confidence_loss(torch.zeros(1, N_BINS), torch.zeros(1, N_BINS))
    assert half.item() == pytest.approx(N_BINS * math.log(2.0), rel=1e-5)


def test_energy_weight_scales_only_the_energy_term():
    target_e = torch.tensor(energy_target([1000.0], [1.0]), dtype=torch.float32)[None]
    target_c = torch.tensor(gaussian(N_BINS, 1000.0), dtype=torch.float32)[None]
    c, e = torch.zeros(1, N_BINS), torch.zeros(1, N_BINS)
    one, two = pitch_loss(c, e, target_c, target_e, 1.0), pitch_loss(c, e, target_c, target_e, 2.0)
    assert two.confidence.item() == one.confidence.item()
    assert two.total.item() - one.total.item() == pytest.approx(one.energy.item(), abs=1e-3)


@pytest.mark.parametrize("frac", [0.0, 0.13, 0.5, -0.37])
def test_decode_recovers_sub_bin_centres_confidence_and_energy_shares(frac):
    centres = [400.0 + frac, 1100.0 - frac, 1500.25]
    shares = [0.5, 0.3, 0.2]
    conf = np.maximum.reduce([gaussian(N_BINS, c) for c in centres])
    notes = decode(logit(conf)[None], torch.tensor(np.log(energy_target(centres, shares)
                                                            + 1e-30))[None],
                   BINS.bin_to_freq, threshold=0.5, radius=4)
    assert notes.window.tolist() == [0, 0, 0]
    np.testing.assert_allclose(notes.bin, centres, atol=0.015)  # 0.07 cents
    np.testing.assert_allclose(notes.f0_hz, BINS.bin_to_freq(np.array(centres)), rtol=1e-4)
    np.testing.assert_allclose(notes.energy_share, shares, atol=0.01)
    assert (notes.confidence > 0.85).all()


def test_decode_threshold_and_windows():
    weak = 0.4 * gaussian(N_BINS, 800.0)
    strong = gaussian(N_BINS, 200.0)
    conf = np.stack([weak, strong, np.zeros(N_BINS)])
    energy = torch.zeros(3, N_BINS)
    notes = decode(logit(conf), energy, BINS.bin_to_freq, threshold=0.5)
    assert notes.window.tolist() == [1]
    assert notes.per_window(3)[1] == pytest.approx([BINS.bin_to_freq(200.0)])
    assert len(notes.per_window(3)[0]) == 0 and len(notes.per_window(3)[2]) == 0
    low = decode(logit(conf), energy, BINS.bin_to_freq, threshold=0.3)
    assert low.window.tolist() == [0, 1]


def test_find_peaks_takes_one_bin_of_a_plateau():
    conf = torch.tensor([[0.0, 0.9, 0.9, 0.1, 0.7, 0.2]])
    assert find_peaks(conf, 0.5).nonzero()[:, 1].tolist() == [2, 4]
