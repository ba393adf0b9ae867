"""Window generation: sampler -> synthesis -> labels, for a range of sample indices.

``generate_range(spec, start, count, timbres)`` produces samples ``start .. start+count-1`` of the
dataset that the generation spec describes (``docs/architecture.md``). Every draw of sample ``i``
comes from the counter RNG keyed by ``(spec["seed"], spec["dataset"])`` at index ``i``, so the
rows are the same whatever range they are generated in (a shard, an on-the-fly batch, one row).
``generate_samples(spec, indices, timbres)`` takes any index array (what the on-the-fly dataset,
``notewise.loading.onthefly``, uses for shuffled batches).

The whole per-window path runs in one Numba call over the range (``_generate_windows``): draw the
notes, render and mix them, limit the peak, label them and write the target rows and the note
table. Python only unpacks the spec before and trims the note table after.

``write_generated_shard`` is what a shard job runs: a range generated and written a chunk at a
time (``CHUNK_ROWS`` windows: the float32 chunk stays in cache and is never held for the whole
shard; ``notewise.store.shards.ShardWriter`` streams it out).

``generate_single_note(bin_idx=...)`` is the design document's API: one sanity window as a dict of
``waveform`` [window], ``confs`` and ``energies`` [n_bins], all float32.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from numba import njit

from notewise import kinds
from notewise.config import fill_defaults, load_schema, section_defaults
from notewise.synth.chords import chord_params, chords_off
from notewise.synth.labels import label_window
from notewise.synth.rng import dataset_key
from notewise.synth.sampler import sample_random_polyphony, sample_single_note
from notewise.store.layout import NOTE_DTYPES
from notewise.store.shards import ShardWriter
from notewise.synth.oscillator import new_scratch, render_window
from notewise.synth.timbres import TimbreLibrary, build_timbre_library
from notewise.synth.windows import (ShardData, TimbreArrays, label_grid, note_arrays,
                                    output_arrays)

#: The note samplers of the Numba kernel (``_draw_notes``), one per sampler kind. A kind with its
#: own generator module (as ``midi_render``) needs none of this: only its ``notewise.kinds`` entry.
SAMPLER_RANDOM_POLYPHONY = 0
SAMPLER_SINGLE_NOTE = 1

#: Windows generated per chunk by ``write_generated_shard`` (float32 chunk of about 8 MB).
CHUNK_ROWS = 256


@njit(cache=True)
def _append_note_table(table, at, row, notes, count):
    """Append the labelled notes of window ``row`` to the note table; returns the new length."""
    (sample_col, freq_col, velocity_col, timbre_col, onset_col, offset_col, class_col,
     weight_col, share_col) = table
    for j in range(count):
        if not notes.labelled[j]:
            continue
        sample_col[at] = row
        freq_col[at] = notes.freqs[j]
        velocity_col[at] = notes.velocities[j]
        timbre_col[at] = notes.timbre_ids[j]
        onset_col[at] = notes.onsets[j]
        offset_col[at] = notes.offsets[j]
        class_col[at] = notes.classes[j]
        weight_col[at] = notes.weights[j]
        share_col[at] = notes.shares[j]
        at += 1
    return at


@njit(cache=True)
def _draw_notes(sampler, key, sample, adsr, grid, n_bins, notes):
    """The notes of ``sample`` into ``notes`` by the kind's sampler (``sampler``, a
    ``SamplerParams``); returns the count."""
    if sampler.code == SAMPLER_RANDOM_POLYPHONY:
        return sample_random_polyphony(key, sample, sampler.polyphony, grid.window, notes.freqs,
                                       notes.velocities, notes.timbre_ids, notes.onsets,
                                       notes.offsets, notes.phase_keys)
    return sample_single_note(key, sample, sampler.single, adsr, grid.window, grid.sample_rate,
                              grid.f_min, grid.f_max, n_bins, notes.freqs, notes.velocities,
                              notes.timbre_ids, notes.onsets, notes.offsets, notes.phase_keys)


@njit(cache=True)
def _generate_windows(sampler, key, samples, fixed_phase, timbres, grid, waveforms, confs,
                      energies, notes, table):
    """Fill row ``r`` with sample ``samples[r]``; returns the note-table length. ``sampler``:
    ``SamplerParams``; ``timbres``: ``TimbreArrays``; ``grid``: ``LabelGrid``; ``notes``:
    scratch ``NoteArrays``; ``table``: the note table's columns (``NOTE_DTYPES`` order)."""
    n_bins = confs.shape[1]
    scratch = new_scratch(waveforms.shape[1], timbres.amplitudes.shape[1])
    table_length = 0
    for row in range(waveforms.shape[0]):
        count = _draw_notes(sampler, key, samples[row], timbres.adsr, grid, n_bins, notes)
        render_window(waveforms[row], count, notes.freqs, notes.velocities, notes.timbre_ids,
                      notes.onsets, notes.offsets, notes.phase_keys, fixed_phase,
                      timbres.amplitudes, timbres.stretches, timbres.adsr, grid.sample_rate,
                      scratch)
        label_window(count, notes, timbres, grid, confs[row], energies[row])
        table_length = _append_note_table(table, table_length, row, notes, count)
    return table_length


class SamplerParams(NamedTuple):
    """What ``_generate_windows`` needs of a sampler kind: its sampler's code, its params (the
    other sampler's slot holds dummies of the right types) and the most notes of one window."""

    code: int
    polyphony: tuple
    single: tuple
    max_notes: int


_DUMMY_POLYPHONY = (np.ones(1, np.int64), 0.0, 0.0, 0.0, 0.0, np.int64(0), np.int64(0),
                    np.int64(0), np.zeros(1, np.int64), chords_off())
_DUMMY_SINGLE = (np.int64(1), 0.0, np.int64(0))


def random_polyphony_params(spec: dict, n_timbres: int, end: int) -> SamplerParams:
    settings = spec["settings"]
    polyphony = np.asarray(settings["polyphony"], dtype=np.int64)
    f_lo, f_hi = (float(f) for f in settings["freq_range"])
    v_lo, v_hi = (float(v) for v in settings["velocity_range"])
    onset_lo, onset_hi = (int(o) for o in settings["onset_range"])
    timbre_ids = settings.get("timbres", "all")
    timbre_ids = np.arange(n_timbres) if timbre_ids == "all" else np.asarray(timbre_ids)
    timbre_ids = timbre_ids.astype(np.int64)
    if polyphony.size == 0 or polyphony.min() < 0:
        raise ValueError("settings.polyphony must be a non-empty list of note counts >= 0")
    if not 0 < f_lo <= f_hi:
        raise ValueError(f"settings.freq_range must satisfy 0 < low <= high, got {f_lo, f_hi}")
    if onset_lo > onset_hi:
        raise ValueError(f"settings.onset_range low > high: {onset_lo, onset_hi}")
    if timbre_ids.size == 0 or timbre_ids.min() < 0 or timbre_ids.max() >= n_timbres:
        raise ValueError(f"settings.timbres must be ids in [0, {n_timbres}), got {timbre_ids}")
    chords = fill_defaults(load_schema()["$defs"]["chords"], settings.get("chords", {}))
    params = (polyphony, np.log(f_lo), np.log(f_hi), v_lo, v_hi, np.int64(onset_lo),
              np.int64(onset_hi), np.int64(settings["offset_max"]), timbre_ids,
              chord_params(chords, (f_lo, f_hi)))
    return SamplerParams(SAMPLER_RANDOM_POLYPHONY, params, _DUMMY_SINGLE, int(polyphony.max()))


def single_note_params(spec: dict, n_timbres: int, end: int) -> SamplerParams:
    settings = spec["settings"]
    timbre = int(settings.get("timbre", 0))
    if not 0 <= timbre < n_timbres:
        raise ValueError(f"settings.timbre must be an id in [0, {n_timbres}), got {timbre}")
    samples_per_bin = int(settings["samples_per_bin"])
    total = int(spec["bins"]["n_bins"]) * samples_per_bin
    if end > total:
        raise ValueError(f"single_note has {total} samples (n_bins x samples_per_bin);"
                         f" asked for sample {end - 1}")
    params = (np.int64(samples_per_bin), float(settings.get("velocity", 0.8)), np.int64(timbre))
    return SamplerParams(SAMPLER_SINGLE_NOTE, _DUMMY_POLYPHONY, params, 1)


def generate_range(spec: dict, start: int, count: int, timbres: TimbreLibrary,
                   *, out: ShardData | None = None,
                   fixed_phase: float = float("nan")) -> ShardData:
    """Samples ``start .. start+count-1`` of the dataset described by the generation ``spec``.

    ``out``: a ``ShardData`` whose ``waveforms``, ``confs`` and ``energies`` (float32,
    C-contiguous, ``count`` rows) are overwritten instead of allocating new arrays (for callers
    that generate batch after batch; fresh pages cost more than a short window's synthesis).
    ``fixed_phase`` (radians, sampler kinds only) replaces every partial's random phase when
    given (used by ``generate_single_note(phase=...)``).
    """
    if start < 0 or count < 0:
        raise ValueError(f"start and count must be >= 0, got {start}, {count}")
    return generate_samples(spec, np.arange(start, start + count, dtype=np.int64), timbres,
                            out=out, fixed_phase=fixed_phase)


def generate_samples(spec: dict, samples, timbres: TimbreLibrary, *,
                     out: ShardData | None = None,
                     fixed_phase: float = float("nan")) -> ShardData:
    """Samples ``samples`` (any order, repeats allowed) of the dataset; row ``r`` holds sample
    ``samples[r]``, byte-identical to that sample's row in a shard (the on-the-fly path).
    The note table's ``note_sample`` is the row. The kind's generator (``notewise.kinds``) makes
    them. See ``generate_range`` for ``out`` and ``fixed_phase``."""
    samples = np.ascontiguousarray(samples, dtype=np.int64).reshape(-1)
    if len(samples) and samples.min() < 0:
        raise ValueError(f"sample indices must be >= 0, got {samples.min()}")
    generator = kinds.kind(spec["settings"]["kind"]).generate()
    phase = {} if math.isnan(fixed_phase) else {"fixed_phase": float(fixed_phase)}
    return generator(spec, samples, timbres, out=out, **phase)


def random_polyphony_windows(spec: dict, samples, timbres: TimbreLibrary, *,
                             out: ShardData | None = None,
                             fixed_phase: float = float("nan")) -> ShardData:
    """The generator of kind ``random_polyphony`` (``generate_samples`` for the arguments)."""
    return _sampled_windows(spec, samples, timbres, random_polyphony_params, out, fixed_phase)


def single_note_windows(spec: dict, samples, timbres: TimbreLibrary, *,
                        out: ShardData | None = None,
                        fixed_phase: float = float("nan")) -> ShardData:
    """The generator of kind ``single_note`` (``generate_samples`` for the arguments)."""
    return _sampled_windows(spec, samples, timbres, single_note_params, out, fixed_phase)


def _sampled_windows(spec, samples, timbres, params_of, out, fixed_phase) -> ShardData:
    samples = np.ascontiguousarray(samples, dtype=np.int64).reshape(-1)
    end = int(samples.max()) + 1 if len(samples) else 0
    kind = params_of(spec, len(timbres), end)
    waveforms, confs, energies = output_arrays(out, len(samples), int(spec["audio"]["window"]),
                                               int(spec["bins"]["n_bins"]))
    table = tuple(np.zeros(len(samples) * kind.max_notes, dtype)
                  for dtype in NOTE_DTYPES.values())
    table_length = _generate_windows(
        kind, dataset_key(spec["seed"], spec["dataset"]), samples, float(fixed_phase),
        TimbreArrays(timbres.amplitudes, timbres.inharmonicity, timbres.adsr), label_grid(spec),
        waveforms, confs, energies, note_arrays(kind.max_notes), table)
    notes = {name: column[:table_length].copy()
             for name, column in zip(NOTE_DTYPES, table)}
    return ShardData(waveforms, confs, energies, notes)


def write_generated_shard(spec: dict, start: int, count: int, timbres: TimbreLibrary,
                          waveform_path, targets_path, *, chunk_rows: int = CHUNK_ROWS,
                          build: str | None = None) -> None:
    """Samples ``start .. start+count-1`` written as one shard (the same arrays as
    ``write_shard(generate_range(...))``), generated ``chunk_rows`` at a time into reused
    buffers. ``build``: the build id its targets record (``shards.BUILD_KEY``)."""
    window, n_bins = int(spec["audio"]["window"]), int(spec["bins"]["n_bins"])
    buffers = None
    with ShardWriter(waveform_path, targets_path, count, window, n_bins, build=build) as writer:
        for chunk_start in range(start, start + count, chunk_rows):
            rows = min(chunk_rows, start + count - chunk_start)
            reuse = buffers if buffers is not None and rows == chunk_rows else None
            chunk = generate_range(spec, chunk_start, rows, timbres, out=reuse)
            buffers = chunk if buffers is None else buffers
            writer.append(chunk.waveforms, chunk.confs, chunk.energies, chunk.notes)


@functools.lru_cache(maxsize=1)
def _default_timbres() -> TimbreLibrary:
    return build_timbre_library()


def generate_single_note(bin_idx: int, *, phase=None, velocity=0.8, timbre=0, seed=0,
                         spec=None, timbres=None) -> dict:
    """One single-note window at the centre of bin ``bin_idx`` (the design document's sanity
    sample).

    It is sample ``bin_idx`` of a ``single_note`` dataset named ``"single_note"`` (one sample
    per bin) under ``seed``: the random phase is a pure function of ``(seed, bin_idx)``, so
    calls with the same arguments return the same window; pass ``seed`` (or ``phase``) to get
    other phases. ``phase`` (radians) fixes every partial's phase. ``spec`` (a generation spec)
    supplies ``audio``, ``bins`` and ``labels`` (default: the config schema's: 44.1 kHz, 4096
    samples, 2048 bins 20-5000 Hz, sigma 1.5); ``timbres`` the library (default: the default library; timbre 0 is the pure sine).

    Returns ``{'waveform': [window], 'confs': [n_bins], 'energies': [n_bins]}``, float32.
    """
    base = {s: section_defaults(s) for s in ("audio", "bins", "labels")} if spec is None else spec
    one_note_spec = {
        "seed": seed, "dataset": "single_note", "audio": base["audio"], "bins": base["bins"],
        "labels": base["labels"],
        "settings": {"kind": "single_note", "samples_per_bin": 1, "velocity": velocity,
                     "timbre": timbre},
    }
    library = _default_timbres() if timbres is None else timbres
    data = generate_range(one_note_spec, int(bin_idx), 1, library,
                          fixed_phase=float("nan") if phase is None else float(phase))
    return {"waveform": data.waveforms[0], "confs": data.confs[0], "energies": data.energies[0]}
