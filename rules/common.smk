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
