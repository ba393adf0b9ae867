"""The shard format: layout, ``.npz`` bytes, float16, shard and dataset writers, ``meta.json``,
validation and legacy V1 shards. Nothing here imports torch; only writing float16 imports Numba.
"""
