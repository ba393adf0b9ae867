"""MIDI pipeline benchmarks (issue 4): tokenisation throughput against MidiTok's REMI, JSON token
cache against MIDI parsing, and LM training throughput.

    .venv/bin/pip install -e '.[bench]'        # miditok + symusic, bench only
    .venv/bin/python bench/bench_midi.py [--corpus DIR] [--limit N] [--train-steps K]

Without ``--corpus`` it exports music21's Bach scores (the default corpus) to a temp directory.
Every figure is measured in this one run, on the same files, single process.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from notewise.midi.cache import find_inputs, load_cache, save_cache, tokenize_raw
from notewise.midi.dataset import MidiDataset
from notewise.midi.reading import MidiReader, parse_file
from notewise.midi.tokenizer import Tokenizer
from notewise.midi.vocab import Vocabulary


def timed(fn, *args, repeat: int = 1):
    """(result, best wall time of ``repeat`` runs)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - start)
    return result, best


def _count(raws, tokenizer: Tokenizer, totals: dict) -> None:
    """Add a file's input notes (as in the MIDI, like MidiTok counts them) and tokens."""
    result = tokenize_raw(raws, tokenizer)
    totals["notes"] += sum(len(raw.notes) for raw in raws)
    totals["kept_notes"] += sum(result.notes)  # after one-note-per-key (doubled parts merge)
    totals["tokens"] += sum(map(len, result.sequences))


def ours(files: list[Path], tokenizer: Tokenizer) -> dict:
    """parse (mido, in process) -> quantise -> tokens."""
    totals = {"notes": 0, "kept_notes": 0, "tokens": 0}
    for path in files:
        _count(parse_file(path), tokenizer, totals)
    return totals


def ours_isolated(files: list[Path], tokenizer: Tokenizer) -> dict:
    """The same through the guarded reader (a worker process with a timeout)."""
    totals = {"notes": 0, "kept_notes": 0, "tokens": 0}
    with MidiReader(workers=1) as reader:
        for _, raws in reader.read_many(files):
            _count(raws, tokenizer, totals)
    return totals


def remi_tokenizer(use_programs: bool):
    """MidiTok REMI, default config (one stream per track unless ``use_programs``)."""
    from miditok import REMI, TokenizerConfig

    return REMI(TokenizerConfig(use_programs=use_programs))


def miditok_remi(files: list[Path], tokenizer) -> dict:
    """MidiTok REMI on symusic scores (file -> symusic.Score -> tokens)."""
    import symusic

    notes = tokens = 0
    for path in files:
        score = symusic.Score(str(path))
        notes += sum(len(track.notes) for track in score.tracks)
        encoded = tokenizer.encode(score)
        seqs = encoded if isinstance(encoded, list) else [encoded]
        tokens += sum(len(seq.ids) for seq in seqs)
    return {"notes": notes, "tokens": tokens}


def cache_vs_parse(files: list[Path], tokenizer: Tokenizer, cache_dir: Path) -> dict:
    caches = []
    for path in files:
        cache = cache_dir / f"{path.name}.json"
        save_cache(tokenize_raw(parse_file(path), tokenizer), tokenizer.vocab, cache, path.name)
        caches.append(cache)
    _, load_s = timed(lambda: [load_cache(c, tokenizer.vocab) for c in caches], repeat=3)
    _, json_s = timed(lambda: [json.loads(c.read_bytes()) for c in caches], repeat=3)
    _, parse_s = timed(lambda: [parse_file(p) for p in files], repeat=3)
    _, full_s = timed(ours, files, tokenizer, repeat=3)
    _, ds_json_s = timed(lambda: MidiDataset(caches, 16, 257, workers=1), repeat=3)
    _, ds_midi_s = timed(lambda: MidiDataset(files, 16, 257, workers=1), repeat=1)
    return {"json_load_validated_s": load_s, "json_loads_only_s": json_s,
            "midi_parse_s": parse_s, "midi_to_tokens_s": full_s,
            "dataset_from_json_s": ds_json_s, "dataset_from_midi_s": ds_midi_s,
            "cache_bytes": sum(c.stat().st_size for c in caches),
            "midi_bytes": sum(p.stat().st_size for p in files)}


def training_throughput(files: list[Path], steps: int) -> dict:
    """Tokens/s of the default DAG model (d128, 2 layers, context 256) on this corpus."""
    import torch

    from notewise.midi.model import LMConfig, MidiLM, lm_loss
    from notewise.midi.training import LMTask

    data = MidiDataset(files, 16, 257, workers=1)
    torch.manual_seed(0)
    model = MidiLM(LMConfig(len(data.vocab), 128, 2, 4, 256))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batches = list(LMTask(data, None, 16 * 257**2).train_batches(0, 0, 1))
    tokens, elapsed = 0, 0.0
    for i in range(steps + 1):
        batch = batches[i % len(batches)]
        start = time.perf_counter()
        loss, count = lm_loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if i:  # the first step warms up
            elapsed += time.perf_counter() - start
            tokens += count
    return {"steps": steps, "tokens": tokens, "tokens_per_s": tokens / elapsed,
            "threads": torch.get_num_threads()}


def candidates(tokenizer: Tokenizer) -> list[tuple]:
    """(name, function, extra args) of each tokenisation pipeline; MidiTok only if installed."""
    out = [("notewise (mido, in process)", ours, (tokenizer,)),
           ("notewise (guarded worker)", ours_isolated, (tokenizer,))]
    try:
        out += [("MidiTok REMI (symusic), per track", miditok_remi, (remi_tokenizer(False),)),
                ("MidiTok REMI (symusic), programs", miditok_remi, (remi_tokenizer(True),))]
    except ImportError:
        print("MidiTok not installed (pip install -e '.[bench]'): its rows are left out")
    return out


def rate(result: dict, seconds: float, n_files: int) -> str:
    """Throughput in input notes; tokens per input note (and per kept note for ours)."""
    kept = (f", {result['tokens'] / result['kept_notes']:.2f} per kept note"
            if "kept_notes" in result else "")
    return (f"{n_files / seconds:7.1f} files/s {result['notes'] / seconds:8.0f} notes/s "
            f"{result['tokens'] / max(result['notes'], 1):5.2f} tokens/note{kept}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="directory of MIDI files (default: Bach)")
    parser.add_argument("--limit", type=int, default=None, help="first N files only")
    parser.add_argument("--train-steps", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.corpus is None:
            from notewise.midi.corpus import export_bach

            export_bach(tmp / "corpus", limit=args.limit, workers=2)
            args.corpus = tmp / "corpus"
        files = [f for f in find_inputs(args.corpus) if f.suffix == ".mid"][: args.limit]
        tokenizer = Tokenizer(Vocabulary())
        print(f"corpus: {args.corpus} ({len(files)} MIDI files)")
        for name, fn, extra in candidates(tokenizer):
            fn(files[:5], *extra)  # warm-up: imports, vocabulary building
            result, seconds = timed(fn, files, *extra)
            print(f"  {name:36s} {rate(result, seconds, len(files))}  ({seconds:.2f} s)")
        cache_dir = tmp / "cache"
        cache_dir.mkdir()
        c = cache_vs_parse(files, tokenizer, cache_dir)
        print(f"JSON cache: load+validate {c['json_load_validated_s']:.3f} s "
              f"(json.loads alone {c['json_loads_only_s']:.3f} s) vs MIDI parse "
              f"{c['midi_parse_s']:.3f} s, MIDI->tokens {c['midi_to_tokens_s']:.3f} s: "
              f"{c['midi_to_tokens_s'] / c['json_load_validated_s']:.1f}x faster; "
              f"{c['cache_bytes'] / 2**20:.1f} MiB JSON vs {c['midi_bytes'] / 2**20:.1f} MiB MIDI")
        print(f"MidiDataset: from JSON caches {c['dataset_from_json_s']:.3f} s, from MIDI "
              f"{c['dataset_from_midi_s']:.2f} s (guarded worker): "
              f"{c['dataset_from_midi_s'] / c['dataset_from_json_s']:.0f}x faster")
        t = training_throughput(files, args.train_steps)
        print(f"training (d128 L2 ctx256, budget 16*257^2, {t['threads']} threads): "
              f"{t['tokens_per_s']:.0f} tokens/s over {t['steps']} steps ({t['tokens']} tokens)")


if __name__ == "__main__":
    main()
