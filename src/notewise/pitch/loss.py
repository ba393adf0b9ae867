"""Training loss: BCE on the confidence map plus KL divergence on the energy distribution.

Both terms are in nats per window, so their default weighting (1 : 1) is not an accident of bin
count: the confidence term sums the per-bin binary cross-entropies over the 2048 bins (targets are
soft Gaussians, multi-label), the energy term is ``KL(target || softmax(energy_logits))`` over the
bins (targets are distributions summing to 1). A silent window's energy target is all zeros,
which is no distribution: it contributes to the confidence term only.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.nn import functional as F

#: A window whose energy target sums to less than this is silent (targets sum to 1 or to 0;
#: float16 storage leaves a rounding error of ~1e-3).
SILENT_MASS = 0.5


class PitchLoss(NamedTuple):
    total: torch.Tensor       # scalar, what backward uses
    confidence: torch.Tensor  # scalar, BCE nats per window
    energy: torch.Tensor      # scalar, KL nats per voiced window (0 if none)
    voiced: torch.Tensor      # scalar, number of voiced windows in the batch


def confidence_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-window BCE summed over bins, ``[B]``."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(dim=-1)


def energy_kl(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-window ``KL(target || softmax(logits))`` ``[B]`` and the voiced mask ``[B]``.

    Targets are renormalised to sum to 1 (undoing float16 rounding); silent windows give 0.
    """
    mass = target.sum(dim=-1, keepdim=True)
    voiced = mass.squeeze(-1) >= SILENT_MASS
    dist = target / mass.clamp_min(SILENT_MASS)
    log_pred = F.log_softmax(logits, dim=-1)
    kl = (torch.xlogy(dist, dist) - dist * log_pred).sum(dim=-1)
    return torch.where(voiced, kl, torch.zeros_like(kl)), voiced


def pitch_loss(conf_logits: torch.Tensor, energy_logits: torch.Tensor,
               target_confidence: torch.Tensor, target_energy: torch.Tensor,
               energy_weight: float = 1.0) -> PitchLoss:
    """Mean over the batch of ``BCE + energy_weight * KL`` (KL averaged over voiced windows)."""
    conf = confidence_loss(conf_logits.float(), target_confidence.float()).mean()
    kl, voiced = energy_kl(energy_logits.float(), target_energy.float())
    n_voiced = voiced.sum()
    energy = kl.sum() / n_voiced.clamp_min(1)
    return PitchLoss(conf + energy_weight * energy, conf, energy, n_voiced)
