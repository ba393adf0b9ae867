"""``notewise midi-*`` subcommands. ``register(subparsers)`` adds them; handlers import lazily.

=======================  ===================================================================
``midi-export-corpus``   music21's Bach scores -> ``OUT/{train,val}/<name>.mid``
``midi-export-heldout``  a few scores of other composers -> ``OUT/<composer>_<name>.mid``
``midi-vocab``           the tokenizer settings + vocabulary as JSON
``midi-tokenize``        one MIDI file -> its JSON token cache (or the reason it is unreadable)
``midi-train``           train the LM (the design document's CLI), resuming from CKPT_PATH
``midi-evaluate``        validation loss / perplexity / tokens per note of a checkpoint -> JSON
``midi-plot``            metrics.json -> the loss / perplexity figure
``midi-pianoroll``       a MIDI file -> a piano-roll figure (the generated sample in the report)
``midi-generate``        sample a ``.mid`` file from a checkpoint
=======================  ===================================================================

``midi-train`` notes: ``-m`` defaults to 16 tokens (the design document's "2^32" would drop
every sequence);
sequences are cut to ``min(-e, --context + 1)`` tokens, since the model sees at most
``--context`` inputs. CKPT_PATH receives ``model.pth``, ``optimizer.pth``, ``metrics.json``,
``state.pth`` (the harness), plus ``vocab.json``, ``model_config.json``, ``run.json`` (the
settings that must match to resume), ``data_summary.json`` and ``metrics.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from notewise.atomicio import atomic_write_json

from .settings import default, resolve_train_args, section_settings

DEFAULT_MAX_LENGTH = 2**17
# midi-train options that must match to resume a checkpoint (epochs may grow, device may change)
RESUME_KEYS = ("min_sequence_length", "max_sequence_length", "max_batch_size", "learning_rate",
               "weight_decay", "d_model", "layers", "heads", "context", "dropout",
               "warmup_steps", "schedule", "amp", "seed", "vocab")
#: What ``midi-train --export DIR`` copies from the checkpoint (the workflow's outputs).
EXPORT_FILES = ("model.pth", "metrics.json", "model_config.json", "vocab.json",
                "data_summary.json", "metrics.png")


def register(subparsers) -> None:
    for add in (_add_export, _add_export_heldout, _add_vocab, _add_tokenize, _add_train, _add_evaluate, _add_plot,
                _add_pianoroll, _add_generate):
        add(subparsers)


# --------------------------------------------------------------------------- parsers


def _add_tokenizer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vocab", type=Path, help="vocabulary JSON (midi-vocab); default: built-in")


def _add_export(sub) -> None:
    p = sub.add_parser("midi-export-corpus", help="export music21's Bach scores as MIDI")
    p.add_argument("out_dir", type=Path)
    p.add_argument("--limit", type=int, help="only the first N scores (by name)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--val-percent", type=int, default=20)
    p.set_defaults(func=cmd_export_corpus)


def _add_export_heldout(sub) -> None:
    p = sub.add_parser("midi-export-heldout",
                       help="export other composers' scores (a held-out validation set)")
    p.add_argument("out_dir", type=Path)
    p.add_argument("--spec", help="midi settings as JSON or @file (the rules pass one); flags override")
    p.add_argument("--composers", nargs="+", help="default: midi.heldout.composers")
    p.add_argument("--per-composer", type=int, help="default: midi.heldout.per_composer")
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=cmd_export_heldout)


def _add_vocab(sub) -> None:
    p = sub.add_parser("midi-vocab", help="write the tokenizer settings and vocabulary")
    p.add_argument("out", type=Path)
    p.add_argument("--spec", help="midi settings as JSON or @file (the rules pass one); flags override")
    p.add_argument("--steps-per-beat", type=int)
    p.add_argument("--max-duration-beats", type=int)
    p.add_argument("--velocity-bins", type=int)
    p.add_argument("--tempo-bins", type=int)
    p.add_argument("--drums", choices=("drop", "keep"))
    p.add_argument("--no-sustain", dest="sustain", action="store_const", const=False,
                   help="ignore the sustain pedal")
    p.set_defaults(func=cmd_vocab)


def _add_tokenize(sub) -> None:
    p = sub.add_parser("midi-tokenize", help="MIDI file -> JSON token cache")
    p.add_argument("midi", type=Path)
    p.add_argument("out", type=Path)
    _add_tokenizer_options(p)
    p.add_argument("--spec", help="midi settings as JSON or @file (the rules pass one); flags override")
    p.add_argument("--timeout", type=float, help="seconds allowed to parse")
    p.add_argument("--max-bytes", type=int)
    p.set_defaults(func=cmd_tokenize)


def _add_train(sub) -> None:
    p = sub.add_parser("midi-train", help="train the MIDI language model",
                       description="Every option left out takes its value from --spec, else "
                                   "from the midi section of the config schema (the workflow's "
                                   "defaults: one set for both).")
    p.add_argument("num_epochs", type=int, nargs="?", help="default: midi.train.epochs")
    p.add_argument("ckpt_path", type=Path)
    p.add_argument("-t", "--train-dataset", nargs="+", required=True, type=Path,
                   help="MIDI/JSON files or directories")
    p.add_argument("-v", "--val-dataset", nargs="+", type=Path)
    p.add_argument("--spec", help="midi settings as JSON ({'train', 'model', 'read'}) or @file")
    p.add_argument("-m", "--min-sequence-length", type=int,
                   help="drop sequences shorter than this many tokens (about 6 notes at 16; the "
                        "design document's 2**32 would drop everything)")
    p.add_argument("-e", "--max-sequence-length", type=int,
                   help="keep sequences in chunks of at most this many tokens, cut at bar lines")
    p.add_argument("-b", "--max-batch-size", type=int,
                   help="batch budget: sum(len**2) over a batch")
    p.add_argument("-l", "--learning-rate", type=float, help="AdamW peak LR")
    p.add_argument("-w", "--weight-decay", type=float, help="AdamW weight decay")
    p.add_argument("--d-model", type=int, help="model width")
    p.add_argument("--layers", type=int, help="Transformer blocks")
    p.add_argument("--heads", type=int, help="attention heads")
    p.add_argument("--context", type=int, help="tokens the model sees at once")
    p.add_argument("--dropout", type=float)
    p.add_argument("--warmup-steps", type=int)
    p.add_argument("--schedule", choices=("cosine", "constant"))
    p.add_argument("--amp", choices=("auto", "bf16", "fp16", "off"))
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="e.g. cpu, cuda, cuda:1 (default: auto)")
    p.add_argument("--timeout", type=float, help="seconds one MIDI file may take to parse")
    p.add_argument("--max-bytes", type=int, help="larger MIDI files are skipped unread")
    p.add_argument("--workers", type=int, help="MIDI parser processes (default: cores, <= 8)")
    p.add_argument("--threads", type=int, help="torch threads per process (default: torch's)")
    p.add_argument("--export", type=Path, metavar="DIR",
                   help="after training, copy the final model files into DIR (atomically)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--restart-on-change", action="store_true",
                   help="start over when CKPT_PATH was trained with other settings or data")
    _add_tokenizer_options(p)
    p.set_defaults(func=cmd_train)


def _add_evaluate(sub) -> None:
    p = sub.add_parser("midi-evaluate", help="validation metrics of a trained checkpoint")
    p.add_argument("ckpt_path", type=Path)
    p.add_argument("-v", "--val-dataset", nargs="+", required=True, type=Path)
    p.add_argument("--heldout", nargs="+", type=Path, default=[],
                   help="a second validation set (other composers), scored as heldout_*")
    p.add_argument("-o", "--out", type=Path, required=True)
    p.add_argument("-b", "--max-batch-size", type=int, default=default("train", "max_batch_size"))
    p.add_argument("--device")
    p.set_defaults(func=cmd_evaluate)


def _add_plot(sub) -> None:
    p = sub.add_parser("midi-plot", help="metrics.json -> loss/perplexity figure")
    p.add_argument("metrics", type=Path)
    p.add_argument("out", type=Path)
    p.set_defaults(func=cmd_plot)


def _add_pianoroll(sub) -> None:
    p = sub.add_parser("midi-pianoroll", help="MIDI file -> piano-roll figure")
    p.add_argument("midi", type=Path)
    p.add_argument("out", type=Path)
    _add_tokenizer_options(p)
    p.set_defaults(func=cmd_pianoroll)


def _add_generate(sub) -> None:
    p = sub.add_parser("midi-generate", help="sample a MIDI file from a trained model")
    p.add_argument("ckpt_path", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--spec", help="midi settings as JSON or @file (the rules pass one); flags override")
    p.add_argument("--tokens", type=int)
    p.add_argument("--temperature", type=float)
    p.add_argument("--top-p", type=float)
    p.add_argument("--prompt", type=Path, help="a MIDI file to continue")
    p.add_argument("--seed", type=int)
    p.add_argument("--max-gap-bars", type=int, default=2,
                   help="longest silence (in empty bars) kept from the sampled Skip tokens")
    p.add_argument("--device")
    p.set_defaults(func=cmd_generate)


# --------------------------------------------------------------------------- helpers


def _load_vocab(path: Path | None):
    from .vocab import Vocabulary

    return Vocabulary.load(path) if path else Vocabulary()


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _run_record(args) -> dict:
    """The settings and data that must match to resume (epochs may grow, device may change)."""
    from ..training.resume import files_digest
    from .cache import find_inputs

    record = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
              if k in RESUME_KEYS}
    record["train_data"] = files_digest(find_inputs(args.train_dataset))
    record["val_data"] = files_digest(find_inputs(args.val_dataset or []))
    return record


def _load_trained(ckpt: Path, device: str | None):
    """(model on device, vocab) from a midi-train checkpoint directory."""
    import torch

    from ..training import load_model_state
    from .model import LMConfig, MidiLM

    vocab = _load_vocab(ckpt / "vocab.json")
    cfg = LMConfig(**json.loads((ckpt / "model_config.json").read_text()))
    model = MidiLM(cfg)
    model.load_state_dict(load_model_state(ckpt))
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return model.to(dev).eval(), vocab


# --------------------------------------------------------------------------- handlers


def cmd_export_corpus(args) -> None:
    from .corpus import export_bach

    summary = export_bach(args.out_dir, limit=args.limit, workers=args.workers,
                          val_percent=args.val_percent)
    print(json.dumps(summary, indent=1))
    if summary["exported"] == 0:
        sys.exit("no score could be exported")


def cmd_export_heldout(args) -> None:
    from .corpus import export_heldout

    heldout = section_settings(args, "heldout", ("composers", "per_composer"))
    summary = export_heldout(args.out_dir, heldout["composers"], heldout["per_composer"],
                             workers=args.workers)
    print(json.dumps(summary, indent=1))
    if summary["exported"] == 0:
        sys.exit("no score could be exported")


def cmd_vocab(args) -> None:
    from .vocab import TokenizerConfig, Vocabulary

    cfg = TokenizerConfig(**section_settings(args, "tokenizer", (
        "steps_per_beat", "max_duration_beats", "velocity_bins", "tempo_bins", "drums",
        "sustain")))
    vocab = Vocabulary(cfg)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    vocab.save(args.out)
    print(f"{len(vocab)} tokens, digest {vocab.digest} -> {args.out}")


def cmd_tokenize(args) -> None:
    from .cache import save_cache, tokenize_raw
    from .reading import MidiReader
    from .smf import MidiFileError
    from .tokenizer import Tokenizer

    vocab = _load_vocab(args.vocab)
    try:
        read = section_settings(args, "read", ("timeout", "max_bytes"))
        with MidiReader(timeout=read["timeout"], max_bytes=read["max_bytes"],
                        sustain=vocab.config.sustain) as reader:
            result = tokenize_raw(reader.read(args.midi), Tokenizer(vocab))
        print(f"{args.midi}: {sum(result.notes)} notes, "
              f"{sum(map(len, result.sequences))} tokens")
    except MidiFileError as err:
        result = err
        print(f"{args.midi}: unreadable, recorded as skipped: {err}", file=sys.stderr)
    save_cache(result, vocab, args.out, source=args.midi.name)


def cmd_train(args) -> None:
    resolve_train_args(args)
    _set_threads(args.threads)
    import torch

    from ..training import TrainSettings, fit
    from ..training.resume import check_resume, write_record
    from .dataset import MidiDataset
    from .model import LMConfig, MidiLM
    from .plots import plot_history
    from .training import LMTask

    vocab = _load_vocab(args.vocab)
    ckpt: Path = args.ckpt_path
    record = _run_record(args)
    if _is_main_process():
        check_resume(ckpt, record, args.restart_on_change, extra_files=("metrics.png",))

    def load(paths):
        return MidiDataset(paths, args.min_sequence_length, args.max_sequence_length, vocab,
                           workers=args.workers, timeout=args.timeout,
                           max_bytes=args.max_bytes) if paths else None

    train, val = load(args.train_dataset), load(args.val_dataset)
    if len(train) == 0:
        sys.exit(f"no training sequences: {json.dumps(train.summary['skipped'])[:2000]}")
    cfg = LMConfig(len(vocab), args.d_model, args.layers, args.heads, args.context, args.dropout)
    torch.manual_seed(args.seed)
    model = MidiLM(cfg)
    if _is_main_process():
        ckpt.mkdir(parents=True, exist_ok=True)
        vocab.save(ckpt / "vocab.json")
        atomic_write_json(ckpt / "model_config.json", cfg.to_json(), indent=1, sort_keys=False)
        write_record(ckpt, record)
        summary = _data_summary(train, val)
        atomic_write_json(ckpt / "data_summary.json", summary, indent=1, sort_keys=False)
        print(json.dumps(_brief(summary), indent=1))
    settings = TrainSettings(epochs=args.num_epochs, lr=args.learning_rate,
                             weight_decay=args.weight_decay, warmup_steps=args.warmup_steps,
                             schedule=args.schedule, amp=args.amp, seed=args.seed,
                             progress=not args.no_progress, device=args.device)
    task = LMTask(train, val, args.max_batch_size, args.seed, window=args.context + 1)
    history = fit(model, task, ckpt, settings,
                  on_epoch_end=lambda h: plot_history(h, ckpt / "metrics.png"))
    if _is_main_process() and history:
        print(json.dumps(history[-1], indent=1))
        if args.export:
            _export(ckpt, args.export)


def _set_threads(threads: int | None) -> None:
    """Torch threads of this process, and OpenMP's passive wait policy (idle threads sleep
    instead of spinning, which costs 2-4x the CPU time when jobs share the cores). The policy
    only takes effect if set before torch loads OpenMP (the workflow also sets it in the env)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if threads:
        import torch

        torch.set_num_threads(threads)


def _export(ckpt: Path, out_dir: Path) -> None:
    from notewise.atomicio import atomic_copy

    out_dir.mkdir(parents=True, exist_ok=True)
    for name in EXPORT_FILES:
        atomic_copy(ckpt / name, out_dir / name)


def _data_summary(train, val) -> dict:
    return {name: dict(ds.summary, tokens_per_note=round(ds.tokens_per_note, 4))
            for name, ds in (("train", train), ("val", val)) if ds is not None}


def _brief(summary: dict) -> dict:
    """The data summary with per-file dicts replaced by their sizes (for the console)."""
    return {name: {k: len(v) if isinstance(v, dict) else v for k, v in part.items()}
            for name, part in summary.items()}


def cmd_evaluate(args) -> None:
    from .dataset import MidiDataset
    from .evaluate import evaluate_lm

    model, vocab = _load_trained(args.ckpt_path, args.device)
    result = {}
    for prefix, paths in (("val", args.val_dataset), ("heldout", args.heldout)):
        if not paths:
            continue
        data = MidiDataset(paths, 2, DEFAULT_MAX_LENGTH, vocab)
        result.update(evaluate_lm(model, data, args.max_batch_size, prefix=prefix))
        result.update({f"{prefix}_files": data.summary["files"],
                       f"{prefix}_files_read": data.summary["files_read"],
                       f"{prefix}_skipped": data.summary["skipped"]})
    metrics_file = args.ckpt_path / "metrics.json"
    if metrics_file.exists():
        result["epochs"] = len(json.loads(metrics_file.read_text()))
    atomic_write_json(args.out, result, indent=1, sort_keys=False)
    print(json.dumps({k: v for k, v in result.items() if not k.endswith("skipped")}, indent=1))


def cmd_plot(args) -> None:
    from .plots import plot_history

    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot_history(json.loads(args.metrics.read_text()), args.out)


def cmd_pianoroll(args) -> None:
    from .plots import plot_pianoroll
    from .reading import MidiReader
    from .score import quantize

    vocab = _load_vocab(args.vocab)
    with MidiReader() as reader:
        raws = reader.read(args.midi)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot_pianoroll(quantize(raws[0], vocab.config), vocab.config.steps_per_beat, args.out,
                   title=args.midi.name)


def cmd_generate(args) -> None:
    from .cache import tokenize_midi
    from .generate import generate
    from .score import write_midi
    from .tokenizer import Tokenizer
    from .vocab import EOS

    model, vocab = _load_trained(args.ckpt_path, args.device)
    tokenizer = Tokenizer(vocab)
    prompt: list[int] = []
    if args.prompt:
        # the whole prompt stays in the output; the model sees its last --context tokens
        prompt = [t for t in tokenize_midi(args.prompt, tokenizer).sequences[0] if t != EOS]
    gen = section_settings(args, "generate", ("tokens", "temperature", "top_p", "seed"))
    ids = generate(model, prompt, gen["tokens"], temperature=gen["temperature"],
                   top_p=gen["top_p"], seed=gen["seed"])
    score = tokenizer.decode(ids, max_gap_bars=args.max_gap_bars)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_midi(score, vocab.config.steps_per_beat, args.out)
    print(f"{len(ids) - len(prompt)} tokens sampled, {len(score.notes)} notes -> {args.out}")
    if not score.notes:
        print("warning: the sample holds no notes", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    """Stand-alone entry (``python -m notewise.midi.commands ...``), same as ``notewise``."""
    import logging

    parser = argparse.ArgumentParser(prog="notewise")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.func(args)


if __name__ == "__main__":
    main()
