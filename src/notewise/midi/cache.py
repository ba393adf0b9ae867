"""MIDI file -> token sequences, and the per-file JSON token cache.

Cache file layout (one per MIDI file; JSON loads far faster than MIDI parses, see the benchmark)::

    {"format": "notewise-midi-tokens", "version": 1, "vocab": "<Vocabulary.digest>",
     "source": "<file name>", "notes": [<notes per sequence>],
     "sequences": [[<token ids>], ...], "warnings": ["..."], "error": null}

Most files hold one sequence; a format-2 file holds one per track. A MIDI file that cannot be
read still gets a cache file, with no sequences and the reason in ``"error"``: the per-file
Snakemake job succeeds and the dataset reports the file as skipped with that reason.
:func:`load_cache` validates everything a corrupt or foreign file could get wrong and raises
``MidiFileError`` with the reason.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from notewise.atomicio import atomic_write_text

from .notes import RawMidi
from .reading import MidiReader
from .score import quantize
from .smf import MIDI_SUFFIXES, MidiFileError
from .tokenizer import Tokenizer
from .vocab import Vocabulary

CACHE_FORMAT = "notewise-midi-tokens"
CACHE_VERSION = 1


@dataclass
class TokenizedFile:
    sequences: list[list[int]]
    notes: list[int]  # notes per sequence
    warnings: list[str] = field(default_factory=list)


def tokenize_raw(raws: list[RawMidi], tokenizer: Tokenizer) -> TokenizedFile:
    """Token sequences of a file's note sequences; raises when none has a note."""
    out = TokenizedFile([], [], list(dict.fromkeys(w for raw in raws for w in raw.warnings)))
    for raw in raws:
        score = quantize(raw, tokenizer.config)
        if score.notes:
            out.sequences.append(tokenizer.encode(score))
            out.notes.append(len(score.notes))
    if not out.sequences:
        dropped = " (drums dropped)" if any(n.drum for r in raws for n in r.notes) else ""
        raise MidiFileError(f"no notes{dropped}")
    return out


def tokenize_midi(path: str | os.PathLike, tokenizer: Tokenizer,
                  reader: MidiReader | None = None) -> TokenizedFile:
    if reader is None:
        with MidiReader(sustain=tokenizer.config.sustain) as own:
            return tokenize_raw(own.read(path), tokenizer)
    return tokenize_raw(reader.read(path), tokenizer)


def cache_json(tokenized: TokenizedFile | MidiFileError, vocab: Vocabulary, source: str) -> dict:
    ok = isinstance(tokenized, TokenizedFile)
    return {"format": CACHE_FORMAT, "version": CACHE_VERSION, "vocab": vocab.digest,
            "source": source, "notes": tokenized.notes if ok else [],
            "sequences": tokenized.sequences if ok else [],
            "warnings": tokenized.warnings if ok else [], "error": None if ok else str(tokenized)}


def save_cache(tokenized: TokenizedFile | MidiFileError, vocab: Vocabulary,
               path: str | os.PathLike, source: str) -> None:
    """Write the cache (or the reason the file was unreadable) atomically (temp + rename)."""
    atomic_write_text(path, json.dumps(cache_json(tokenized, vocab, source), separators=(",", ":")))


def _check_sequences(sequences, vocab_size: int) -> None:
    if not isinstance(sequences, list):
        raise MidiFileError("corrupt token cache: 'sequences' is not a list")
    for seq in sequences:
        if not isinstance(seq, list) or not all(type(t) is int for t in seq):
            raise MidiFileError("corrupt token cache: a sequence is not a list of integers")
        if seq and (min(seq) < 0 or max(seq) >= vocab_size):
            raise MidiFileError(f"corrupt token cache: token id outside [0, {vocab_size})")


def load_cache(path: str | os.PathLike, vocab: Vocabulary,
               max_bytes: int = 512 * 2**20) -> TokenizedFile:
    """Read and validate a cache file made with ``vocab``."""
    path = Path(path)
    try:
        if path.stat().st_size > max_bytes:
            raise MidiFileError(f"token cache too large (> {max_bytes} bytes)")
        data = json.loads(path.read_bytes())
    except OSError as err:
        raise MidiFileError(f"cannot read file: {err.strerror or err}") from err
    except (ValueError, RecursionError) as err:  # JSONDecodeError, bad UTF-8
        raise MidiFileError(f"corrupt token cache: invalid JSON ({err})"[:200]) from err
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        raise MidiFileError("not a notewise token cache")
    if data.get("version") != CACHE_VERSION:
        raise MidiFileError(f"token cache version {data.get('version')} != {CACHE_VERSION}")
    if data.get("error"):
        raise MidiFileError(str(data["error"]))
    if data.get("vocab") != vocab.digest:
        raise MidiFileError(f"token cache made with another vocabulary ({data.get('vocab')})")
    _check_sequences(data.get("sequences"), len(vocab))
    notes = data.get("notes")
    if not isinstance(notes, list) or len(notes) != len(data["sequences"]):
        notes = [0] * len(data["sequences"])
    return TokenizedFile(data["sequences"], notes, list(data.get("warnings", [])))


def find_inputs(paths) -> list[Path]:
    """Expand files and directories (recursively) into MIDI and JSON files, sorted per dir."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file()
                          and p.suffix.lower() in MIDI_SUFFIXES + (".json",))
        else:
            out.append(path)
    return out


def is_cache_path(path: Path) -> bool:
    return path.suffix.lower() == ".json"
