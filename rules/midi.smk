# MIDI language model: corpus -> per-file JSON token cache -> train -> evaluate -> plots -> a
# generated sample. Target: midi_lm. Settings: the `midi:` section of config.yaml.
#
# One midi_tokenize job per MIDI file, so a cache is rebuilt only when its MIDI file (or the
# vocabulary) changes. Training writes its resumable checkpoint to results/models/midi/checkpoint,
# which is not a declared output (Snakemake deletes outputs before a job runs): an interrupted or extended
# (more epochs) training job resumes; changed settings or data start it over.

# Helpers (midi_source_dir, midi_token_files, midi_spec) live in rules/common.smk.


checkpoint midi_export_corpus:
    output:
        directory("results/midi/corpus"),
    params:
        code=MIDI_CODE,
        limit=f"--limit {MIDI['corpus_limit']}" if MIDI["corpus_limit"] else "",
        val_percent=MIDI["val_percent"],
    threads: 2
    log:
        "results/logs/midi_export_corpus/all.log",
    benchmark:
        "results/benchmarks/midi_export_corpus/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise midi-export-corpus {output} --workers {threads}"
        " --val-percent {params.val_percent} {params.limit} > {log} 2>&1"


checkpoint midi_export_heldout:
    output:
        directory("results/midi/heldout"),
    params:
        code=MIDI_CODE,
        spec=midi_spec("heldout"),
    threads: 2
    log:
        "results/logs/midi_export_heldout/all.log",
    benchmark:
        "results/benchmarks/midi_export_heldout/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise midi-export-heldout {output} --workers {threads} --spec {params.spec:q}"
        " > {log} 2>&1"


rule midi_vocab:
    output:
        "results/midi/vocab.json",
    params:
        code=MIDI_CODE,
        spec=midi_spec("tokenizer"),
    log:
        "results/logs/midi_vocab/all.log",
    benchmark:
        "results/benchmarks/midi_vocab/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise midi-vocab {output} --spec {params.spec:q} > {log} 2>&1"


rule midi_tokenize:
    input:
        midi=lambda wc: f"{midi_source_dir(wc.midi_split)}/{wc.name}",
        vocab=rules.midi_vocab.output[0],
    output:
        "results/midi/tokens/{midi_split}/{name}.json",
    params:
        code=MIDI_CODE,
        spec=midi_spec("read"),
    log:
        "results/logs/midi_tokenize/{midi_split}/{name}.log",
    benchmark:
        "results/benchmarks/midi_tokenize/{midi_split}/{name}.tsv"
    group:
        "midi_tokens"
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise midi-tokenize {input.midi:q} {output:q} --vocab {input.vocab}"
        " --spec {params.spec:q} > {log:q} 2>&1"


rule midi_train:
    input:
        train=lambda wc: midi_token_files("train"),
        val=lambda wc: midi_token_files("val"),
        vocab=rules.midi_vocab.output[0],
    output:
        model="results/models/midi/model.pth",
        metrics="results/models/midi/metrics.json",
        model_config="results/models/midi/model_config.json",
        vocab="results/models/midi/vocab.json",
        data_summary="results/models/midi/data_summary.json",
        metrics_plot="results/models/midi/metrics.png",
    params:
        code=MIDI_CODE,
        ckpt=lambda wc, output: os.path.join(os.path.dirname(output.model), "checkpoint"),
        model_dir=lambda wc, output: os.path.dirname(output.model),
        spec=midi_spec(),
        # torch threads per process from the rule's threads (split between torchrun's processes)
        launcher=lambda wc, threads: torchrun_launcher(MIDI["train"]["nproc"], threads),
        torch_threads=lambda wc, threads: max(1, threads // MIDI["train"]["nproc"]),
    threads: 2
    resources:
        **training_resources("midi_train", MIDI["train"]["device"], MIDI["train"]["nproc"]),
    log:
        "results/logs/midi_train/all.log",
    benchmark:
        "results/benchmarks/midi_train/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        # OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep instead of spinning on shared cores
        "OMP_WAIT_POLICY=PASSIVE {params.launcher} midi-train {params.ckpt} --spec {params.spec:q}"
        " -t {input.train:q} -v {input.val:q} --vocab {input.vocab} --workers {threads}"
        " --threads {params.torch_threads} --no-progress --restart-on-change"
        " --export {params.model_dir} > {log} 2>&1"


rule midi_evaluate:
    input:
        model=rules.midi_train.output.model,
        val=lambda wc: midi_token_files("val"),
        heldout=lambda wc: midi_token_files("heldout"),
    output:
        report("results/midi/eval.json", caption="../workflow/report/midi_eval.rst",
               category="MIDI language model"),
    params:
        code=MIDI_CODE,
        model_dir=lambda wc, input: os.path.dirname(input.model),
        budget=MIDI["train"]["max_batch_size"],
        heldout=lambda wc, input: f"--heldout {' '.join(map(shlex.quote, input.heldout))}"
        if input.heldout else "",
    log:
        "results/logs/midi_evaluate/all.log",
    benchmark:
        "results/benchmarks/midi_evaluate/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise midi-evaluate {params.model_dir} -v {input.val:q} {params.heldout} -o {output}"
        " -b {params.budget}"
        " > {log} 2>&1"


rule midi_plot:
    input:
        "results/models/midi/metrics.json",
    output:
        report("results/plots/midi_training.png", caption="../workflow/report/midi_training.rst",
               category="MIDI language model"),
    params:
        code=MIDI_CODE,
    log:
        "results/logs/midi_plot/all.log",
    benchmark:
        "results/benchmarks/midi_plot/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise midi-plot {input} {output} > {log} 2>&1"


rule midi_generate:
    input:
        model=rules.midi_train.output.model,
    output:
        report("results/midi/samples/sample.mid", caption="../workflow/report/midi_sample.rst",
               category="MIDI language model"),
    params:
        code=MIDI_CODE,
        model_dir=lambda wc, input: os.path.dirname(input.model),
        spec=midi_spec("generate"),
    log:
        "results/logs/midi_generate/all.log",
    benchmark:
        "results/benchmarks/midi_generate/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise midi-generate {params.model_dir} {output} --spec {params.spec:q} > {log} 2>&1"


rule midi_pianoroll:
    input:
        midi=rules.midi_generate.output[0],
        vocab=rules.midi_vocab.output[0],
    output:
        report("results/plots/midi_sample.png", caption="../workflow/report/midi_sample_roll.rst",
               category="MIDI language model"),
    params:
        code=MIDI_CODE,
    log:
        "results/logs/midi_pianoroll/all.log",
    benchmark:
        "results/benchmarks/midi_pianoroll/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise midi-pianoroll {input.midi} {output} --vocab {input.vocab} > {log} 2>&1"


rule midi_lm:
    input:
        rules.midi_evaluate.output,
        rules.midi_plot.output,
        rules.midi_generate.output,
        rules.midi_pianoroll.output,
