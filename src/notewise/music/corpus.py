"""The note corpus of a music dataset (rule ``music_notes``, ``results/datasets/<name>/notes.npz``):
the corpus' MIDI files read once with the MIDI reader (``notewise.midi.reading``: bounded size,
time and memory) into a compact :class:`MusicCorpus`: per piece its name and its notes
(start/end seconds, MIDI pitch, velocity, program, track), drums and empty notes dropped. Files
that fail to parse are skipped and listed with the reason (``skipped_*``). NumPy only.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from notewise.atomicio import atomic_write_bytes
from notewise.store.npzfile import npz_bytes

log = logging.getLogger(__name__)


NOTES_FILE = "notes.npz"


def piece_key(name: str) -> np.uint64:
    """A stable 64-bit key of a piece's name (its timbres and performance depend on it)."""
    return np.uint64(int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little"))


@dataclass
class MusicCorpus:
    """Note events of a corpus, pieces in name order, notes of a piece sorted by start."""

    names: np.ndarray          # str [P]
    piece_start: np.ndarray    # int64 [P + 1]: notes of piece p are piece_start[p]:[p+1]
    start_s: np.ndarray        # float64 [M]
    end_s: np.ndarray          # float64 [M]
    pitch: np.ndarray          # int16 [M], MIDI
    velocity: np.ndarray       # int16 [M], 1..127
    program: np.ndarray        # int16 [M]
    track: np.ndarray          # int16 [M]
    skipped_names: np.ndarray  # str: files that failed to parse (or held no notes)
    skipped_reasons: np.ndarray

    def __len__(self) -> int:
        return len(self.names)

    @property
    def num_notes(self) -> int:
        return int(self.piece_start[-1])

    def save(self, path) -> None:
        """Byte-deterministic ``.npz``, written atomically."""
        members = {f.name: np.asarray(getattr(self, f.name)) for f in fields(self)}
        atomic_write_bytes(Path(path), npz_bytes(members))

    @classmethod
    def load(cls, path) -> "MusicCorpus":
        with np.load(path, allow_pickle=False) as data:
            return cls(**{f.name: data[f.name] for f in fields(cls)})

    @classmethod
    def from_pieces(cls, pieces: dict[str, dict], skipped: dict[str, str]) -> "MusicCorpus":
        """From ``{name: {column: array}}`` (columns as :func:`piece_columns` returns them)."""
        names = sorted(pieces)
        columns = {}
        for column, dtype in (("start_s", np.float64), ("end_s", np.float64),
                              ("pitch", np.int16), ("velocity", np.int16),
                              ("program", np.int16), ("track", np.int16)):
            parts = [np.asarray(pieces[n][column], dtype) for n in names]
            columns[column] = np.concatenate(parts) if parts else np.zeros(0, dtype)
        counts = [len(pieces[n]["start_s"]) for n in names]
        piece_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(np.array(names, dtype=str), piece_start,
                   **columns, skipped_names=np.array(sorted(skipped), dtype=str),
                   skipped_reasons=np.array([skipped[n] for n in sorted(skipped)], dtype=str))


def piece_columns(notes) -> dict[str, np.ndarray] | None:
    """Columns of a piece from the MIDI reader's notes in seconds (``TimedNote``): pitched
    (drums dropped), non-empty notes in start order; None if there is none."""
    rows = sorted((n.onset, n.offset, n.pitch, n.velocity, n.program, n.track) for n in notes
                  if not n.drum and n.offset > n.onset and n.velocity > 0)
    if not rows:
        return None
    columns = ("start_s", "end_s", "pitch", "velocity", "program", "track")
    return {name: np.asarray(values) for name, values in zip(columns, zip(*rows))}


def build_corpus(paths, names=None, workers: int = 1, timeout: float | None = None) -> MusicCorpus:
    """Read every file with the MIDI reader (size, time and memory bounded, in worker
    processes); a file that fails, or holds no pitched note, is skipped, logged and listed with
    its reason in ``skipped_*``. ``names``: what pieces are called (default: the file names)."""
    from notewise.midi.reading import DEFAULT_TIMEOUT, MidiReader, notes_in_seconds
    from notewise.midi.smf import MidiFileError

    paths = [Path(p) for p in paths]
    names = [p.name for p in paths] if names is None else list(names)
    pieces, skipped = {}, {}
    with MidiReader(workers=workers, timeout=timeout or DEFAULT_TIMEOUT) as reader:
        for (path, result), name in zip(reader.read_many(paths), names):
            failed = isinstance(result, MidiFileError)
            piece = None if failed else piece_columns(notes_in_seconds(result))
            if piece is None:
                skipped[name] = str(result) if failed else "no pitched notes"
                log.warning("skipping %s: %s", path, skipped[name])
            else:
                pieces[name] = piece
    return MusicCorpus.from_pieces(pieces, skipped)


def corpus_files(root, split: str, val_percent: int = 20) -> list[Path]:
    """MIDI files of ``split`` in a corpus directory, by the MIDI rules' convention
    (``notewise.midi.corpus.user_corpus_files``)."""
    from notewise.midi.corpus import has_split_dirs, user_corpus_files

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"corpus directory {root} does not exist")
    base = root / split if has_split_dirs(root) else root
    return [base / name for name in user_corpus_files(root, val_percent)[split]]


def build_corpus_file(root, split: str, output, val_percent: int = 20,
                      workers: int = 1) -> MusicCorpus:
    """``notewise music-notes``: extract a corpus split into ``output`` (notes.npz)."""
    root = Path(root)
    files = corpus_files(root, split, val_percent)
    corpus = build_corpus(files, [p.relative_to(root).as_posix() for p in files], workers)
    if len(corpus) == 0:
        raise ValueError(f"{root} ({split}): no readable MIDI file among {len(files)}")
    corpus.save(output)
    log.info("%s (%s): %d pieces, %d notes, %d skipped", root, split, len(corpus),
             corpus.num_notes, len(corpus.skipped_names))
    return corpus


def notes_path(spec: dict) -> Path:
    """Where a dataset's note corpus lives: ``spec['notes_file']``, else the workflow's
    ``results/datasets/<dataset>/notes.npz`` (relative to the working directory)."""
    return Path(spec.get("notes_file") or Path("results/datasets") / spec["dataset"] / NOTES_FILE)


@functools.lru_cache(maxsize=4)
def _load_corpus(path: str, mtime_ns: int) -> MusicCorpus:
    return MusicCorpus.load(path)


def load_corpus(path) -> MusicCorpus:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: the note corpus of this midi_render dataset is missing"
                                " (built by the music_notes rule)")
    return _load_corpus(str(path), os.stat(path).st_mtime_ns)
