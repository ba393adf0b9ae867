"""Reading datasets into torch: the shard reader, batch sampling and loading, the on-the-fly
dataset. The only part of the data side that imports torch.
"""
