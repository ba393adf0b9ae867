"""Sampling from a trained MIDI LM (temperature, nucleus/top-p) and writing a ``.mid`` file."""

from __future__ import annotations

import torch

from .model import MidiLM
from .vocab import BOS, EOS, PAD


def sample_token(logits: torch.Tensor, temperature: float, top_p: float,
                 generator: torch.Generator) -> int:
    """One id from ``logits`` [V]: greedy at temperature 0, else nucleus sampling."""
    if temperature <= 0:
        return int(logits.argmax())
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    sorted_probs, order = probs.sort(descending=True)
    keep = sorted_probs.cumsum(0) - sorted_probs < top_p  # the smallest set reaching top_p
    keep[0] = True
    kept = sorted_probs * keep
    choice = torch.multinomial(kept / kept.sum(), 1, generator=generator)
    return int(order[choice])


@torch.no_grad()
def generate(model: MidiLM, prompt: list[int], n_tokens: int, *, temperature: float = 1.0,
             top_p: float = 0.95, seed: int = 0, stop_at_eos: bool = True) -> list[int]:
    """``prompt`` followed by up to ``n_tokens`` sampled ids (a sliding window past the context)."""
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    tokens = list(prompt) or [BOS]
    banned = torch.tensor([PAD, BOS])
    for _ in range(n_tokens):
        window = torch.tensor([tokens[-model.cfg.context:]], device=device)
        logits = model(window)[0, -1].cpu()
        logits[banned] = float("-inf")
        token = sample_token(logits, temperature, top_p, generator)
        tokens.append(token)
        if token == EOS and stop_at_eos:
            break
    return tokens
