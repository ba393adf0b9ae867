"""Settings, config checks and validation rules of the music kinds (``midi_render``,
``soundfont_render``): what ``notewise.kinds`` names for them. No Numba, no torch: the config
check and shard validation import this, never the renderers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from notewise.config import ConfigError, check_pair, check_timbre_ids, kind_settings
from notewise.store.layout import OPTIONAL_NOTE_DTYPES


#: |deviation| slack of the validation's equal-temperament check, cents (float32 round-off).
CENTS_TOLERANCE = 0.05


def enabled(augment: dict, name: str) -> bool:
    """Whether augmentation ``name`` is switched on in a dataset's ``augment`` settings."""
    return bool(augment.get(name, {}).get("enabled", False))


def check_midi_render(ds: dict, key: str, full: dict) -> None:
    """Config checks of a midi_render dataset: timbre ids exist, ranges are ordered."""
    settings = kind_settings(ds)
    ids = settings["timbres"]
    mapped = [int(t) for t in settings["program_timbres"].values()]
    check_timbre_ids(mapped if ids == "all" else list(ids) + mapped, f"{key}.timbres",
                     full["timbres"]["count"])
    for name, pair in (("gain", "db"), ("noise", "snr_db"), ("vibrato", "rate_hz"),
                       ("vibrato", "depth_cents"), ("room", "rt60_s"), ("room", "drr_db")):
        check_pair(list(settings["augment"][name][pair]), f"{key}.augment.{name}.{pair}")


def _deviation_bounds(augment: dict) -> tuple[float, float]:
    """(largest |detune| + vibrato mean shift, largest vibrato depth) the settings allow, cents."""
    detune = augment["detune"]["cents"] if enabled(augment, "detune") else 0.0
    depth = augment["vibrato"]["depth_cents"][1] if enabled(augment, "vibrato") else 0.0
    return detune + depth, depth


def midi_render_shard(members: dict, classes, per_window, spec: dict) -> str | None:
    """What validation checks beyond the common rules for a midi_render shard; the failure, or
    None. Polyphony comes from the music (no cap to check). Labelled frequencies must be MIDI pitches moved by the recorded deviation, and the
    deviation and vibrato depth within what the augmentations can produce."""
    missing = [k for k in OPTIONAL_NOTE_DTYPES if k not in members]
    if missing:
        return f"midi_render note table lacks {missing}"
    deviation = members["note_detune_cents"].astype(np.float64)
    depth = members["note_vibrato_cents"].astype(np.float64)
    if not len(deviation):
        return None
    max_deviation, max_depth = _deviation_bounds(kind_settings(spec["settings"])["augment"])
    if np.abs(deviation).max() > max_deviation + CENTS_TOLERANCE:
        return (f"a note deviates {np.abs(deviation).max():.3f} cents from its MIDI pitch, the"
                f" augmentations allow {max_deviation}")
    cents = 1200.0 * np.log2(members["note_freq"].astype(np.float64) / 440.0) - deviation
    off_grid = np.abs(cents - 100.0 * np.round(cents / 100.0))
    if off_grid.max() > CENTS_TOLERANCE:
        return (f"note_freq minus note_detune_cents is {off_grid.max():.3f} cents off the MIDI"
                " pitch grid")
    if depth.min() < 0 or depth.max() > max_depth:
        return f"note_vibrato_cents outside [0, {max_depth}] (the configured vibrato depth)"
    return None


#: ``soundfont: default``: the General MIDI SoundFont the ``pretty_midi`` wheel ships.
DEFAULT_SOUNDFONT = "default"


class SoundFontError(ValueError):
    """A SoundFont file is missing, unreadable or lacks a program; the message names the file."""


def default_soundfont_path() -> Path:
    import pretty_midi

    return Path(pretty_midi.__file__).resolve().parent / "TimGM6mb.sf2"


def soundfont_path(name: str) -> Path:
    """``"default"`` -> pretty_midi's TimGM6mb.sf2; anything else is a path."""
    return default_soundfont_path() if name == DEFAULT_SOUNDFONT else Path(name)


def check_soundfont_file(path) -> None:
    """Cheap checks, for config time: the file exists, is readable and is a RIFF ``sfbk``
    (SF2/SF3) file. Raises :class:`SoundFontError` naming it."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError as err:
        raise SoundFontError(f"SoundFont {path}: cannot be read ({err.strerror or err})") from err
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise SoundFontError(f"SoundFont {path}: not an SF2/SF3 file (no RIFF sfbk header)")


def check_soundfont_render(ds: dict, key: str, full: dict) -> None:
    """Config checks of a soundfont_render dataset: the SoundFont file exists and is an SF2/SF3
    file (before any job runs)."""
    settings = kind_settings(ds)
    try:
        check_soundfont_file(soundfont_path(settings["soundfont"]))
    except SoundFontError as err:
        raise ConfigError(f"config key '{key}.soundfont': {err}") from err


def soundfont_render_shard(members: dict, classes, per_window, spec: dict) -> str | None:
    """What validation checks beyond the common rules for a soundfont_render shard; the failure,
    or None (polyphony comes from the music): labelled frequencies are equal-tempered MIDI pitches and every note's program is
    one of the configured ``programs``."""
    freqs = members["note_freq"].astype(np.float64)
    if not len(freqs):
        return None
    cents = 1200.0 * np.log2(freqs / 440.0)
    off_grid = np.abs(cents - 100.0 * np.round(cents / 100.0))
    if off_grid.max() > CENTS_TOLERANCE:
        return f"note_freq is {off_grid.max():.3f} cents off the MIDI pitch grid"
    programs = set(int(p) for p in kind_settings(spec["settings"])["programs"])
    bad = sorted(set(members["note_timbre"].astype(int).tolist()) - programs)
    if bad:
        return f"note_timbre (GM program) {bad} not among the configured programs"
    return None
