"""``MidiDataset``: token sequences from MIDI files, JSON token caches, or directories of them.

.. code-block:: python

    ds = MidiDataset("data/train", min_sequence_length=16, max_sequence_length=1024)
    ds.summary   # {"files", "files_read", "sequences", "tokens", "notes", "skipped",
                 #  "dropped_short", "split", "warnings"}
    ds[i]        # LongTensor of token ids;  ds[(i, start, stop)] a slice of sequence i
    ds.lengths   # numpy int64 array

Corrupt files and files without notes are skipped, each with a logged reason kept in
``summary["skipped"]`` (path -> reason). Sequences longer than ``max_sequence_length`` are cut
into chunks, preferably at ``Bar`` tokens; chunks shorter than ``min_sequence_length`` are dropped
(``summary["dropped_short"]``).
"""

from __future__ import annotations

import bisect
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .cache import find_inputs, is_cache_path, load_cache, tokenize_raw
from .reading import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT, MidiReader
from .smf import MidiFileError
from .tokenizer import Tokenizer
from .vocab import DEFAULT_MIN_LENGTH, Vocabulary

log = logging.getLogger(__name__)



def split_at_bars(ids: np.ndarray, max_len: int, bar_id: int) -> list[np.ndarray]:
    """Chunks of at most ``max_len`` tokens, each cut just before a ``Bar`` token if one fits."""
    bars = np.flatnonzero(ids == bar_id).tolist()
    chunks, start = [], 0
    while len(ids) - start > max_len:
        limit = start + max_len
        i = bisect.bisect_right(bars, limit) - 1
        end = bars[i] if i >= 0 and bars[i] > start else limit
        chunks.append(ids[start:end])
        start = end
    chunks.append(ids[start:])
    return chunks


class TokenSequences(Dataset):
    """Token id sequences and the notes they encode: what training and evaluation read.

    ``summary`` holds at least ``sequences``, ``tokens`` and ``notes``; :class:`MidiDataset`
    builds one from MIDI files or caches, a benchmark from another tokenizer's output.
    """

    def __init__(self, sequences: list[np.ndarray], notes: int, **summary):
        self.sequences = sequences
        self._finish({**summary, "notes": notes})

    def _finish(self, summary: dict) -> None:
        self.lengths = np.array([len(s) for s in self.sequences], dtype=np.int64)
        self.summary = {**summary, "sequences": len(self.sequences),
                        "tokens": int(self.lengths.sum())}

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, key) -> torch.Tensor:
        if isinstance(key, tuple):
            index, start, stop = key
            return torch.from_numpy(self.sequences[index][start:stop])
        return torch.from_numpy(self.sequences[key])

    @property
    def tokens_per_note(self) -> float:
        return self.summary["tokens"] / max(1, self.summary["notes"])


class MidiDataset(TokenSequences):
    def __init__(self, path, min_sequence_length: int = DEFAULT_MIN_LENGTH,
                 max_sequence_length: int = 2**17, vocab: Vocabulary | None = None, *,
                 workers: int | None = None, timeout: float = DEFAULT_TIMEOUT,
                 max_bytes: int = DEFAULT_MAX_BYTES):
        if max_sequence_length < 2 or min_sequence_length > max_sequence_length:
            raise ValueError("need 2 <= max_sequence_length and min <= max")
        self.vocab = vocab or Vocabulary()
        self.tokenizer = Tokenizer(self.vocab)
        self.min_sequence_length = min_sequence_length
        self.max_sequence_length = max_sequence_length
        self.sequences: list[np.ndarray] = []
        files = find_inputs(path)
        self.summary: dict = {"files": len(files), "files_read": 0, "sequences": 0, "tokens": 0,
                              "notes": 0, "skipped": {}, "dropped_short": 0, "split": 0,
                              "warnings": {}}
        workers = workers or min(8, os.cpu_count() or 1)
        reader = MidiReader(timeout=timeout, max_bytes=max_bytes, workers=workers,
                            sustain=self.vocab.config.sustain)
        with reader:
            for file, result in self._read_all(files, reader):
                self._add_file(file, result)
        self._finish(self.summary)

    def _read_all(self, files: list[Path], reader: MidiReader):
        """(file, TokenizedFile or MidiFileError) in file order; MIDI parsed in parallel."""
        midi_results = reader.read_many([f for f in files if not is_cache_path(f)])
        for file in files:
            if is_cache_path(file):
                try:
                    yield file, load_cache(file, self.vocab)
                except MidiFileError as err:
                    yield file, err
                continue
            _, raws = next(midi_results)
            if isinstance(raws, MidiFileError):
                yield file, raws
                continue
            try:
                yield file, tokenize_raw(raws, self.tokenizer)
            except MidiFileError as err:
                yield file, err

    def _add_file(self, file: Path, result) -> None:
        if isinstance(result, MidiFileError):
            log.warning("skipping %s: %s", file, result)
            self.summary["skipped"][str(file)] = str(result)
            return
        self.summary["files_read"] += 1
        self.summary["notes"] += sum(result.notes)
        if result.warnings:
            self.summary["warnings"][str(file)] = result.warnings
        for seq in result.sequences:
            self._add_sequence(np.asarray(seq, dtype=np.int64))

    def _add_sequence(self, ids: np.ndarray) -> None:
        chunks = split_at_bars(ids, self.max_sequence_length, self.vocab.id("Bar"))
        self.summary["split"] += len(chunks) > 1
        for chunk in chunks:
            if len(chunk) < self.min_sequence_length:
                self.summary["dropped_short"] += 1
            else:
                self.sequences.append(chunk)
