"""What the Snakemake rules (``rules/common.smk``) call: the config's dataset specs and shard
plans, code hashes of package folders, cluster resources.
"""
