# The released pitch model (docs/pitch_model.md, "The released model"): trained from nothing by
#
#   snakemake -j2 pitch_release --configfile configs/release.yaml
#
# and not part of `all`. Settings: the `pitch_release:` section (datasets of the mixture, window
# budget, model and training overrides, evaluation sets). The last rule copies the checkpoint and
# its metrics into the package (src/notewise/pitch/release/), where `notewise predict` finds it
# when no --checkpoint is given.


rule release_train:
    input:
        lambda wc: meta_files(release_dataset_dirs(RELEASE["datasets"])),
    output:
        model=f"{RELEASE_DIR}/model.pth",
        metrics=f"{RELEASE_DIR}/metrics.json",
        config=f"{RELEASE_DIR}/model_config.json",
    params:
        spec=RELEASE_TRAIN_SPEC,
        code=MATRIX_TRAIN_CODE,
        dirs=lambda wc: release_dataset_dirs(RELEASE["datasets"]),
        out=lambda wc, output: os.path.dirname(output.model),
        launcher=torchrun_launcher(RELEASE_TRAIN["nproc"], RELEASE_TRAIN["threads"]),
    threads: RELEASE_TRAIN["threads"]
    resources:
        **training_resources("release_train", RELEASE_TRAIN["device"], RELEASE_TRAIN["nproc"]),
    log:
        "results/logs/release_train/all.log",
    benchmark:
        "results/benchmarks/release_train/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "{params.launcher} music-matrix-train --spec {params.spec:q}"
        " --train {params.dirs} -o {params.out} 2> {log}"


rule release_score:
    input:
        model=rules.release_train.output.model,
        sets=lambda wc: meta_files(release_dataset_dirs(RELEASE["eval"].values())),
    output:
        report(f"{RELEASE_DIR}/scores.json", caption="../workflow/report/release_scores.rst",
               category="Released pitch model"),
    params:
        spec=RELEASE_SPEC,
        code=MATRIX_CODE,
        names=list(RELEASE["eval"]),
        dirs=lambda wc: release_dataset_dirs(RELEASE["eval"].values()),
    threads: 2
    log:
        "results/logs/release_score/all.log",
    benchmark:
        "results/benchmarks/release_score/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "OMP_NUM_THREADS={threads} notewise music-matrix-evaluate --spec {params.spec:q}"
        " --checkpoint {input.model} --names {params.names} --datasets {params.dirs}"
        " -o {output} 2> {log}"


rule release_evaluate:
    input:
        model=rules.release_train.output.model,
        config=rules.release_train.output.config,
        single=os.path.join(PITCH_SINGLE_DIR, "meta.json"),
        poly=os.path.join(PITCH_POLY_DIR, "meta.json"),
    output:
        summary=report(f"{RELEASE_DIR}/eval/summary.json",
                       caption="../workflow/report/release_summary.rst",
                       category="Released pitch model"),
    params:
        spec=pitch_spec("decode", "evaluate"),
        code=code_hash("evaluate"),
        single=lambda wc, input: os.path.dirname(input.single),
        poly=lambda wc, input: os.path.dirname(input.poly),
        out=lambda wc, output: os.path.dirname(output.summary),
    threads: 2
    log:
        "results/logs/release_evaluate/all.log",
    benchmark:
        "results/benchmarks/release_evaluate/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "OMP_NUM_THREADS={threads} notewise evaluate-pitch --spec {params.spec:q}"
        " --checkpoint {input.model} --single-note {params.single}"
        " --polyphonic {params.poly} -o {params.out} 2> {log}"


rule release_package:
    input:
        model=rules.release_train.output.model,
        config=rules.release_train.output.config,
        metrics=rules.release_train.output.metrics,
        scores=rules.release_score.output[0],
        summary=rules.release_evaluate.output.summary,
        real_eval=rules.real_eval_score.output.table if REAL_EVAL_SOUNDFONT else [],
        melody=rules.real_eval_score.output.melody if REAL_EVAL_SOUNDFONT else [],
    output:
        model=f"{RELEASE_PACKAGE_DIR}/model.pth",
        config=f"{RELEASE_PACKAGE_DIR}/model_config.json",
        evaluation=f"{RELEASE_PACKAGE_DIR}/evaluation.json",
    params:
        code=code_hash("release"),
        real_eval=lambda wc, input: (f"--real-eval {input.real_eval} --melody {input.melody}"
                                     if input.real_eval else ""),
        model_dir=lambda wc, input: os.path.dirname(input.model),
        out=lambda wc, output: os.path.dirname(output.model),
        recipe=canonical_json({"pitch_release": RELEASE, "pitch_model": config.get("pitch_model", {})}),
    log:
        "results/logs/release_package/all.log",
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise package-release --model-dir {params.model_dir} --scores {input.scores}"
        " --summary {input.summary} {params.real_eval} --recipe {params.recipe:q}"
        " -o {params.out} 2> {log}"


rule pitch_release:
    input:
        rules.release_package.output,
