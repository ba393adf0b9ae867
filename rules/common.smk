# Helpers shared by the rules: config slices, shard plans and code hashes, all from notewise.

from notewise.config import canonical_json, check_config, generation_spec, shard_plan
from notewise.data.codehash import generator_code_hash, timbre_code_hash

FULL_CONFIG = check_config(config)
DATASETS = list(config["datasets"])
GENERATOR_HASH = generator_code_hash()
TIMBRE_HASH = timbre_code_hash()

DATASET_DIR = "results/datasets/{dataset}"
TIMBRES = "results/timbres/timbres.npz"


wildcard_constraints:
    dataset="|".join(DATASETS),
    shard=r"\d{5}",


def shard_ids(dataset):
    return [f"{i:05d}" for i in range(len(shard_plan(config, dataset)))]


def dataset_files(pattern, dataset):
    """``pattern`` (with {dataset} and {shard}) expanded over the shards of ``dataset``."""
    return expand(pattern, dataset=dataset, shard=shard_ids(dataset))


def shard_spec(wildcards):
    """What decides one shard's bytes: the dataset's generation spec and its sample range."""
    start, count = shard_plan(config, wildcards.dataset)[int(wildcards.shard)]
    return canonical_json({**generation_spec(config, wildcards.dataset), "start": start, "count": count})


def dataset_spec(wildcards):
    return canonical_json(generation_spec(config, wildcards.dataset))


# Cluster resources (the `compute:` config section, notewise.compute; docs/cluster.md).
# Shard jobs are sized by their sample count and form the group "shards", so that
# `--group-components shards=N` packs N shards into one cluster job. Cheap bookkeeping rules
# (seconds, little memory) run inside the main snakemake process, never as cluster jobs.

from notewise import compute as _compute

COMPUTE = _compute.compute_settings(config)
PARTITION = {"slurm_partition": COMPUTE["partition"]} if COMPUTE["partition"] else {}


def _shard_resource(name):
    def resource(wildcards):
        count = _compute.shard_count(config, wildcards.dataset, int(wildcards.shard))
        return _compute.shard_resources(COMPUTE, count)[name]

    return resource


shard_mem_mb = _shard_resource("mem_mb")
shard_runtime = _shard_resource("runtime")


def rule_resources(rule):
    """``mem_mb``, ``runtime`` (and the partition) of ``rule``: use as ``resources: **...``."""
    return {**_compute.rule_resources(COMPUTE, rule), **PARTITION}


def training_resources(rule, device, nproc):
    """As rule_resources, plus one GPU per process when the training device is CUDA."""
    return _compute.training_resources(COMPUTE, rule, device, nproc)


localrules:
    timbre_library,
    validate_dataset,
    dataset_meta,
    datasets,
    all,
    pitch_model,
    midi_lm,


torchrun_launcher = _compute.torchrun_launcher
