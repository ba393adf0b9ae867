"""MIDI music generation: safe reading, tokens, dataset, length-budget sampler, Transformer LM.

``from notewise.midi import MidiDataset, MidiDatasetSampler``. Importing this package does not
import torch (the MIDI reader's worker process and the tokenizer CLI stay light); the torch-side
names below are loaded on first access.
"""

from __future__ import annotations

from importlib import import_module

_LAZY = {
    "MidiDataset": ".dataset",
    "MidiDatasetSampler": ".sampler",
    "MidiLM": ".model",
    "LMConfig": ".model",
    "Tokenizer": ".tokenizer",
    "Vocabulary": ".vocab",
    "TokenizerConfig": ".vocab",
    "MidiReader": ".reading",
    "read_notes": ".reading",
    "TimedNote": ".reading",
    "MidiFileError": ".smf",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
