"""MIDI LM training end to end: loss falls, kill + resume, 2-process DDP, generation."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mido
import pytest
import torch

from midi_helpers import chorales
from notewise.midi import MidiDataset
from notewise.midi.commands import main as cli
from notewise.midi.model import LMConfig, MidiLM
from notewise.midi.training import LMTask
from notewise.training import TrainSettings, deterministic_metrics, fit, read_metrics
from notewise.training.resume import ResumeRefused

pytestmark = pytest.mark.timeout(180)

TINY_MODEL = ["--d-model", "32", "--layers", "1", "--heads", "2", "--context", "64",
              "--warmup-steps", "5", "-b", str(4 * 65**2), "-l", "0.003", "--no-progress"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def token_dir(tmp_path_factory) -> Path:
    """JSON token caches of six real chorales (through the midi-tokenize command)."""
    out = tmp_path_factory.mktemp("tokens")
    for path in chorales(tmp_path_factory, 6):
        cli(["midi-tokenize", str(path), str(out / f"{path.name}.json")])
    return out


def train_command(ckpt: Path, token_dir: Path, epochs: int) -> list[str]:
    files = sorted(map(str, token_dir.glob("*.json")))
    return ["midi-train", str(epochs), str(ckpt), "-t", *files[:4], "-v", *files[4:], *TINY_MODEL]


def run_cli(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "notewise.midi.commands", *args], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=150)
    assert proc.returncode == 0, out
    return out


def test_loss_falls_on_a_tiny_corpus(token_dir):
    train = MidiDataset(token_dir, min_sequence_length=16, max_sequence_length=65)
    torch.manual_seed(0)
    model = MidiLM(LMConfig(len(train.vocab), d_model=32, n_layers=1, n_heads=2, context=64))
    history = fit(model, LMTask(train, train, 4 * 65**2), token_dir.parent / "ckpt-loss",
                  TrainSettings(epochs=3, lr=3e-3, warmup_steps=5, progress=False))
    assert history[-1]["train_loss"] < history[0]["train_loss"] - 0.5
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    for record in history:
        assert record["val_perplexity"] == pytest.approx(math.exp(record["val_loss"]))
        assert record["train_tokens_per_s"] > 0


@pytest.fixture(scope="module")
def trained(token_dir, tmp_path_factory) -> Path:
    """A checkpoint after one epoch (in process)."""
    ckpt = tmp_path_factory.mktemp("trained") / "ckpt"
    cli(train_command(ckpt, token_dir, 1))
    return ckpt


def test_kill_and_resume_gives_the_same_metrics(token_dir, tmp_path):
    finish(run_cli(train_command(tmp_path / "straight", token_dir, 2)))
    proc = run_cli(train_command(tmp_path / "killed", token_dir, 2))
    while not (tmp_path / "killed" / "metrics.json").exists() and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before_kill = len(read_metrics(tmp_path / "killed"))
    assert done_before_kill == 1
    out = finish(run_cli(train_command(tmp_path / "killed", token_dir, 2)))
    assert "resuming" in out
    straight, resumed = (read_metrics(tmp_path / d) for d in ("straight", "killed"))
    assert len(resumed) == 2
    assert deterministic_metrics(resumed) == deterministic_metrics(straight)
    assert (tmp_path / "killed" / "metrics.png").stat().st_size > 10_000


def test_changed_settings_refuse_to_resume(trained, token_dir):
    with pytest.raises(ResumeRefused, match=r"trained with other settings \(seed\)"):
        cli(train_command(trained, token_dir, 2) + ["--seed", "5"])
    assert len(read_metrics(trained)) == 1


def test_generate_with_a_prompt(trained, tmp_path_factory, tmp_path, capsys):
    ckpt = trained
    prompt = chorales(tmp_path_factory, 1)[0]
    out = tmp_path / "continued.mid"
    cli(["midi-generate", str(ckpt), str(out), "--tokens", "64", "--prompt", str(prompt),
         "--temperature", "0.9", "--top-p", "0.9"])
    assert "notes ->" in capsys.readouterr().out
    notes = [m for m in mido.MidiFile(out) if m.type == "note_on" and m.velocity > 0]
    prompt_notes = [m for m in mido.MidiFile(prompt) if m.type == "note_on" and m.velocity > 0]
    assert len(notes) > 20 and len(notes) <= len(prompt_notes) + 64
    summary = json.loads((ckpt / "data_summary.json").read_text())
    assert summary["train"]["files_read"] == 4 and 2.0 < summary["train"]["tokens_per_note"] < 3.0


def parse(argv: list[str]):
    import argparse

    from notewise.midi.commands import register
    from notewise.midi.settings import resolve_train_args

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    resolve_train_args(args)
    return args


def test_cli_defaults_are_the_workflow_defaults():
    """midi-train's flags default to the schema's midi section (one set of defaults)."""
    from notewise.midi.settings import TRAIN_FLAGS, midi_settings

    args = parse(["midi-train", "ckpt", "-t", "data"])
    settings = midi_settings()
    for dest, (section, key) in TRAIN_FLAGS.items():
        assert getattr(args, dest) == settings[section][key], dest
    assert args.learning_rate == settings["train"]["lr"] and args.num_epochs == 5


def test_spec_sets_options_and_flags_override_it():
    spec = json.dumps({"train": {"lr": 0.004, "epochs": 3}, "model": {"context": 96},
                       "read": {"timeout": 7}})
    args = parse(["midi-train", "ckpt", "-t", "data", "--spec", spec, "--context", "64"])
    assert (args.learning_rate, args.num_epochs, args.context, args.timeout) == (0.004, 3, 64, 7)
    assert args.d_model == 128  # not in the spec: the default
    assert parse(["midi-train", "9", "ckpt", "-t", "data", "--spec", spec]).num_epochs == 9
    with pytest.raises(ValueError, match="unknown midi key"):
        parse(["midi-train", "ckpt", "-t", "data", "--spec", '{"trian": {}}'])


def test_evaluate_reports_per_note_figures_and_loss_by_position(trained, token_dir, tmp_path):
    val = sorted(map(str, token_dir.glob("*.json")))[4:]
    out = tmp_path / "eval.json"
    cli(["midi-evaluate", str(trained), "-v", *val, "-o", str(out)])
    result = json.loads(out.read_text())
    notes = sum(sum(json.loads(Path(f).read_text())["notes"]) for f in val)
    assert result["val_notes"] == notes > 0 and "same-onset" in result["notes_counted"]
    total = result["val_loss"] * result["val_tokens"]
    assert result["val_nats_per_note"] == pytest.approx(total / notes)
    assert result["val_bits_per_note"] == pytest.approx(total / notes / math.log(2))
    buckets = result["val_loss_by_position"]
    assert len(buckets) == 8 and buckets[0]["positions"][0] == 0
    assert buckets[-1]["positions"][1] == 63  # context 64: targets at input positions 0..63
    assert [b["targets"] for b in buckets] == [8 * result["val_full_windows"]] * 8
    assert 0 < result["val_full_windows"] and 8 * 8 * result["val_full_windows"] < result["val_tokens"]
    assert all(0 < b["loss"] < 10 for b in buckets)
    record = read_metrics(trained)[-1]
    assert record["val_notes"] == notes
    assert record["val_nats_per_note"] == pytest.approx(record["val_loss"] * total
                                                        / result["val_loss"] / notes, rel=1e-6)
    assert record["val_bits_per_note"] == pytest.approx(record["val_nats_per_note"] / math.log(2))


def test_export_copies_the_final_files(token_dir, tmp_path):
    from notewise.midi.commands import EXPORT_FILES

    cli(train_command(tmp_path / "ckpt", token_dir, 1) + ["--export", str(tmp_path / "model")])
    for name in EXPORT_FILES:
        assert (tmp_path / "model" / name).read_bytes() == (tmp_path / "ckpt" / name).read_bytes()


def test_the_default_batch_budget_keeps_a_training_step_small():
    """What held 2.6 GB in a 86-file midi-train (issue 15 item 12): the old default budget
    (8 * 1536**2, meant for long sequences on a GPU) packed about 285 context windows into a
    batch, and a step keeps several [batch, tokens, vocab] float32 tensors (logits, their
    softmax and gradients). At the defaults the largest batch's logits stay under 16 MB."""
    from notewise.midi import MidiDatasetSampler
    from notewise.midi.settings import midi_settings
    from notewise.midi.vocab import TokenizerConfig, Vocabulary

    settings = midi_settings()
    context = settings["model"]["context"]
    pieces = [3000] * 86  # long pieces: every batch is full context windows
    sampler = MidiDatasetSampler(pieces, settings["train"]["max_batch_size"], window=context + 1,
                                 offsets=True)
    largest = max(sum(stop - start for _, start, stop in batch) for batch in sampler)
    logits_bytes = largest * len(Vocabulary(TokenizerConfig())) * 4
    assert logits_bytes < 16e6, f"{largest} tokens a batch: {logits_bytes / 1e6:.0f} MB of logits"
