"""Validation figures of a trained MIDI LM: per token, per note, and per context position.

Per-note figures divide the total code length of the validation set (the sum of next-token
losses, nats) by its note count, so models with different tokenizers compare: the notes counted
are those of the quantised score (:func:`notewise.midi.score.quantize`), after merging notes of
the same pitch and program that start on the same grid step (one note per key at a time). The
per-position loss is the mean loss of the targets predicted at each position of the context
window, in ``position_buckets`` equal groups, over the full-length windows only (so that every
position averages the same windows, not the short last pieces of sequences at the early ones); a
model trained on windows that start at random offsets has it flat apart from the first positions
(little context there).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .dataset import MidiDataset
from .training import LMTask
from .vocab import PAD

NOTE_COUNT = ("notes of the quantised scores, after merging same-onset same-pitch duplicates "
              "(one note per program and pitch at a time)")


def token_losses(model, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, T-1]`` next-token losses (nats) and the mask of real (non-padding) targets."""
    inputs, targets = batch[:, :-1], batch[:, 1:]
    logits = model(inputs).float()
    losses = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=PAD, reduction="none")
    return losses, targets != PAD


def evaluate_lm(model, dataset: MidiDataset, max_batch_size: int,
                position_buckets: int = 8, prefix: str = "val") -> dict:
    """Loss per token and per note, bits per note and the per-position loss of ``dataset``
    (keys ``<prefix>_loss``, ``<prefix>_nats_per_note``, ...)."""
    device = next(model.parameters()).device
    window = model.cfg.context + 1
    task = LMTask(dataset, dataset, max_batch_size, window=window)
    sums = torch.zeros(window - 1, dtype=torch.float64)  # full windows, by position
    counts = torch.zeros(window - 1, dtype=torch.float64)
    total, tokens = 0.0, 0
    with torch.no_grad():
        for batch in task.val_batches(0, 0, 1) or []:
            losses, mask = token_losses(model, batch.to(device))
            losses = (losses * mask).double().cpu()
            total, tokens = total + float(losses.sum()), tokens + int(mask.sum())
            full = mask.all(1).cpu() if losses.shape[1] == window - 1 else None
            if full is not None and full.any():
                sums += losses[full].sum(0)
                counts += full.sum()
    notes = dataset.summary["notes"]
    loss = total / max(tokens, 1)
    per_note = total / max(notes, 1)
    figures = {
        "loss": loss, "perplexity": math.exp(min(loss, 50.0)), "tokens": tokens,
        "nats_per_note": per_note, "bits_per_note": per_note / math.log(2), "notes": notes,
        "tokens_per_note": dataset.tokens_per_note,
        "full_windows": int(counts[0]) if len(counts) else 0,
        "loss_by_position": _by_position(sums, counts, position_buckets),
    }
    return {**{f"{prefix}_{k}": v for k, v in figures.items()}, "notes_counted": NOTE_COUNT}


def _by_position(sums: torch.Tensor, counts: torch.Tensor, buckets: int) -> list[dict]:
    """Mean loss over ``buckets`` equal ranges of target positions (0-based, input index)."""
    edges = [round(i * len(sums) / buckets) for i in range(buckets + 1)]
    out = []
    for lo, hi in zip(edges, edges[1:]):
        n = float(counts[lo:hi].sum())
        out.append({"positions": [lo, hi - 1], "targets": int(n),
                    "loss": float(sums[lo:hi].sum()) / n if n else None})
    return out
