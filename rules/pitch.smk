# Pitch model: train -> evaluate -> plots. Target: pitch_model. Settings: the `pitch_model:`
# section of config.yaml (defaults and meaning in workflow/schemas/config.schema.yaml).
#
# Training writes its resumable checkpoint to PITCH_MODEL/checkpoint, which is not a declared
# output (Snakemake deletes outputs before a job runs): an interrupted job resumes; changed
# settings start it over. Each rule gets only the settings it uses (params), so changing, say,
# the plots' settings redraws the plots without retraining; likewise each rule's `code` param
# hashes the source it depends on (notewise.pitch.settings.CODE).

from notewise.config import canonical_json
from notewise.pitch.settings import code_hash, pitch_settings

PITCH = pitch_settings(config)
PITCH_MODEL = "results/models/pitch"
PITCH_EVAL = "results/eval/pitch"
PITCH_PLOTS = "results/plots/pitch"


def pitch_dataset(name):
    """Directory of a dataset the pitch rules read (its meta.json is the rule's input)."""
    if name not in config["datasets"]:
        raise WorkflowError(f"pitch_model names dataset {name!r}, which config.datasets lacks")
    return DATASET_DIR.format(dataset=name)


def pitch_spec(*sections):
    """The settings a pitch command needs, as JSON (a Snakemake param: a change reruns)."""
    return canonical_json({"audio": PITCH["audio"], "bins": PITCH["bins"],
                           "labels": PITCH["labels"],
                           "pitch_model": {s: PITCH[s] for s in sections}})


def pitch_launcher(nproc, threads):
    """``notewise`` in one process, or under torchrun (DDP) in ``nproc``."""
    if nproc > 1:
        return f"torchrun --standalone --nproc-per-node {nproc} -m notewise"
    return f"OMP_NUM_THREADS={threads} notewise"


PITCH_TRAIN_DIR = pitch_dataset(PITCH["train"]["dataset"])
PITCH_VAL_DIR = pitch_dataset(PITCH["train"]["val_dataset"]) if PITCH["train"]["val_dataset"] else None
PITCH_SINGLE_DIR = pitch_dataset(PITCH["evaluate"]["single_note_dataset"])
PITCH_POLY_DIR = pitch_dataset(PITCH["evaluate"]["polyphonic_dataset"])


rule train_pitch:
    input:
        train=PITCH_TRAIN_DIR + "/meta.json",
        val=[PITCH_VAL_DIR + "/meta.json"] if PITCH_VAL_DIR else [],
    output:
        model=PITCH_MODEL + "/model.pth",
        metrics=PITCH_MODEL + "/metrics.json",
        config=PITCH_MODEL + "/model_config.json",
    params:
        spec=pitch_spec("model", "train"),
        code=code_hash("train"),
        launcher=pitch_launcher(PITCH["train"]["nproc"], PITCH["train"]["threads"]),
        val=f"--val {PITCH_VAL_DIR}" if PITCH_VAL_DIR else "",
    threads: PITCH["train"]["threads"]
    resources:
        **training_resources("train_pitch", PITCH["train"]["device"], PITCH["train"]["nproc"]),
    log:
        "results/logs/train_pitch/all.log",
    benchmark:
        "results/benchmarks/train_pitch/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "{params.launcher} train-pitch --spec {params.spec:q} --train {PITCH_TRAIN_DIR}"
        " {params.val} -o {PITCH_MODEL} --no-progress 2> {log}"


rule evaluate_pitch:
    input:
        model=rules.train_pitch.output.model,
        config=rules.train_pitch.output.config,
        single=PITCH_SINGLE_DIR + "/meta.json",
        poly=PITCH_POLY_DIR + "/meta.json",
    output:
        summary=report(PITCH_EVAL + "/summary.json", caption="../workflow/report/pitch_summary.rst",
                       category="Pitch model", subcategory="Tables"),
        by_polyphony=report(PITCH_EVAL + "/polyphonic_by_polyphony.csv",
                            caption="../workflow/report/pitch_by_polyphony_table.rst",
                            category="Pitch model", subcategory="Tables"),
        by_class=report(PITCH_EVAL + "/polyphonic_by_class.csv",
                        caption="../workflow/report/pitch_by_class_table.rst",
                        category="Pitch model", subcategory="Tables"),
        position=report(PITCH_EVAL + "/window_position.csv",
                        caption="../workflow/report/pitch_position_table.rst",
                        category="Pitch model", subcategory="Tables"),
        by_octave=report(PITCH_EVAL + "/single_note_by_octave.csv",
                         caption="../workflow/report/pitch_octave_table.rst",
                         category="Pitch model", subcategory="Tables"),
        predictions=PITCH_EVAL + "/single_note_predictions.csv",
    params:
        spec=pitch_spec("decode", "evaluate"),
        code=code_hash("evaluate"),
    threads: 2
    resources:
        **training_resources("evaluate_pitch", PITCH["evaluate"]["device"], 1),
    log:
        "results/logs/evaluate_pitch/all.log",
    benchmark:
        "results/benchmarks/evaluate_pitch/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "OMP_NUM_THREADS={threads} notewise evaluate-pitch --spec {params.spec:q}"
        " --checkpoint {input.model} --single-note {PITCH_SINGLE_DIR}"
        " --polyphonic {PITCH_POLY_DIR} -o {PITCH_EVAL} 2> {log}"


rule plot_pitch:
    input:
        metrics=rules.train_pitch.output.metrics,
        model=rules.train_pitch.output.model,
        summary=rules.evaluate_pitch.output.summary,
        examples=PITCH_POLY_DIR + "/meta.json",
    output:
        report(PITCH_PLOTS + "/loss_curves.png", caption="../workflow/report/pitch_loss.rst",
               category="Pitch model", subcategory="Figures"),
        report(PITCH_PLOTS + "/f_measure_by_polyphony.png",
               caption="../workflow/report/pitch_polyphony.rst",
               category="Pitch model", subcategory="Figures"),
        report(PITCH_PLOTS + "/window_position.png",
               caption="../workflow/report/pitch_position.rst",
               category="Pitch model", subcategory="Figures"),
        report(PITCH_PLOTS + "/f0_scatter.png", caption="../workflow/report/pitch_scatter.rst",
               category="Pitch model", subcategory="Figures"),
        report(PITCH_PLOTS + "/example_windows.png",
               caption="../workflow/report/pitch_examples.rst",
               category="Pitch model", subcategory="Figures"),
    params:
        spec=pitch_spec("evaluate", "plots"),
        code=code_hash("plots"),
    log:
        "results/logs/plot_pitch/all.log",
    benchmark:
        "results/benchmarks/plot_pitch/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "OMP_NUM_THREADS=1 notewise plot-pitch --spec {params.spec:q} --metrics {input.metrics}"
        " --eval-dir {PITCH_EVAL} --checkpoint {input.model} --examples {PITCH_POLY_DIR}"
        " -o {PITCH_PLOTS} 2> {log}"


rule pitch_model:
    input:
        rules.plot_pitch.output,
        rules.evaluate_pitch.output,
