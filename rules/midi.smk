# MIDI language model: corpus -> per-file JSON token cache -> train -> evaluate -> plots -> a
# generated sample. Target: midi_lm. Settings: the `midi:` section of config.yaml.
#
# One midi_tokenize job per MIDI file, so a cache is rebuilt only when its MIDI file (or the
# vocabulary) changes. Training writes its resumable checkpoint to MIDI_CKPT, which is not a
# declared output (Snakemake deletes outputs before a job runs): an interrupted or extended
# (more epochs) training job resumes; changed settings or data start it over.

from pathlib import Path

from notewise.midi.cache import MIDI_SUFFIXES
from notewise.midi.corpus import split_of

MIDI = config["midi"]  # defaults filled in by the schema (workflow/schemas/config.schema.yaml)
MIDI_CORPUS = MIDI["corpus"]
MIDI_SPLITS = ("train", "val")
MIDI_RESULTS = "results/midi"
MIDI_MODEL = "results/models/midi"
MIDI_CKPT = MIDI_MODEL + "/checkpoint"
MIDI_VOCAB = MIDI_RESULTS + "/vocab.json"


wildcard_constraints:
    midi_split="train|val",


def midi_user_corpus():
    """{split: [relative paths]} of a user's MIDI directory (see the schema's midi.corpus)."""
    root = Path(MIDI_CORPUS)
    if not root.is_dir():
        raise WorkflowError(f"midi.corpus: {MIDI_CORPUS!r} is neither 'bach' nor a directory")
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                   if p.is_file() and p.suffix.lower() in MIDI_SUFFIXES)
    if (root / "train").is_dir() and (root / "val").is_dir():
        return {s: [f[len(s) + 1:] for f in files if f.startswith(s + "/")] for s in MIDI_SPLITS}
    return {s: [f for f in files if split_of(f, MIDI["val_percent"]) == s] for s in MIDI_SPLITS}


def midi_source_dir(split):
    """Directory holding the MIDI files of ``split`` (waits for the export of the Bach corpus)."""
    if MIDI_CORPUS == "bach":
        return f"{checkpoints.midi_export_corpus.get().output[0]}/{split}"
    root = Path(MIDI_CORPUS)
    return str(root / split) if (root / "train").is_dir() and (root / "val").is_dir() else str(root)


def midi_names(split):
    if MIDI_CORPUS == "bach":
        return sorted(p.name for p in Path(midi_source_dir(split)).glob("*.mid"))
    return midi_user_corpus()[split]


def midi_token_files(split):
    return [f"{MIDI_RESULTS}/tokens/{split}/{name}.json" for name in midi_names(split)]


checkpoint midi_export_corpus:
    output:
        directory(MIDI_RESULTS + "/corpus"),
    params:
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


rule midi_vocab:
    output:
        MIDI_VOCAB,
    params:
        tok=MIDI["tokenizer"],
        sustain="" if MIDI["tokenizer"]["sustain"] else "--no-sustain",
    log:
        "results/logs/midi_vocab/all.log",
    benchmark:
        "results/benchmarks/midi_vocab/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise midi-vocab {output} --steps-per-beat {params.tok[steps_per_beat]}"
        " --max-duration-beats {params.tok[max_duration_beats]}"
        " --velocity-bins {params.tok[velocity_bins]} --tempo-bins {params.tok[tempo_bins]}"
        " --drums {params.tok[drums]} {params.sustain} > {log} 2>&1"


rule midi_tokenize:
    input:
        midi=lambda wc: f"{midi_source_dir(wc.midi_split)}/{wc.name}",
        vocab=MIDI_VOCAB,
    output:
        MIDI_RESULTS + "/tokens/{midi_split}/{name}.json",
    params:
        read=MIDI["read"],
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
        " --timeout {params.read[timeout]} --max-bytes {params.read[max_bytes]} > {log:q} 2>&1"


def midi_train_options():
    train, model = MIDI["train"], MIDI["model"]
    options = [
        f"-m {train['min_sequence_length']}", f"-e {train['max_sequence_length']}",
        f"-b {train['max_batch_size']}", f"-l {train['lr']}", f"-w {train['weight_decay']}",
        f"--warmup-steps {train['warmup_steps']}", f"--seed {train['seed']}",
        f"--amp {train['amp']}", f"--d-model {model['d_model']}", f"--layers {model['layers']}",
        f"--heads {model['heads']}", f"--context {model['context']}",
        f"--dropout {model['dropout']}",
    ]
    return " ".join(options + ([f"--device {train['device']}"] if train["device"] else []))


rule midi_train:
    input:
        train=lambda wc: midi_token_files("train"),
        val=lambda wc: midi_token_files("val"),
        vocab=MIDI_VOCAB,
    output:
        model=f"{MIDI_MODEL}/model.pth",
        metrics=f"{MIDI_MODEL}/metrics.json",
        model_config=f"{MIDI_MODEL}/model_config.json",
        vocab=f"{MIDI_MODEL}/vocab.json",
        data_summary=f"{MIDI_MODEL}/data_summary.json",
        metrics_plot=f"{MIDI_MODEL}/metrics.png",
    params:
        ckpt=MIDI_CKPT,
        model_dir=MIDI_MODEL,
        epochs=MIDI["train"]["epochs"],
        options=midi_train_options(),
        launcher=torchrun_launcher(MIDI["train"]["nproc"], 2),
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
        "{params.launcher} midi-train {params.epochs} {params.ckpt} -t {input.train:q} -v {input.val:q}"
        " --vocab {input.vocab} {params.options} --workers {threads} --no-progress"
        " --restart-on-change > {log} 2>&1"
        " && for f in model.pth metrics.json model_config.json vocab.json data_summary.json"
        " metrics.png; do cp {params.ckpt}/$f {params.model_dir}/$f; done"


rule midi_evaluate:
    input:
        model=f"{MIDI_MODEL}/model.pth",
        val=lambda wc: midi_token_files("val"),
    output:
        report(MIDI_RESULTS + "/eval.json", caption="../workflow/report/midi_eval.rst",
               category="MIDI language model"),
    params:
        model_dir=MIDI_MODEL,
        budget=MIDI["train"]["max_batch_size"],
    log:
        "results/logs/midi_evaluate/all.log",
    benchmark:
        "results/benchmarks/midi_evaluate/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise midi-evaluate {params.model_dir} -v {input.val:q} -o {output} -b {params.budget}"
        " > {log} 2>&1"


rule midi_plot:
    input:
        f"{MIDI_MODEL}/metrics.json",
    output:
        report("results/plots/midi_training.png", caption="../workflow/report/midi_training.rst",
               category="MIDI language model"),
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
        model=f"{MIDI_MODEL}/model.pth",
    output:
        report(MIDI_RESULTS + "/samples/sample.mid", caption="../workflow/report/midi_sample.rst",
               category="MIDI language model"),
    params:
        model_dir=MIDI_MODEL,
        gen=MIDI["generate"],
    log:
        "results/logs/midi_generate/all.log",
    benchmark:
        "results/benchmarks/midi_generate/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise midi-generate {params.model_dir} {output} --tokens {params.gen[tokens]}"
        " --temperature {params.gen[temperature]} --top-p {params.gen[top_p]}"
        " --seed {params.gen[seed]}"
        " > {log} 2>&1"


rule midi_pianoroll:
    input:
        midi=rules.midi_generate.output[0],
        vocab=MIDI_VOCAB,
    output:
        report("results/plots/midi_sample.png", caption="../workflow/report/midi_sample_roll.rst",
               category="MIDI language model"),
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
