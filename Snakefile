# notewise: training data and models for music ML, as one reproducible DAG.
#
#   snakemake -j2 all                 the default demo, end to end
#   snakemake -j2 sanity_shards       single-note sanity set
#   snakemake -j2 pitch_model         train, evaluate and plot the pitch model
#   snakemake -j2 midi_lm             Bach corpus -> token caches -> MIDI LM -> a generated sample
#   snakemake -j2 pitch_matrix        models on random / music-driven / mixed data x eval sets
#   snakemake -j2 real_eval           held-out pieces, held-out SoundFont: ours vs basic-pitch
#   snakemake -j2 pitch_release --configfile configs/release.yaml   the shipped model (not in all)
#   snakemake -j 32 train_shards      random-polyphony training set (--configfile configs/full.yaml: 1M)
#   snakemake --report report.html    the report
#
# Where things are: docs/architecture.md. The synthesis kernel is src/notewise/synth/oscillator.py,
# the label math src/notewise/synth/labels.py, the shard format src/notewise/store/ (layout.py,
# shards.py), the dataset kinds src/notewise/kinds.py.

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/timbres.smk"
include: "rules/datasets.smk"
include: "rules/pitch.smk"
include: "rules/midi.smk"
include: "rules/music.smk"
include: "rules/real_eval.smk"
include: "rules/release.smk"


rule all:
    input:
        rules.datasets.input,
        rules.timbre_plot.output,
        rules.pitch_model.input,
        rules.midi_lm.input,
        rules.pitch_matrix.input,  # about 3 CPU-minutes of tiny models (config: music_matrix)
        rules.real_eval.input if REAL_EVAL_SOUNDFONT else [],  # a held-out SoundFont installed
    default_target: True
