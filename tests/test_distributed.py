"""DDP training as the Snakemake training rules launch it: ``torchrun --standalone
--nproc_per_node 2 -m notewise ...`` (notewise.workflow.resources.torchrun_launcher), two gloo processes on
CPU, for the pitch model and the MIDI LM (tiny sizes).

A ``sitecustomize`` spy on PYTHONPATH records, in each worker, what its rank's training batches
held (pitch: a digest of every waveform; MIDI: the ``(sequence, start, stop)`` spans), so the test
sees the data the ranks really trained on: disjoint, and together the whole training set. The
checkpoint must have no ``module.`` prefix and load into a plain single-process model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from notewise.workflow.resources import torchrun_launcher

pytestmark = pytest.mark.timeout(240)

NPROC = 2
# Imported by every Python process of the run; active only in torchrun workers (RANK is set).
SPY = r'''
import atexit, hashlib, json, os

if os.environ.get("NOTEWISE_SPY_DIR") and "RANK" in os.environ:
    SEEN = {}

    def _save():
        path = os.path.join(os.environ["NOTEWISE_SPY_DIR"], f"rank{os.environ['RANK']}.json")
        with open(path, "w") as fh:
            json.dump({k: sorted(v) for k, v in SEEN.items()}, fh)

    atexit.register(_save)

    class _Recorder:
        def __init__(self, inner, epoch):
            self.inner, self.epoch = inner, str(epoch)

        def __len__(self):
            return len(self.inner)

        def __iter__(self):
            for item in self.inner:
                rows = item.data["waveform"].reshape(len(item.data["waveform"]), -1).numpy()
                SEEN.setdefault(self.epoch, set()).update(
                    hashlib.sha1(row.tobytes()).hexdigest() for row in rows)
                yield item

    from notewise.midi.training import LMTask
    from notewise.pitch.train import PitchTrainTask

    _pitch = PitchTrainTask.train_batches
    PitchTrainTask.train_batches = lambda self, e, r, w: _Recorder(_pitch(self, e, r, w), e)
    _midi = LMTask.train_batches

    def _midi_spy(self, epoch, rank, world_size):
        batches = _midi(self, epoch, rank, world_size)
        SEEN.setdefault(str(epoch), set()).update(
            "%d:%d:%d" % span for batch in batches.batches for span in batch)
        # the epoch's spans before the ranks split them (training spans move with the epoch)
        SEEN["all:%d" % epoch] = {"%d:%d:%d" % span for span in batches.sampler.spans()}
        return batches

    LMTask.train_batches = _midi_spy
'''


def run_launcher(args: str, spy_dir: Path, timeout: float = 180) -> str:
    """``<the rules' torchrun launcher> args`` in a shell, with the spy on PYTHONPATH."""
    (spy_dir / "sitecustomize.py").write_text(SPY)
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": venv_bin + os.pathsep + os.environ["PATH"],
           "PYTHONPATH": os.pathsep.join(filter(None, [str(spy_dir), os.environ.get("PYTHONPATH")])),
           "NOTEWISE_SPY_DIR": str(spy_dir), "PYTHONUNBUFFERED": "1"}
    command = f"{torchrun_launcher(NPROC, NPROC)} {args}"
    proc = subprocess.run(command, shell=True, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{command}\nfailed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.stderr


def seen_by_rank(spy_dir: Path) -> list[dict[str, set[str]]]:
    ranks = [json.loads((spy_dir / f"rank{r}.json").read_text()) for r in range(NPROC)]
    return [{epoch: set(items) for epoch, items in rank.items()} for rank in ranks]


def assert_disjoint_and_complete(seen: list[dict[str, set[str]]], everything: set[str]):
    assert seen[0].keys() == seen[1].keys() and seen[0], f"epochs seen: {[s.keys() for s in seen]}"
    for epoch in seen[0]:
        first, second = seen[0][epoch], seen[1][epoch]
        assert first and second, f"epoch {epoch}: a rank trained on nothing"
        assert not first & second, f"epoch {epoch}: ranks shared {len(first & second)} items"
        assert first | second == everything, f"epoch {epoch}: the ranks missed data"


def assert_plain_state_dict(path: Path) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert state and not any(key.startswith("module.") for key in state), list(state)[:5]
    return state


# -- pitch model -------------------------------------------------------------------------------
def pitch_spec() -> str:
    from pitch_helpers import tiny_settings

    settings = tiny_settings(epochs=2, device="cpu", nproc=NPROC, noise_prob=0.0)
    return json.dumps({"audio": settings["audio"], "bins": settings["bins"],
                       "pitch_model": {"model": settings["model"], "train": settings["train"]}})


def waveform_digests(dataset: Path) -> set[str]:
    import hashlib

    rows = np.concatenate([np.load(p) for p in sorted((dataset / "waveforms").glob("*.npy"))])
    return {hashlib.sha1(row.tobytes()).hexdigest() for row in rows}


def test_pitch_training_under_torchrun(tmp_path):
    from pitch_helpers import make_dataset

    from notewise.pitch.model import load_model

    train = make_dataset(tmp_path / "train", num_samples=64, seed=1, shard_size=32)
    val = make_dataset(tmp_path / "val", num_samples=16, seed=2)
    out, spy = tmp_path / "model", tmp_path / "spy"
    spy.mkdir()
    run_launcher(f"train-pitch --spec '{pitch_spec()}' --train {train} --val {val} -o {out}"
                 " --no-progress", spy)
    assert_disjoint_and_complete(seen_by_rank(spy), waveform_digests(train))
    assert [r["epoch"] for r in json.loads((out / "metrics.json").read_text())] == [0, 1]
    state = assert_plain_state_dict(out / "model.pth")
    model = load_model(out / "model.pth")  # a plain single-process model, strict load
    assert model.state_dict().keys() == state.keys()
    conf, energy = model(torch.randn(2, 1, 4096))
    assert conf.shape == (2, 2048) and torch.isfinite(conf).all() and torch.isfinite(energy).all()
    # a single process resumes the two-process checkpoint (nothing left to train: same history)
    from notewise.pitch.settings import pitch_settings
    from notewise.pitch.train import train_pitch

    history = json.loads((out / "metrics.json").read_text())
    resumed = train_pitch(pitch_settings(json.loads(pitch_spec())), train, val, out, progress=False)
    assert [r["train_loss"] for r in resumed] == [r["train_loss"] for r in history]


# -- MIDI LM -----------------------------------------------------------------------------------
TINY_LM = "--d-model 32 --layers 1 --heads 2 --context 64 --warmup-steps 5 -b 16900 --no-progress"


@pytest.fixture(scope="module")
def token_files(tmp_path_factory) -> list[str]:
    from midi_helpers import chorales

    from notewise.midi.commands import main as cli

    out = tmp_path_factory.mktemp("tokens")
    for path in chorales(tmp_path_factory, 6):
        cli(["midi-tokenize", str(path), str(out / f"{path.name}.json")])
    return sorted(map(str, out.glob("*.json")))


def test_midi_lm_training_under_torchrun(tmp_path, token_files):
    from notewise.midi.model import LMConfig, MidiLM

    ckpt, spy = tmp_path / "ckpt", tmp_path / "spy"
    spy.mkdir()
    run_launcher(f"midi-train 2 {ckpt} -t {' '.join(token_files[:4])} -v {' '.join(token_files[4:])}"
                 f" {TINY_LM} --device cpu", spy)
    seen = seen_by_rank(spy)
    for epoch in ("0", "1"):  # every span of the epoch (the sampler's full list), per rank
        every = seen[0].pop(f"all:{epoch}")
        assert seen[1].pop(f"all:{epoch}") == every and every
        assert_disjoint_and_complete([{epoch: s[epoch]} for s in seen], every)
    assert torch.load(ckpt / "state.pth", weights_only=True)["world_size"] == NPROC
    state = assert_plain_state_dict(ckpt / "model.pth")
    config = json.loads((ckpt / "model_config.json").read_text())
    model = MidiLM(LMConfig(**config))
    model.load_state_dict(state)  # strict: every key of a plain model, no DDP wrapper
    logits = model(torch.randint(3, config["vocab_size"], (1, 16)))
    assert torch.isfinite(logits).all()
    # and the checkpoint generates in a single process, as midi-generate runs it
    import mido

    from notewise.midi.commands import main as cli

    cli(["midi-generate", str(ckpt), str(tmp_path / "sample.mid"), "--tokens", "200", "--seed", "3"])
    midi = mido.MidiFile(tmp_path / "sample.mid")
    assert sum(msg.type == "note_on" and msg.velocity > 0 for msg in midi) > 5
