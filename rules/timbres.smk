# The timbre library every synthesised note draws from, and its plot for the report.


rule timbre_library:
    output:
        TIMBRES,
    params:
        n_timbres=FULL_CONFIG["timbres"]["count"],
        max_partials=FULL_CONFIG["timbres"]["max_partials"],
        seed=FULL_CONFIG["timbres"]["seed"],
        code=TIMBRE_HASH,
    log:
        "results/logs/timbre_library.log",
    benchmark:
        "results/benchmarks/timbre_library/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise build-timbres --count {params.n_timbres} --max-partials {params.max_partials}"
        " --seed {params.seed} -o {output} 2> {log}"


rule timbre_plot:
    input:
        TIMBRES,
    output:
        report(
            "results/timbres/timbres.png",
            caption="../workflow/report/timbres.rst",
            category="Training data",
        ),
    params:
        code=TIMBRE_HASH,
    log:
        "results/logs/timbre_plot.log",
    benchmark:
        "results/benchmarks/timbre_plot/all.tsv"
    conda:
        "../envs/notewise.yaml"
    shell:
        "notewise plot-timbres {input} -o {output} 2> {log}"
