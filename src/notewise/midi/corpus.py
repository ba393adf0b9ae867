"""The default corpus (music21's Bach scores, offline) and the deterministic train/val split.

music21 ships about 410 Bach scores (chorales, mostly four-part) as MusicXML/Humdrum inside the
package. :func:`export_bach` writes each as ``<out>/<split>/<name>.mid``; the split is a stable
hash of the name (:func:`split_of`), so it does not depend on file order, count or machine.
:func:`export_heldout` writes a few scores of other composers in music21's corpus (by default
Monteverdi madrigals, Mozart and Haydn quartet movements) as ``<out>/<composer>_<name>.mid``: a
validation set in other styles, scored beside the Bach one so that over-fitting to one style
shows.
Importing this module does not import music21 (the Snakefile uses :func:`split_of`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from notewise.atomicio import atomic_path

log = logging.getLogger(__name__)

SPLITS = ("train", "val")
SCORE_SUFFIXES = (".mxl", ".xml", ".krn")  # preference order when a name has several


def split_of(name: str, val_percent: int = 20) -> str:
    """``"val"`` for about ``val_percent`` % of names, ``"train"`` otherwise, stable forever."""
    bucket = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % 100
    return "val" if bucket < val_percent else "train"


def bach_sources() -> dict[str, Path]:
    return composer_sources("bach")


def composer_sources(composer: str) -> dict[str, Path]:
    """name -> score file of ``composer`` in music21's corpus (analyses, duplicates left out)."""
    from music21 import corpus

    sources: dict[str, Path] = {}
    for path in sorted(corpus.getComposer(composer),
                       key=lambda p: (p.stem, SCORE_SUFFIXES.index(p.suffix)
                                      if p.suffix in SCORE_SUFFIXES else 99)):
        if path.suffix in SCORE_SUFFIXES and path.stem not in sources:
            sources[path.stem] = Path(path)
    return sources


def _export_one(args: tuple[str, str]) -> str | None:
    """Write one score as MIDI (atomically); the error message, or None."""
    source, target = args
    from music21 import converter

    try:
        with atomic_path(target) as tmp:
            converter.parse(source).write("midi", fp=str(tmp))
        return None
    except Exception as err:  # music21 raises many kinds; one bad score must not stop the rest
        return f"{type(err).__name__}: {err}"


def export_bach(out_dir: str | os.PathLike, *, limit: int | None = None, workers: int = 1,
                val_percent: int = 20) -> dict:
    """Export the corpus to ``out_dir/{train,val}/<name>.mid``; returns a summary dict."""
    out_dir = Path(out_dir)
    for split in SPLITS:
        (out_dir / split).mkdir(parents=True, exist_ok=True)
    sources = list(bach_sources().items())[:limit]
    jobs = [(str(src), str(out_dir / split_of(name, val_percent) / f"{name}.mid"))
            for name, src in sources]
    summary = _export_all(jobs, workers)
    counts = {split: len(list((out_dir / split).glob("*.mid"))) for split in SPLITS}
    return {**summary, **counts}


def export_heldout(out_dir: str | os.PathLike, composers: list[str], per_composer: int, *,
                   workers: int = 1) -> dict:
    """The first ``per_composer`` scores (by name) of each composer -> ``out_dir/*.mid``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for composer in composers:
        sources = list(composer_sources(composer).items())[:per_composer]
        if not sources:
            raise ValueError(f"midi.heldout.composers: music21 has no scores of {composer!r}")
        jobs += [(str(src), str(out_dir / f"{composer}_{name}.mid")) for name, src in sources]
    summary = _export_all(jobs, workers)
    return {**summary, "heldout": len(list(out_dir.glob("*.mid")))}


def _export_all(jobs: list[tuple[str, str]], workers: int) -> dict:
    """Run the (source, target) exports; {"sources", "exported", "failed": {source: error}}."""
    with ProcessPoolExecutor(max(1, workers)) as pool:
        errors = list(pool.map(_export_one, jobs, chunksize=4))
    failed = {}
    for (src, _), error in zip(jobs, errors):
        if error:
            log.warning("could not export %s: %s", src, error)
            failed[src] = error
    return {"sources": len(jobs), "exported": len(jobs) - len(failed), "failed": failed}


def user_corpus_files(root: str | os.PathLike, val_percent: int = 20) -> dict[str, list[str]]:
    """{split: MIDI paths relative to its split's directory} of a user's MIDI directory.

    A directory with ``train/`` and ``val/`` subdirectories keeps that split; any other is split
    by :func:`split_of` on each file's path relative to ``root``.
    """
    from notewise.midi.smf import MIDI_SUFFIXES

    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"midi.corpus: {str(root)!r} is neither 'bach' nor a directory")
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                   if p.is_file() and p.suffix.lower() in MIDI_SUFFIXES)
    if has_split_dirs(root):
        return {s: [f[len(s) + 1:] for f in files if f.startswith(s + "/")] for s in SPLITS}
    return {s: [f for f in files if split_of(f, val_percent) == s] for s in SPLITS}


def has_split_dirs(root: str | os.PathLike) -> bool:
    return all((Path(root) / split).is_dir() for split in SPLITS)
