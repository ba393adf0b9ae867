# Music-driven pitch data (datasets of kind midi_render) and the pitch matrix.
#
# A midi_render dataset's note events are extracted once (music_notes) into
# results/datasets/<name>/notes.npz from its corpus ("bach": the MIDI rules' export; or a
# directory); its shards are then built, validated and described by the rules of datasets.smk,
# whose generate_shard takes the notes file through music_notes_input and the code hash of the
# kind's package folders through dataset_code_hash (rules/common.smk, notewise.kinds). Target for the matrix: pitch_matrix (models trained on random /
# music-driven / mixed data x evaluation sets; settings under music_matrix: in config.yaml).

# Helpers (music_notes_input, music_corpus_dir, matrix_dataset_dirs, ...) live in rules/common.smk.


rule music_notes:
    input:
        corpus=music_corpus_dir,
    output:
        "results/datasets/{dataset}/notes.npz",
    params:
        split=lambda wc: corpus_settings(wc.dataset)["split"],
        val_percent=lambda wc: corpus_settings(wc.dataset)["val_percent"],
        code=NOTES_HASH,
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


rule matrix_train:
    input:
        lambda wc: meta_files(matrix_dataset_dirs(MATRIX["models"][wc.matrix_model])),
    output:
        model="results/music/models/{matrix_model}/model.pth",
        metrics="results/music/models/{matrix_model}/metrics.json",
    params:
        spec=MATRIX_TRAIN_SPEC,
        code=MATRIX_TRAIN_CODE,
        dirs=lambda wc: matrix_dataset_dirs(MATRIX["models"][wc.matrix_model]),
        out=lambda wc, output: os.path.dirname(output.model),
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
        sets=lambda wc: meta_files(matrix_eval_dirs()),
    output:
        "results/music/eval/{matrix_model}.json",
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
        csv=report("results/music/pitch_matrix.csv",
                   caption="../workflow/report/music_matrix_table.rst",
                   category="Music-driven data"),
        figure=report("results/plots/music/pitch_matrix.png",
                      caption="../workflow/report/music_matrix.rst",
                      category="Music-driven data"),
    params:
        code=MATRIX_CODE,
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
