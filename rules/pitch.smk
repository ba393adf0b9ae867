# Pitch model: train -> evaluate -> plots. Target: pitch_model. Settings: the `pitch_model:`
# section of config.yaml (defaults and meaning in workflow/schemas/config.schema.yaml).
#
# Training writes its resumable checkpoint to results/models/pitch/checkpoint, which is not a declared
# output (Snakemake deletes outputs before a job runs): an interrupted job resumes; changed
# settings start it over. Each rule gets only the settings it uses (params), so changing, say,
# the plots' settings redraws the plots without retraining; likewise each rule's `code` param
# hashes the source it depends on (notewise.pitch.stages.CODE).

# Helpers (pitch_spec, pitch_dataset and the PITCH_* dataset directories) live in rules/common.smk.


rule train_pitch:
    input:
        train=os.path.join(PITCH_TRAIN_DIR, "meta.json"),
        val=meta_files([PITCH_VAL_DIR] if PITCH_VAL_DIR else []),
    output:
        model="results/models/pitch/model.pth",
        metrics="results/models/pitch/metrics.json",
        config="results/models/pitch/model_config.json",
    params:
        spec=pitch_spec("model", "train"),
        code=code_hash("train"),
        launcher=torchrun_launcher(PITCH["train"]["nproc"], PITCH["train"]["threads"]),
        train_dir=lambda wc, input: os.path.dirname(input.train),
        out=lambda wc, output: os.path.dirname(output.model),
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
        "{params.launcher} train-pitch --spec {params.spec:q} --train {params.train_dir}"
        " {params.val} -o {params.out} --no-progress 2> {log}"


rule evaluate_pitch:
    input:
        model=rules.train_pitch.output.model,
        config=rules.train_pitch.output.config,
        single=os.path.join(PITCH_SINGLE_DIR, "meta.json"),
        poly=os.path.join(PITCH_POLY_DIR, "meta.json"),
    output:
        summary=report("results/eval/pitch/summary.json", caption="../workflow/report/pitch_summary.rst",
                       category="Pitch model", subcategory="Tables"),
        by_polyphony=report("results/eval/pitch/polyphonic_by_polyphony.csv",
                            caption="../workflow/report/pitch_by_polyphony_table.rst",
                            category="Pitch model", subcategory="Tables"),
        by_class=report("results/eval/pitch/polyphonic_by_class.csv",
                        caption="../workflow/report/pitch_by_class_table.rst",
                        category="Pitch model", subcategory="Tables"),
        position=report("results/eval/pitch/window_position.csv",
                        caption="../workflow/report/pitch_position_table.rst",
                        category="Pitch model", subcategory="Tables"),
        by_octave=report("results/eval/pitch/single_note_by_octave.csv",
                         caption="../workflow/report/pitch_octave_table.rst",
                         category="Pitch model", subcategory="Tables"),
        predictions="results/eval/pitch/single_note_predictions.csv",
    params:
        spec=pitch_spec("decode", "evaluate"),
        code=code_hash("evaluate"),
        single=lambda wc, input: os.path.dirname(input.single),
        poly=lambda wc, input: os.path.dirname(input.poly),
        out=lambda wc, output: os.path.dirname(output.summary),
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
        " --checkpoint {input.model} --single-note {params.single}"
        " --polyphonic {params.poly} -o {params.out} 2> {log}"


rule plot_pitch:
    input:
        metrics=rules.train_pitch.output.metrics,
        model=rules.train_pitch.output.model,
        summary=rules.evaluate_pitch.output.summary,
        examples=os.path.join(PITCH_POLY_DIR, "meta.json"),
    output:
        report("results/plots/pitch/loss_curves.png", caption="../workflow/report/pitch_loss.rst",
               category="Pitch model", subcategory="Figures"),
        report("results/plots/pitch/f_measure_by_polyphony.png",
               caption="../workflow/report/pitch_polyphony.rst",
               category="Pitch model", subcategory="Figures"),
        report("results/plots/pitch/window_position.png",
               caption="../workflow/report/pitch_position.rst",
               category="Pitch model", subcategory="Figures"),
        report("results/plots/pitch/f0_scatter.png", caption="../workflow/report/pitch_scatter.rst",
               category="Pitch model", subcategory="Figures"),
        report("results/plots/pitch/example_windows.png",
               caption="../workflow/report/pitch_examples.rst",
               category="Pitch model", subcategory="Figures"),
    params:
        spec=pitch_spec("evaluate", "plots"),
        code=code_hash("plots"),
        eval_dir=lambda wc, input: os.path.dirname(input.summary),
        examples=lambda wc, input: os.path.dirname(input.examples),
        out=lambda wc, output: os.path.dirname(output[0]),
    log:
        "results/logs/plot_pitch/all.log",
    benchmark:
        "results/benchmarks/plot_pitch/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "OMP_NUM_THREADS=1 notewise plot-pitch --spec {params.spec:q} --metrics {input.metrics}"
        " --eval-dir {params.eval_dir} --checkpoint {input.model} --examples {params.examples}"
        " -o {params.out} 2> {log}"


rule pitch_model:
    input:
        rules.plot_pitch.output,
        rules.evaluate_pitch.output,
