"""Pitch training-data generation: bins, counter RNG, timbres, synthesis, labels, samplers.

The generation path never imports torch; import the submodules you need directly.
"""
