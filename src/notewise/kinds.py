"""The dataset kinds: one entry per kind, everything the rest of notewise asks of a kind.

An entry (:class:`Kind`) names

* ``generator``: ``"module:function"`` of ``generator(spec, samples, timbres, *, out=None)
  -> ShardData`` (samples ``samples`` of the dataset the generation spec describes; imported
  only when windows are made, so that checking and validating never import Numba);
* ``check``: the config check ``check(ds, key, full)`` (settings with defaults, ``datasets.NAME``,
  the whole config with defaults; raises ``ConfigError`` naming the key);
* ``shard_notes`` and ``distributions``: the validation rules beyond the ones every kind shares,
  per shard ``(notes, classes, per_window, spec)`` and per dataset ``(summary, settings)``, each
  returning what is wrong or None;
* ``code``: the package folders (under ``src/notewise``) whose source decides the bytes of the
  kind's shards: their hash is the shard rules' code param and part of the build id;
* ``corpus``: whether the windows come from a corpus' ``notes.npz`` (rule ``music_notes``);
* ``size``: ``size(ds, full)``, the number of samples, for kinds without ``num_samples``.

Adding a kind: its module(s), its schema ``$defs`` entry and one entry here
(``docs/architecture.md``).
"""
from __future__ import annotations

import importlib
from typing import Callable, NamedTuple

from notewise.music import checks as music
from notewise.synth import checks as synth


class Kind(NamedTuple):
    name: str
    generator: str
    check: Callable
    shard_notes: Callable
    distributions: Callable
    code: tuple[str, ...]
    corpus: bool = False
    size: Callable | None = None

    def generate(self) -> Callable:
        """The generator function (imports its module)."""
        module, function = self.generator.split(":")
        return getattr(importlib.import_module(module), function)

    def num_samples(self, ds: dict, full: dict) -> int:
        return ds["num_samples"] if self.size is None else self.size(ds, full)


#: What every synthesised kind's bytes depend on: the synthesis and the shard format.
SYNTH_CODE = ("synth", "store")
#: ... and for the music kinds the renderers of ``notewise.music``.
MUSIC_CODE = ("synth", "store", "music")

KINDS = {kind.name: kind for kind in (
    Kind("single_note", "notewise.synth.generate:single_note_windows", synth.check_single_note,
         synth.single_note_shard, synth.single_note_distributions, SYNTH_CODE,
         size=synth.single_note_size),
    Kind("random_polyphony", "notewise.synth.generate:random_polyphony_windows",
         synth.check_random_polyphony, synth.random_polyphony_shard,
         synth.random_polyphony_distributions, SYNTH_CODE),
    Kind("midi_render", "notewise.music.render:generate_music_samples", music.check_midi_render,
         music.midi_render_shard, synth.no_distribution_rule, MUSIC_CODE, corpus=True),
    Kind("soundfont_render", "notewise.music.soundfont:generate_soundfont_samples",
         music.check_soundfont_render, music.soundfont_render_shard, synth.no_distribution_rule,
         MUSIC_CODE, corpus=True),
)}


def kind(name: str) -> Kind:
    """The entry of dataset kind ``name`` (a ValueError naming the known ones if none)."""
    if name not in KINDS:
        raise ValueError(f"unknown dataset kind {name!r}; known: {sorted(KINDS)}")
    return KINDS[name]
