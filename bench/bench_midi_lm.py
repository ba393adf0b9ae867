"""The MIDI LM against a MidiTok REMI baseline: same split, model, settings and budget, per note.

    .venv/bin/pip install -e '.[bench]'        # miditok + symusic, bench only
    .venv/bin/python bench/bench_midi_lm.py --corpus results/midi/corpus [--epochs N]
        [--heldout results/midi/heldout] [--spec '{"train": {...}}']

``--corpus`` is a directory with ``train/`` and ``val/`` MIDI files (``snakemake
results/midi/corpus`` exports the Bach default; without it this script exports one to a temp
dir); ``--heldout`` a directory of other composers' MIDI files, scored beside ``val``. Both
tokenisations train the same ``MidiLM`` (the workflow's ``midi`` defaults, or ``--spec``) with
the same harness, sampler and schedule, one after the other in this process; the figures are
validation nats per note (each tokenizer's summed loss over the notes it encodes, and over
notewise's count, notes after merging same-onset same-pitch duplicates) and the CPU seconds each
training took. MidiTok's REMI has a one-stream-per-file option (``use_programs``), used here.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from notewise.midi.cache import find_inputs
from notewise.midi.dataset import MidiDataset, TokenSequences
from notewise.midi.evaluate import evaluate_lm
from notewise.midi.model import LMConfig, MidiLM
from notewise.midi.settings import parse_spec
from notewise.midi.training import LMTask
from notewise.training import TrainSettings, fit


def midi_files(directory: Path) -> list[Path]:
    return [f for f in find_inputs(directory) if f.suffix.lower() in (".mid", ".midi")]


def remi_sequences(files: list[Path], tokenizer) -> TokenSequences:
    """MidiTok REMI ids per file (one stream, programs as tokens) and the notes it encodes."""
    import symusic

    sequences, notes = [], 0
    for path in files:
        score = symusic.Score(str(path))
        ids = tokenizer.encode(score).ids
        if len(ids) >= 2:
            sequences.append(np.asarray(ids, dtype=np.int64))
            notes += sum(len(track.notes) for track in score.tracks)
    return TokenSequences(sequences, notes)


def train_and_score(name: str, vocab_size: int, train, evals: dict, settings: dict,
                    tmp: Path) -> dict:
    model_cfg, train_cfg = settings["model"], settings["train"]
    cfg = LMConfig(vocab_size, model_cfg["d_model"], model_cfg["layers"], model_cfg["heads"],
                   model_cfg["context"], model_cfg["dropout"])
    torch.manual_seed(train_cfg["seed"])
    model = MidiLM(cfg)
    task = LMTask(train, None, train_cfg["max_batch_size"], train_cfg["seed"],
                  window=cfg.context + 1)
    run = TrainSettings(epochs=train_cfg["epochs"], lr=train_cfg["lr"],
                        weight_decay=train_cfg["weight_decay"],
                        warmup_steps=train_cfg["warmup_steps"], schedule=train_cfg["schedule"],
                        amp="off", seed=train_cfg["seed"], progress=False, device="cpu")
    cpu = time.process_time()
    fit(model, task, tmp / name, run)
    row = {"name": name, "cpu_s": time.process_time() - cpu, "vocab": vocab_size,
           "train_tokens_per_note": train.tokens_per_note}
    model.eval()
    for split, data in evals.items():
        result = evaluate_lm(model, data, train_cfg["max_batch_size"])
        row[split] = {k: result[k] for k in ("val_loss", "val_nats_per_note", "val_notes",
                                             "val_tokens_per_note")}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="directory with train/ and val/ MIDI files")
    parser.add_argument("--heldout", type=Path, help="other composers' MIDI files (scored only)")
    parser.add_argument("--epochs", type=int, help="default: midi.train.epochs")
    parser.add_argument("--spec", help="midi settings JSON (as midi-train --spec)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = parse_spec(args.spec)
    if args.epochs:
        settings["train"]["epochs"] = args.epochs
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.corpus is None:
            from notewise.midi.corpus import export_bach

            export_bach(tmp / "corpus", workers=2)
            args.corpus = tmp / "corpus"
        splits = {"train": args.corpus / "train", "val": args.corpus / "val"}
        if args.heldout:
            splits["heldout"] = args.heldout
        files = {split: midi_files(d) for split, d in splits.items()}
        print(f"corpus {args.corpus}: " + ", ".join(f"{k} {len(v)} files"
                                                     for k, v in files.items()))
        print("settings:", json.dumps({k: settings[k] for k in ("train", "model")}))
        ours = {split: MidiDataset(f, settings["train"]["min_sequence_length"],
                                   settings["train"]["max_sequence_length"], workers=2)
                for split, f in files.items()}
        rows = [train_and_score("notewise", len(ours["train"].vocab), ours["train"],
                                {k: v for k, v in ours.items() if k != "train"}, settings, tmp)]
        try:
            from miditok import REMI, TokenizerConfig
        except ImportError:
            print("MidiTok not installed (pip install -e '.[bench]'): its row is left out")
        else:
            remi = REMI(TokenizerConfig(use_programs=True))
            theirs = {split: remi_sequences(f, remi) for split, f in files.items()}
            rows.append(train_and_score("MidiTok REMI", len(remi), theirs["train"],
                                        {k: v for k, v in theirs.items() if k != "train"},
                                        settings, tmp))
        report(rows, ours)


def report(rows: list[dict], ours: dict) -> None:
    evals = [k for k in ours if k != "train"]
    head = " | ".join(f"{s} nats/token | {s} tokens/note | {s} nats/note (own notes) | "
                      f"{s} nats/note (notewise's notes)" for s in evals)
    print(f"| tokenizer | vocab | train CPU-s | {head} |")
    print("| --- | ---: | ---: | " + " | ".join(["---:"] * 4 * len(evals)) + " |")
    for row in rows:
        cells = []
        for s in evals:
            r = row[s]
            common = r["val_nats_per_note"] * r["val_notes"] / ours[s].summary["notes"]
            cells += [f"{r['val_loss']:.3f}", f"{r['val_tokens_per_note']:.2f}",
                      f"{r['val_nats_per_note']:.3f} ({r['val_notes']})", f"{common:.3f}"]
        print(f"| {row['name']} | {row['vocab']} | {row['cpu_s']:.0f} | " + " | ".join(cells)
              + " |")
    print(f"(bits per note = nats / {math.log(2):.4f})")


if __name__ == "__main__":
    main()
