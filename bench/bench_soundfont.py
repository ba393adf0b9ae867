"""Sampled-instrument (``soundfont_render``) generation speed next to ``midi_render`` and the
random kind, in windows per CPU-second, on the same corpus in the same run.

    .venv/bin/python bench/bench_soundfont.py [--notes results/datasets/music_train/notes.npz]
        [--windows 4096] [--repeats 3]

``--notes``: a ``notes.npz`` (``snakemake -j2 results/datasets/music_train/notes.npz`` builds the
Bach chorales'); without it a synthetic corpus (``bench_music_generation.synthetic_corpus``)
stands in, which repeats notes less than music does and so understates the renderer's cache.
``--windows`` is one shard's worth: the rendered-note cache starts cold in every call, as in a
shard job. Single thread, CPU time, best of ``--repeats``; the last line is the ratio the issue
bounds (a 1M-window build of the new kind against the random kind's, generation only).
"""
from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from notewise.config import generation_spec, with_defaults  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_music_generation import synthetic_corpus  # noqa: E402
from timing import best_interleaved  # noqa: E402
from notewise.data import music, soundfont  # noqa: E402
from notewise.data.generate import generate_range  # noqa: E402
from notewise.data.timbres import build_timbre_library  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", default="results/datasets/music_train/notes.npz")
    parser.add_argument("--windows", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = with_defaults(yaml.safe_load(open("config.yaml")))
    timbres = build_timbre_library()
    notes = Path(args.notes)
    corpus = music.MusicCorpus.load(notes) if notes.exists() else synthetic_corpus()
    print(f"corpus: {notes if notes.exists() else 'synthetic (no --notes file)'},"
          f" {len(corpus)} pieces; {args.windows} windows per call")
    sf_spec = generation_spec(config, "soundfont_train")
    midi_spec = generation_spec(config, "music_train")
    plain_midi = {**midi_spec, "settings": {**midi_spec["settings"], "augment": {}}}
    random_spec = generation_spec(config, "train")
    samples = np.arange(args.windows)

    def soundfont_cold() -> None:
        soundfont._renderer.cache_clear()  # a shard job starts with an empty note cache
        soundfont.generate_soundfont_samples(sf_spec, samples, corpus=corpus)

    paths = {
        "soundfont_render (TimGM6mb)": soundfont_cold,
        "midi_render, no augmentation": lambda: music.generate_music_samples(
            plain_midi, samples, timbres, corpus=corpus),
        "midi_render, music_train's augmentations": lambda: music.generate_music_samples(
            midi_spec, samples, timbres, corpus=corpus),
        "random_polyphony (train)": lambda: generate_range(random_spec, 0, args.windows, timbres),
    }
    for path in paths.values():  # load or compile everything once
        path()
    seconds = best_interleaved(paths, args.repeats, clock=time.process_time)
    print(f"{'path':<44} {'windows/CPU-s':>14}")
    for name, value in seconds.items():
        print(f"{name:<44} {args.windows / value:>14,.0f}")
    ratio = seconds["soundfont_render (TimGM6mb)"] / seconds["random_polyphony (train)"]
    print(f"soundfont_render costs {ratio:.1f}x the random kind per window (the bound: 10x)")


if __name__ == "__main__":
    main()
