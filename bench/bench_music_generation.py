"""Music-driven (``midi_render``) generation speed, per augmentation, in windows per CPU-second.

    .venv/bin/python bench/bench_music_generation.py [--windows 512] [--repeats 3]

A synthetic corpus (20 pieces of 60 s, 400 notes each, four tracks) stands in for the Bach
chorales so that the script needs no MIDI export; windows are drawn from it as a ``midi_render``
set would. Each row switches on one augmentation of the ``music_train`` set in config.yaml (probability
1 where it has one), the last all of them as the config does, next to the random-polyphony generator on the same machine
in the same run. Single thread, CPU time, best of ``--repeats``.
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

from notewise.config import with_defaults
from notewise.workflow.specs import generation_spec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import best_seconds  # noqa: E402
from notewise.music.corpus import MusicCorpus  # noqa: E402
from notewise.music import render as music  # noqa: E402
from notewise.synth.generate import generate_range  # noqa: E402
from notewise.synth.timbres import build_timbre_library  # noqa: E402

AUGMENTATIONS = ("gain", "noise", "detune", "vibrato", "room", "timbre_mix")


def synthetic_corpus(pieces: int = 20, notes: int = 400, seconds: float = 60.0):
    rng = np.random.default_rng(5)

    def piece():
        start = np.sort(rng.uniform(0, seconds, notes))
        return {"start_s": start, "end_s": start + rng.choice([0.1, 0.25, 0.5, 1.0, 2.0], notes),
                "pitch": rng.integers(36, 84, notes), "velocity": rng.integers(40, 120, notes),
                "program": np.zeros(notes, np.int64), "track": rng.integers(0, 4, notes)}

    return MusicCorpus.from_pieces({f"piece{i}": piece() for i in range(pieces)}, {})


def spec_with(config: dict, enabled: tuple[str, ...], always: bool) -> dict:
    """The config's ``music_train`` spec with only ``enabled`` switched on (with probability 1
    when ``always``, else the config's probabilities)."""
    spec = generation_spec(config, "music_train")
    augment = spec["settings"]["augment"]
    for name in AUGMENTATIONS:
        augment[name]["enabled"] = name in enabled
        if always and "prob" in augment[name]:
            augment[name]["prob"] = 1.0
    return spec


def best_rate(generate, windows: int, repeats: int) -> float:
    generate(8)  # load or compile the Numba code
    return windows / best_seconds(lambda: generate(windows), repeats, clock=time.process_time,
                                  warm=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = with_defaults(yaml.safe_load(open("config.yaml")))
    timbres, corpus = build_timbre_library(), synthetic_corpus()
    rows = ([("none", (), True)] + [(name, (name,), True) for name in AUGMENTATIONS]
            + [("all (config)", AUGMENTATIONS, False)])
    print(f"{'augmentation':<14} {'windows/CPU-s':>14}")
    for label, enabled, always in rows:
        spec = spec_with(config, enabled, always)
        rate = best_rate(lambda n: music.generate_music_range(spec, 0, n, timbres, corpus=corpus),
                         args.windows, args.repeats)
        print(f"{label:<14} {rate:>14,.0f}")
    spec = generation_spec(config, "train")
    rate = best_rate(lambda n: generate_range(spec, 0, n, timbres), args.windows, args.repeats)
    print(f"{'(random_polyphony, same run)':<28} {rate:>,.0f}")


if __name__ == "__main__":
    main()
