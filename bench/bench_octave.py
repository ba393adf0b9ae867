"""How far below its key a SoundFont preset sounds: ``NoteRenderer.octave_below_db`` per program.

    .venv/bin/python bench/bench_octave.py [SOUNDFONT ...] [--programs 0 6 19 ...]

For each SoundFont (default: the training one, TimGM6mb, and every installed held-out
candidate) and program (default: the ``soundfont_render`` default programs, the real-instrument
evaluation's instruments, TimGM6mb's church organ and the drawbar organs), the loudest level of
the spectrum an octave below the key re the strongest partial at or above it, over keys 48, 60
and 72; a ``*`` marks a preset the renderer refuses (above ``OCTAVE_BELOW_DB``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from notewise.config import kind_settings
from notewise.music.checks import default_soundfont_path
from notewise.music.soundfont import OCTAVE_BELOW_DB, NoteRenderer
from notewise.pitch.real_eval import SOUNDFONT_CANDIDATES, real_eval_settings


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("soundfonts", nargs="*")
    parser.add_argument("--programs", nargs="*", type=int)
    args = parser.parse_args(argv)
    fonts = args.soundfonts or [default_soundfont_path()] + [
        p for p in SOUNDFONT_CANDIDATES if Path(p).exists()]
    programs = args.programs or sorted(
        set(kind_settings({"kind": "soundfont_render", "num_samples": 1})["programs"])
        | set(real_eval_settings({})["instruments"].values()) | {16, 17, 18, 19})
    for font in fonts:
        renderer = NoteRenderer(font, 16000)
        levels = {p: renderer.octave_below_db(p) for p in programs if renderer.has_program(p)}
        print(f"{Path(font).name}: " + "  ".join(
            f"{p}:{db:+.0f}{'*' if db > OCTAVE_BELOW_DB else ''}" for p, db in levels.items()))


if __name__ == "__main__":
    main()
