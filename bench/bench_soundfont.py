"""Sampled-instrument (``soundfont_render``) generation speed next to ``midi_render`` and the
random kind, in windows per CPU-second, on the same corpus in the same run.

    .venv/bin/python bench/bench_soundfont.py [--notes results/datasets/music_train/notes.npz]
        [--windows 4096] [--repeats 3] [--shard 10000]

``--notes``: a ``notes.npz`` (``snakemake -j2 results/datasets/music_train/notes.npz`` builds the
Bach chorales'); without it a synthetic corpus (``bench_music_generation.synthetic_corpus``)
stands in, which repeats notes less than music does and so understates the renderer's cache.
``--windows`` is one shard's worth: the rendered-note cache starts cold in every call, as in a
shard job. Single thread, CPU time, best of ``--repeats``.

Then the build-level figure the issue bounds (a 1M-window build of the new kind against the
random kind's): one ``--shard``-window shard (the 1M config's size) of each kind as the workflow
builds it, ``notewise generate-shard`` then ``notewise validate-shard`` in their own processes
(process start, SoundFont loading, writes and validation included), CPU seconds of each, once.
"""
from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from notewise.config import canonical_json, with_defaults
from notewise.workflow.specs import generation_spec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_music_generation import synthetic_corpus  # noqa: E402
from timing import best_interleaved  # noqa: E402
from notewise.music.corpus import MusicCorpus  # noqa: E402
from notewise.music import render as music, soundfont  # noqa: E402
from notewise.synth.generate import generate_range  # noqa: E402
from notewise.synth.timbres import build_timbre_library  # noqa: E402


def child_cpu_seconds(command: list[str]) -> float:
    """CPU seconds (user + system) of one command run to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def shard_job_cpu(spec: dict, count: int, timbres, directory: Path) -> tuple[float, float]:
    """(generate-shard, validate-shard) CPU seconds of a ``count``-window shard of ``spec``."""
    directory.mkdir(parents=True)
    timbre_file = directory / "timbres.npz"
    timbres.save(timbre_file)
    text = canonical_json({**spec, "start": 0, "count": count})
    waveforms, targets = directory / "shard_00000.npy", directory / "shard_00000.npz"
    generate = child_cpu_seconds(["notewise", "generate-shard", "--spec", text, "--timbres",
                                  str(timbre_file), "--waveforms", str(waveforms),
                                  "--targets", str(targets)])
    validate = child_cpu_seconds(["notewise", "validate-shard", "--spec", canonical_json(spec),
                                  "--waveforms", str(waveforms), "--targets", str(targets),
                                  "-o", str(directory / "report.json")])
    return generate, validate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", default="results/datasets/music_train/notes.npz")
    parser.add_argument("--windows", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shard", type=int, default=10000)
    args = parser.parse_args()
    config = with_defaults(yaml.safe_load(open("config.yaml")))
    timbres = build_timbre_library()
    notes = Path(args.notes)
    corpus = MusicCorpus.load(notes) if notes.exists() else synthetic_corpus()
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
    print(f"in process, soundfont_render costs {ratio:.1f}x the random kind per window")
    if not notes.exists():
        return
    jobs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in (("soundfont_render", {**sf_spec, "notes_file": str(notes.resolve())}),
                           ("random_polyphony", random_spec)):
            jobs[name] = shard_job_cpu(spec, args.shard, timbres, Path(tmp) / name)
    print(f"one {args.shard}-window shard as the workflow builds it, CPU s:"
          f" {'generate':>9} {'validate':>9} {'total':>7}")
    for name, (generate, validate) in jobs.items():
        print(f"{name:<57} {generate:>9.2f} {validate:>9.2f} {generate + validate:>7.2f}")
    build_ratio = sum(jobs["soundfont_render"]) / sum(jobs["random_polyphony"])
    print(f"a 1M-window build (100 such shards) of soundfont_render costs {build_ratio:.1f}x the"
          " random kind's (the bound: 10x)")


if __name__ == "__main__":
    main()
