# Real-instrument evaluation (notewise.pitch.real_eval; docs/real_eval.md): held-out pieces (the
# corpus' val split, which no training set reads: checked when the config is read) rendered with
# a held-out SoundFont, scored with mir_eval.multipitch for `notewise predict` and basic-pitch.
# Target: real_eval (part of `all` where a held-out SoundFont is installed; else a message says
# why it is skipped). Helpers (REAL_EVAL, real_eval_* functions) live in rules/common.smk.


rule real_eval_notes:
    input:
        corpus=real_eval_corpus_dir,
    output:
        "results/real_eval/notes.npz",
    params:
        code=NOTES_HASH,
        split=REAL_EVAL["split"],
        val_percent=REAL_EVAL["val_percent"],
    log:
        "results/logs/real_eval_notes/all.log",
    benchmark:
        "results/benchmarks/real_eval_notes/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise music-notes {input.corpus:q} --split {params.split}"
        " --val-percent {params.val_percent} -o {output} 2> {log}"


rule real_eval_render:
    input:
        notes=rules.real_eval_notes.output[0],
        training=real_eval_training_notes,
    output:
        wavs=expand("results/real_eval/audio/{clip}.wav", clip=REAL_EVAL_CLIPS),
        refs=expand("results/real_eval/audio/{clip}.ref.txt", clip=REAL_EVAL_CLIPS),
        manifest="results/real_eval/audio/manifest.json",
    params:
        soundfont=str(REAL_EVAL_SOUNDFONT),
        settings=canonical_json(REAL_EVAL),
        code=REAL_EVAL_CODE,
        out=lambda wc, output: os.path.dirname(output.manifest),
    log:
        "results/logs/real_eval_render/all.log",
    benchmark:
        "results/benchmarks/real_eval_render/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise real-eval-render --notes {input.notes} --soundfont {params.soundfont:q}"
        " --settings {params.settings:q} --training-notes {input.training}"
        " -o {params.out} 2> {log}"


rule real_eval_predict:
    input:
        wav="results/real_eval/audio/{clip}.wav",
        model=REAL_EVAL_CHECKPOINT,
    output:
        "results/real_eval/notewise/{clip}.csv",
    params:
        stamp=PITCH["decode"]["stamp"],
        threshold=PITCH["decode"]["threshold"],
        refine=PITCH["decode"]["refine_cents"],
        code=PREDICT_CODE,
    threads: 1
    log:
        "results/logs/real_eval_predict/{clip}.log",
    benchmark:
        "results/benchmarks/real_eval_predict/{clip}.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "OMP_NUM_THREADS={threads} notewise predict {input.wav} --checkpoint {input.model}"
        " --stamp {params.stamp} --threshold {params.threshold} --refine-cents {params.refine}"
        " -o {output} 2> {log}"


rule real_eval_peer:
    input:
        rules.real_eval_render.output.wavs,
    output:
        directory("results/real_eval/basic_pitch"),
    threads: 2
    params:
        code=REAL_EVAL_CODE,
    log:
        "results/logs/real_eval_peer/all.log",
    benchmark:
        "results/benchmarks/real_eval_peer/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "OMP_NUM_THREADS={threads} notewise real-eval-peer {input} -o {output} 2> {log}"


rule real_eval_score:
    input:
        manifest=rules.real_eval_render.output.manifest,
        ours=expand(rules.real_eval_predict.output[0], clip=REAL_EVAL_CLIPS),
        peer=rules.real_eval_peer.output[0],
    output:
        table=report("results/real_eval/real_eval.csv", caption="../workflow/report/real_eval.rst",
                     category="Real instruments"),
        melody=report("results/real_eval/melody.csv",
                      caption="../workflow/report/real_eval_melody.rst",
                      category="Real instruments"),
    params:
        code=REAL_EVAL_SCORE_CODE,
        audio=lambda wc, input: os.path.dirname(input.manifest),
        ours=lambda wc, input: os.path.dirname(input.ours[0]),
    log:
        "results/logs/real_eval_score/all.log",
    benchmark:
        "results/benchmarks/real_eval_score/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise real-eval-score --audio-dir {params.audio} --ours {params.ours}"
        " --peer {input.peer} -o {output.table} --melody {output.melody} 2> {log}"


rule real_eval:
    input:
        rules.real_eval_score.output,
