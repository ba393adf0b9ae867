"""`snakemake midi_lm` on a user's MIDI directory, in a temporary copy of the workflow.

A tiny model on five small files (one unreadable): the whole DAG runs, a rerun does nothing, and
changing one MIDI file reruns only that file's ``midi_tokenize`` job (and what depends on all
caches: training and its consumers).
"""

from __future__ import annotations

import json
import re

import mido
import pytest
import yaml

from midi_helpers import scale_track, smf
from notewise.config import REPO_ROOT
from snakekit import make_workdir, snakemake

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MIDI_CONFIG = {
    "train": {"epochs": 1, "max_batch_size": 4 * 33**2, "min_sequence_length": 4,
              "warmup_steps": 1},
    "model": {"d_model": 16, "layers": 1, "heads": 2, "context": 32},
    "generate": {"tokens": 48},
    "heldout": {"composers": ["haydn"], "per_composer": 1},
}
DOWNSTREAM = {"midi_train", "midi_evaluate", "midi_plot", "midi_generate", "midi_pianoroll",
              "midi_lm"}


def write_corpus(root) -> dict[str, bytes]:
    files = {"train/a.mid": smf(scale_track(24)), "train/b.mid": smf(scale_track(30, first=48)),
             "train/deep/c.mid": smf(scale_track(20, step=240, first=55)),
             "train/broken.mid": b"",
             "val/d.mid": smf(scale_track(24, first=62))}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def planned_jobs(workdir) -> tuple[dict[str, int], str]:
    """(rule -> job count, the output) of a dry run of midi_lm."""
    out = snakemake(workdir, "midi_lm", "-n").stdout
    if "Nothing to be done" in out:
        return {}, out
    table = out.split("Job stats:")[1].split("total")[0]
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)\s*$", table, re.M)}, out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("user_midi")
    write_corpus(corpus)
    config = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())  # only midi_lm runs
    config["midi"] = {**MIDI_CONFIG, "corpus": str(corpus)}
    workdir = make_workdir(tmp_path_factory.mktemp("midi_workflow"), config)
    snakemake(workdir, "midi_lm")
    return workdir, corpus


def test_the_dag_runs_on_a_user_directory(built):
    workdir, corpus = built
    results = workdir / "results"
    caches = sorted(p.relative_to(results / "midi/tokens").as_posix()
                    for p in (results / "midi/tokens").rglob("*.json"))
    assert [c for c in caches if not c.startswith("heldout/")] == [
        "train/a.mid.json", "train/b.mid.json", "train/broken.mid.json",
        "train/deep/c.mid.json", "val/d.mid.json"]
    assert len([c for c in caches if c.startswith("heldout/haydn_")]) == 1
    broken = json.loads((results / "midi/tokens/train/broken.mid.json").read_text())
    assert broken["error"] == "empty file (0 bytes)" and broken["sequences"] == []
    summary = json.loads((results / "models/midi/data_summary.json").read_text())
    assert summary["train"]["files_read"] == 3 and len(summary["train"]["skipped"]) == 1
    evaluation = json.loads((results / "midi/eval.json").read_text())
    assert evaluation["val_files_read"] == 1 and evaluation["val_perplexity"] > 1
    assert evaluation["heldout_files_read"] == 1 and evaluation["heldout_nats_per_note"] > 0
    assert evaluation["val_nats_per_note"] == pytest.approx(
        evaluation["val_loss"] * evaluation["val_tokens"] / evaluation["val_notes"])
    mido.MidiFile(results / "midi/samples/sample.mid")  # parses
    for png in ("midi_training.png", "midi_sample.png"):
        assert (results / "plots" / png).stat().st_size > 5000


def test_rerun_does_nothing_and_one_changed_file_reruns_only_its_cache(built):
    workdir, corpus = built
    assert planned_jobs(workdir)[0] == {}
    (corpus / "train/b.mid").write_bytes(smf(scale_track(31, first=50)))
    jobs, out = planned_jobs(workdir)
    assert jobs.pop("midi_tokenize") == 1
    assert set(jobs) == DOWNSTREAM and set(jobs.values()) == {1}
    assert "output: results/midi/tokens/train/b.mid.json" in out
    assert "output: results/midi/tokens/train/a.mid.json" not in out
