# Music-driven pitch data (datasets of kind midi_render) and the pitch matrix.
#
# A midi_render dataset's note events are extracted once (music_notes) into
# results/datasets/<name>/notes.npz from its corpus ("bach": the MIDI rules' export; or a
# directory); its shards are then built, validated and described by the rules of datasets.smk,
# whose generate_shard takes the notes file and the music code hash through music_notes_input and
# music_code_hash below. Target for the matrix: pitch_matrix (models trained on random /
# music-driven / mixed data x evaluation sets; settings under music_matrix: in config.yaml).

from pathlib import Path

import notewise.pitch
from notewise.config import canonical_json, load_schema
from notewise.data.codehash import source_hash
from notewise.data.music import NOTES_FILE, music_settings
from notewise.pitch.settings import _fill as fill_defaults

MUSIC_HASH = source_hash(("music", "augment"))
#: The matrix rules rerun when the code that trains or scores their models changes.
MATRIX_CODE = source_hash(("matrix", "model", "loss", "train", "settings", "decode", "inference",
                           "evaluate"), directory=Path(notewise.pitch.__file__).parent)
MATRIX = fill_defaults(load_schema()["properties"]["music_matrix"], config.get("music_matrix", {}))
MATRIX_MODELS = list(MATRIX["models"])
MATRIX_RESULTS = "results/music"


wildcard_constraints:
    matrix_model="|".join(MATRIX_MODELS) or "-",


def is_music(dataset):
    return config["datasets"][dataset]["kind"] == "midi_render"


def music_notes_input(dataset):
    """generate_shard's extra input: a midi_render dataset's notes.npz (nothing for the others)."""
    return [DATASET_DIR.format(dataset=dataset) + "/" + NOTES_FILE] if is_music(dataset) else []


def music_code_hash(dataset):
    """A hash of the music generator's source for midi_render shards ('' for the others)."""
    return MUSIC_HASH if is_music(dataset) else ""


def music_corpus_dir(wildcards):
    corpus = music_settings(config["datasets"][wildcards.dataset])["corpus"]
    return rules.midi_export_corpus.output[0] if corpus == "bach" else corpus


rule music_notes:
    input:
        corpus=music_corpus_dir,
    output:
        DATASET_DIR + "/" + NOTES_FILE,
    params:
        split=lambda wc: music_settings(config["datasets"][wc.dataset])["split"],
        val_percent=lambda wc: music_settings(config["datasets"][wc.dataset])["val_percent"],
    threads: 2
    log:
        "results/logs/music_notes/{dataset}.log",
    benchmark:
        "results/benchmarks/music_notes/{dataset}.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise music-notes {input.corpus:q} --split {params.split}"
        " --val-percent {params.val_percent} --workers {threads} -o {output} 2> {log}"


def matrix_dataset_dirs(names):
    for name in names:
        if name not in config["datasets"]:
            raise WorkflowError(f"music_matrix names dataset {name!r}, which config.datasets lacks")
    return [DATASET_DIR.format(dataset=name) for name in names]


MATRIX_SPEC = canonical_json({"audio": FULL_CONFIG["audio"], "bins": FULL_CONFIG["bins"],
                              "pitch_model": config.get("pitch_model", {}),
                              "music_matrix": MATRIX})
MATRIX_EVAL_NAMES = list(MATRIX["eval"])


def matrix_eval_dirs(wildcards=None):
    return matrix_dataset_dirs(MATRIX["eval"].values())


rule matrix_train:
    input:
        lambda wc: [d + "/meta.json"
                    for d in matrix_dataset_dirs(MATRIX["models"][wc.matrix_model])],
    output:
        model=MATRIX_RESULTS + "/models/{matrix_model}/model.pth",
        metrics=MATRIX_RESULTS + "/models/{matrix_model}/metrics.json",
    params:
        spec=MATRIX_SPEC,
        code=MATRIX_CODE,
        dirs=lambda wc: matrix_dataset_dirs(MATRIX["models"][wc.matrix_model]),
        out=MATRIX_RESULTS + "/models/{matrix_model}",
    threads: 1
    log:
        "results/logs/matrix_train/{matrix_model}.log",
    benchmark:
        "results/benchmarks/matrix_train/{matrix_model}.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "OMP_NUM_THREADS={threads} notewise music-matrix-train --spec {params.spec:q}"
        " --train {params.dirs} -o {params.out} 2> {log}"


rule matrix_evaluate:
    input:
        model=rules.matrix_train.output.model,
        sets=lambda wc: [d + "/meta.json" for d in matrix_eval_dirs()],
    output:
        MATRIX_RESULTS + "/eval/{matrix_model}.json",
    params:
        spec=MATRIX_SPEC,
        code=MATRIX_CODE,
        names=MATRIX_EVAL_NAMES,
        dirs=matrix_eval_dirs,
    threads: 1
    log:
        "results/logs/matrix_evaluate/{matrix_model}.log",
    benchmark:
        "results/benchmarks/matrix_evaluate/{matrix_model}.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "OMP_NUM_THREADS={threads} notewise music-matrix-evaluate --spec {params.spec:q}"
        " --checkpoint {input.model} --names {params.names} --datasets {params.dirs}"
        " -o {output} 2> {log}"


rule matrix_table:
    input:
        expand(rules.matrix_evaluate.output[0], matrix_model=MATRIX_MODELS),
    output:
        csv=report(MATRIX_RESULTS + "/pitch_matrix.csv",
                   caption="../workflow/report/music_matrix_table.rst",
                   category="Music-driven data"),
        figure=report("results/plots/music/pitch_matrix.png",
                      caption="../workflow/report/music_matrix.rst",
                      category="Music-driven data"),
    params:
        names=MATRIX_MODELS,
    log:
        "results/logs/matrix_table/all.log",
    benchmark:
        "results/benchmarks/matrix_table/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise music-matrix --names {params.names} --results {input}"
        " --csv {output.csv} --figure {output.figure} 2> {log}"


rule pitch_matrix:
    input:
        rules.matrix_table.output,
