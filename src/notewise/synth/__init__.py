"""Torch-free generation of pitch windows (Numba): bins, counter RNG, timbres, the oscillator,
labels, note samplers, chords, window arrays and the generator of the sampler kinds.

Importing the package imports nothing; import the submodules you need.
"""
