# Training-data shards: one job per shard, per-shard validation, then the dataset's meta.json.
# A shard is rebuilt only when its params change: its dataset's generation spec and sample range
# (shard_spec) or the source of the package folders its kind names (dataset_code_hash,
# notewise.kinds). Raising num_samples therefore adds
# shards (and rebuilds the last partial one) without touching the others.


rule generate_shard:
    input:
        timbres=TIMBRES,
        notes=lambda wc: music_notes_input(wc.dataset),  # midi_render only (rules/music.smk)
    output:
        waveforms="results/datasets/{dataset}/waveforms/shard_{shard}.npy",
        targets="results/datasets/{dataset}/targets/shard_{shard}.npz",
    params:
        spec=shard_spec,
        code=dataset_code_hash,
        build=dataset_build_id,
    log:
        "results/logs/generate_shard/{dataset}/{shard}.log",
    benchmark:
        "results/benchmarks/generate_shard/{dataset}/{shard}.tsv"
    group:
        "shards"
    resources:
        mem_mb=shard_mem_mb,
        runtime=shard_runtime,
        **PARTITION,
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise generate-shard --spec {params.spec:q} --timbres {input.timbres}"
        " --waveforms {output.waveforms} --targets {output.targets} --build-id {params.build}"
        " 2> {log}"


rule validate_shard:
    input:
        waveforms=rules.generate_shard.output.waveforms,
        targets=rules.generate_shard.output.targets,
    output:
        "results/datasets/{dataset}/validation/shard_{shard}.json",
    params:
        spec=dataset_spec,
        code=dataset_code_hash,
    log:
        "results/logs/validate_shard/{dataset}/{shard}.log",
    benchmark:
        "results/benchmarks/validate_shard/{dataset}/{shard}.tsv"
    group:
        "shards"
    resources:
        mem_mb=shard_mem_mb,
        runtime=shard_runtime,
        **PARTITION,
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise validate-shard --spec {params.spec:q} --waveforms {input.waveforms}"
        " --targets {input.targets} -o {output} 2> {log}"


rule validate_dataset:
    input:
        lambda wc: dataset_files(rules.validate_shard.output[0], wc.dataset),
    output:
        report(
            "results/datasets/{dataset}/validation.json",
            caption="../workflow/report/dataset_validation.rst",
            category="Training data",
            subcategory="Validation",
            labels={"dataset": "{dataset}"},
        ),
    params:
        spec=dataset_spec,
        code=dataset_code_hash,
    log:
        "results/logs/validate_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/validate_dataset/{dataset}.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise validate-dataset --spec {params.spec:q} --reports {input} -o {output} 2> {log}"


rule dataset_meta:
    input:
        validation=rules.validate_dataset.output[0],
    output:
        "results/datasets/{dataset}/meta.json",
    params:
        spec=dataset_spec,
        code=dataset_code_hash,
        build=dataset_build_id,
    log:
        "results/logs/dataset_meta/{dataset}.log",
    benchmark:
        "results/benchmarks/dataset_meta/{dataset}.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise assemble-meta --spec {params.spec:q} --validation {input.validation}"
        " --code-hash {params.code} --build-id {params.build} -o {output} 2> {log}"


rule datasets:
    input:
        expand(rules.dataset_meta.output[0], dataset=DATASETS),


for _name in DATASETS:

    rule:
        name:
            f"{_name}_shards"
        input:
            f"results/datasets/{_name}/meta.json",

    rule:
        name:
            f"{_name}_check"
        input:
            f"results/datasets/{_name}/meta.json",
        log:
            f"results/logs/check_dataset/{_name}.log",
        localrule: True
        conda:
            "../envs/notewise.yaml"
        shell:
            # every damaged shard is listed on the terminal, not only in the log
            "notewise check-dataset $(dirname {input}) > {log} 2>&1 || (tail -n 20 {log} >&2; exit 1)"
