"""The polyphonic pitch model: ``[B, 1, 4096]`` windows -> per-bin confidence and energy.

Modules: ``model`` (architecture, and why), ``loss``, ``decode`` (notes from the maps),
``train`` (the harness task), ``evaluate``, ``plots``, ``predict`` (WAV -> CSV), ``inference``
(batched prediction), ``settings`` (the ``pitch_model`` config section), ``commands`` (CLI).
Importing the package imports no torch; its modules do.
"""
