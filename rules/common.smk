# Helpers shared by the rules: config slices, shard plans and code hashes, all from notewise
# (notewise.workflow: specs, codehash, resources; notewise.kinds: the dataset kinds).

import functools
import shlex
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from notewise import kinds
from notewise.config import canonical_json, kind_settings, section_settings
from notewise.midi.corpus import has_split_dirs, user_corpus_files
from notewise.music.corpus import NOTES_FILE
from notewise.pitch.settings import pitch_settings
from notewise.pitch.stages import code_hash
from notewise.store.layout import build_id
from notewise.workflow import resources as _compute
from notewise.workflow.codehash import (kind_code_hash, notes_code_hash, source_hash,
                                        timbre_code_hash)
from notewise.workflow.specs import check_config, generation_spec, shard_plan


FULL_CONFIG = check_config(config)
DATASETS = list(config["datasets"])
#: Per kind, the hash of the package folders its kinds entry names (the shard rules' code param).
KIND_HASH = {name: kind_code_hash(name) for name in kinds.KINDS}
TIMBRE_HASH = timbre_code_hash()
NOTES_HASH = notes_code_hash()  # the code param of music_notes (corpus listing, MIDI reading)

DATASET_DIR = "results/datasets/{dataset}"
TIMBRES = "results/timbres/timbres.npz"


wildcard_constraints:
    dataset="|".join(DATASETS),
    shard=r"\d{5}",


def shard_ids(dataset):
    return [f"{i:05d}" for i in range(len(shard_plan(config, dataset)))]


def dataset_files(pattern, dataset):
    """``pattern`` (with {dataset} and {shard}) expanded over the shards of ``dataset``."""
    return expand(pattern, dataset=dataset, shard=shard_ids(dataset))


def shard_spec(wildcards):
    """What decides one shard's bytes: the dataset's generation spec and its sample range."""
    start, count = shard_plan(config, wildcards.dataset)[int(wildcards.shard)]
    return canonical_json({**generation_spec(config, wildcards.dataset), "start": start, "count": count})


def dataset_spec(wildcards):
    return canonical_json(generation_spec(config, wildcards.dataset))


def dataset_kind(dataset):
    """The notewise.kinds entry of ``dataset``."""
    return kinds.kind(config["datasets"][dataset]["kind"])


def dataset_code_hash(wildcards):
    """The code param of a dataset's rules: the hash of what its kind's entry names."""
    return KIND_HASH[dataset_kind(wildcards.dataset).name]


def dataset_build_id(wildcards):
    """The build id every shard of the dataset records and its meta.json names (spec and code)."""
    return build_id(generation_spec(config, wildcards.dataset), (dataset_code_hash(wildcards),))


# Cluster resources (the `compute:` config section, notewise.workflow.resources; docs/cluster.md).
# Shard jobs are sized by their sample count and form the group "shards", so that
# `--group-components shards=N` packs N shards into one cluster job. Cheap bookkeeping rules
# (seconds, little memory) run inside the main snakemake process, never as cluster jobs.


COMPUTE = _compute.compute_settings(config)
PARTITION = {"slurm_partition": _compute.partition(COMPUTE)} if _compute.partition(COMPUTE) else {}


def _shard_resource(name):
    def resource(wildcards):
        count = _compute.shard_count(config, wildcards.dataset, int(wildcards.shard))
        return _compute.shard_resources(COMPUTE, count)[name]

    return resource


shard_mem_mb = _shard_resource("mem_mb")
shard_runtime = _shard_resource("runtime")


def training_resources(rule, device, nproc):
    """``mem_mb``, ``runtime``, partition of a training rule, plus one GPU per process on CUDA."""
    return _compute.training_resources(COMPUTE, rule, device, nproc)


onstart:
    # Under the SLURM executor: fail before the first sbatch if a job asks for more than any node
    # of its partition has (it would pend forever); notewise.workflow.resources.check_workflow_on_slurm.
    try:
        for _warning in _compute.check_workflow_on_slurm(workflow, COMPUTE):
            print(_warning, file=sys.stderr)
    except ValueError as err:
        raise WorkflowError(str(err)) from None


localrules:
    timbre_library,
    validate_dataset,
    dataset_meta,
    datasets,
    all,
    pitch_model,
    midi_lm,


torchrun_launcher = _compute.torchrun_launcher


# MIDI language model (rules/midi.smk): the `midi:` section, defaults filled in by the schema.


MIDI = config["midi"]
#: The code param of every MIDI rule: the MIDI package and the training harness it trains with.
MIDI_CODE = source_hash(("midi", "training"))


def midi_source_dir(split):
    """Directory holding the MIDI files of ``split`` (waits for the export of the Bach corpus)."""
    if split == "heldout":
        return checkpoints.midi_export_heldout.get().output[0]
    if MIDI["corpus"] == "bach":
        return f"{checkpoints.midi_export_corpus.get().output[0]}/{split}"
    return f"{MIDI['corpus']}/{split}" if has_split_dirs(MIDI["corpus"]) else MIDI["corpus"]


@functools.cache
def midi_user_corpus():
    """The user's MIDI directory split into train/val, walked once per Snakemake run."""
    return user_corpus_files(MIDI["corpus"], MIDI["val_percent"])


def midi_names(split):
    if split == "heldout" and not MIDI["heldout"]["composers"]:
        return []
    if MIDI["corpus"] == "bach" or split == "heldout":
        return sorted(p.name for p in Path(midi_source_dir(split)).glob("*.mid"))
    return midi_user_corpus()[split]


def midi_token_files(split):
    return [f"results/midi/tokens/{split}/{name}.json" for name in midi_names(split)]


def midi_spec(*sections):
    """The ``midi`` sections a command needs (default: midi-train's), as canonical JSON: the one
    ``--spec`` argument of a MIDI job, and a param (a change reruns it)."""
    return canonical_json({key: MIDI[key] for key in sections or ("train", "model", "read")})


# Music-driven datasets (kind midi_render) and the pitch matrix (rules/music.smk).


#: The matrix rules rerun when the code that trains (MATRIX_TRAIN_CODE) or trains and scores
#: (MATRIX_CODE) their models changes.
MATRIX_TRAIN_CODE = code_hash("matrix_train")
MATRIX_CODE = code_hash("matrix")
MATRIX = section_settings(config, "music_matrix")
MATRIX_MODELS = list(MATRIX["models"])


wildcard_constraints:
    matrix_model="|".join(MATRIX_MODELS) or "-",


def corpus_settings(dataset):
    """A music dataset's settings with its kind's schema defaults (corpus, split, val_percent)."""
    return kind_settings(config["datasets"][dataset])


def music_notes_input(dataset):
    """generate_shard's extra input: a corpus kind's notes.npz (nothing for the others)."""
    if not dataset_kind(dataset).corpus:
        return []
    return [os.path.join(DATASET_DIR.format(dataset=dataset), NOTES_FILE)]


def music_corpus_dir(wildcards):
    corpus = corpus_settings(wildcards.dataset)["corpus"]
    return rules.midi_export_corpus.output[0] if corpus == "bach" else corpus


def matrix_dataset_dirs(names):
    return [named_dataset(name, "music_matrix") for name in names]


def mixture_spec(mixture, training=False):
    """The mixture trainer's ``--spec`` (music-matrix-train/-evaluate) of a recipe (the
    ``music_matrix`` or ``pitch_release`` section), as canonical JSON. ``training``: only what
    decides the weights (the datasets are the rule's inputs), so that a decoding or evaluation
    change retrains nothing."""
    pitch = config.get("pitch_model", {})
    if training:
        pitch = {key: pitch[key] for key in ("model", "train") if key in pitch}
        mixture = {key: mixture[key] for key in ("train_windows", "model", "train")}
    return canonical_json({"audio": FULL_CONFIG["audio"], "bins": FULL_CONFIG["bins"],
                           "pitch_model": pitch, "mixture": mixture})


MATRIX_SPEC = mixture_spec(MATRIX)
MATRIX_TRAIN_SPEC = mixture_spec(MATRIX, training=True)
MATRIX_EVAL_NAMES = list(MATRIX["eval"])


def matrix_eval_dirs(wildcards=None):
    return matrix_dataset_dirs(MATRIX["eval"].values())


def meta_files(dataset_dirs):
    return [os.path.join(d, "meta.json") for d in dataset_dirs]


# Pitch model (rules/pitch.smk): the `pitch_model:` section with its defaults.

PITCH = pitch_settings(config)


def named_dataset(name, section):
    """Directory of dataset ``name``, which config section ``section`` names (an error if absent)."""
    if name not in config["datasets"]:
        raise WorkflowError(f"{section} names dataset {name!r}, which config.datasets lacks")
    return DATASET_DIR.format(dataset=name)


def pitch_dataset(name):
    return named_dataset(name, "pitch_model")


def pitch_spec(*sections):
    """The settings a pitch command needs, as JSON (a Snakemake param: a change reruns)."""
    return canonical_json({"audio": PITCH["audio"], "bins": PITCH["bins"],
                           "labels": PITCH["labels"],
                           "pitch_model": {s: PITCH[s] for s in sections}})


PITCH_TRAIN_DIR = pitch_dataset(PITCH["train"]["dataset"])
PITCH_VAL_DIR = pitch_dataset(PITCH["train"]["val_dataset"]) if PITCH["train"]["val_dataset"] else None
PITCH_SINGLE_DIR = pitch_dataset(PITCH["evaluate"]["single_note_dataset"])
PITCH_POLY_DIR = pitch_dataset(PITCH["evaluate"]["polyphonic_dataset"])


# The released pitch model (rules/release.smk): the `pitch_release:` section with its defaults.

RELEASE = section_settings(config, "pitch_release")
#: The mixture trainer's spec (music-matrix-train/-evaluate), with the release's recipe.
RELEASE_SPEC = mixture_spec(RELEASE)
RELEASE_TRAIN_SPEC = mixture_spec(RELEASE, training=True)
#: The released model's training settings: pitch_model.train under pitch_release.train.
RELEASE_TRAIN = {**PITCH["train"], **RELEASE["train"]}
RELEASE_DIR = "results/release/pitch"
RELEASE_PACKAGE_DIR = "src/notewise/pitch/release"


def release_dataset_dirs(names):
    return [named_dataset(name, "pitch_release") for name in names]


# Real-instrument evaluation (rules/real_eval.smk): the `real_eval:` section with its defaults.

from notewise.pitch.real_eval import (check_held_out, clip_names, held_out_soundfont,
                                      real_eval_settings, skip_message)

REAL_EVAL = real_eval_settings(config)
check_held_out(config)
REAL_EVAL_SOUNDFONT = held_out_soundfont(REAL_EVAL)
REAL_EVAL_CLIPS = clip_names(REAL_EVAL)
REAL_EVAL_CHECKPOINT = REAL_EVAL["checkpoint"] or "results/models/pitch/model.pth"
#: The evaluation's audio is rerendered when the renderer's or the evaluation's code changes.
REAL_EVAL_CODE = code_hash("real_eval")
REAL_EVAL_SCORE_CODE = code_hash("real_eval_score")
#: ``notewise predict`` (the evaluation's transcriptions) reruns when the pitch package changes.
PREDICT_CODE = code_hash("predict")
if REAL_EVAL_SOUNDFONT is None:
    print(skip_message(), file=sys.stderr)


def real_eval_corpus_dir(wildcards):
    corpus = REAL_EVAL["corpus"]
    return rules.midi_export_corpus.output[0] if corpus == "bach" else corpus


def real_eval_training_notes(wildcards):
    """notes.npz of every music dataset a model trains on (the render step checks them)."""
    from notewise.pitch.real_eval import training_datasets

    return [os.path.join(DATASET_DIR.format(dataset=name), NOTES_FILE)
            for name in training_datasets(config)
            if name in config["datasets"] and dataset_kind(name).corpus]
