"""Music-driven windows (kinds ``midi_render`` and ``soundfont_render``): the note corpus read
from MIDI, its rendering and augmentations, and the checks of these kinds (``checks``: no Numba).
"""
