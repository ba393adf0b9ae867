"""From per-window detections to note events, and note events to a MIDI file.

A detection (a row of ``predict``'s frame table: ``time, f0_hz, confidence, energy_share,
onset_strength``) is snapped to the nearest MIDI pitch; the detections of one pitch in
consecutive frames form a note, with hysteresis: every frame of a note is above the decoding
threshold (what made it a detection), and a note is kept only if some frame reaches
``onset_threshold``, and only if it lasts ``min_duration`` seconds. A note starts at its attack
where the audio shows one in its first frames (``ATTACK_SEARCH_S``, ``ATTACK_STRENGTH``; a table
without ``onset_strength``, at its first frame): the model names a struck note while its attack
is still in the window's future. A frame stamped at ``t`` stands for ``t +- frame_s / 2``, so a
note of frames ``i .. j`` spans ``(i - 1/2) .. (j + 1/2)`` frames. Its ``f0_hz`` is the median
of its detections; its ``velocity`` (1-127) is ``127 * sqrt(mean energy share)``: the share is a
fraction of the window's energy, and MIDI velocity follows amplitude, the square root of energy.

``melody`` picks one note a frame, for a single melodic line: of the notes sounding in the frame
within ``MELODY_SHARE`` of its top confidence, those ``PARTIAL_INTERVALS`` semitones above
another that started or ends with it are dropped (a note's partials heard as notes: f0 ratios
3/2, 2, 3, 4; ``PARTIAL_ONSET_S``, ``PARTIAL_END_S``), and of the rest with at least ``MELODY_ENERGY`` of the
largest energy share among them (a note entering the window's edge before it sounds is still
quiet there), the one attacked last (the new note over the previous one's release tail; a note
ringing on is attacked again where its energy share jumps, ``REATTACK_S``), the more confident
on a tie. A frame whose detections all wait for their note's attack keeps the previous frame's
melody note (``MELODY_HOLD``): the note before still sounds there, though the coming attack
masks it from the model. The rule and its constants were chosen on validation clips
(``bench/bench_rpa.py --validation``, docs/pitch_model.md "Mono raw pitch accuracy").
"""

from __future__ import annotations

import io
from pathlib import Path

import mido
import numpy as np
import pandas as pd

from notewise.atomicio import atomic_write_bytes

__all__ = ["MELODY_COLUMNS", "NOTE_COLUMNS", "frames_to_notes", "melody", "midi_bytes",
           "write_midi"]

NOTE_COLUMNS = ["onset", "offset", "pitch", "f0_hz", "velocity", "confidence"]
MELODY_COLUMNS = ["time", "f0_hz", "pitch", "confidence"]
MELODY_SHARE = 0.5
MELODY_ENERGY = 0.3
PARTIAL_INTERVALS = (7, 12, 19, 24)
#: A note is a partial of a lower one only if it started at most ``PARTIAL_ONSET_S`` or ends at
#: most ``PARTIAL_END_S`` seconds after it: a partial sounds with its note, while a melody note a
#: fifth or an octave above the previous one, still ringing, starts later and outlasts it.
PARTIAL_ONSET_S = PARTIAL_END_S = 0.1
#: A note starts at its attack: the strongest onset strength (``notewise.pitch.onsets``) of its
#: first ``ATTACK_SEARCH_S`` seconds, if at least ``ATTACK_STRENGTH`` times the median frame's
#: (a struck note is detected up to 40 ms before it sounds; a soft attack has none so strong).
ATTACK_SEARCH_S = 0.06
ATTACK_STRENGTH = 5.0
#: A note sounding on is attacked again (for the melody: it is the newest note) where its energy
#: share reaches ``REATTACK_RATIO`` times its lowest of the ``REATTACK_S`` seconds before, and
#: ``REATTACK_RISE`` more.
REATTACK_S, REATTACK_RATIO, REATTACK_RISE = 0.2, 2.0, 0.2
#: A frame whose notes all wait for their attack keeps the melody note of the frame before.
MELODY_HOLD = True
#: MIDI file timing: 480 ticks a beat at 120 bpm, so one tick is 1/960 s.
TICKS_PER_BEAT, TEMPO_US = 480, 500_000
TICKS_PER_SECOND = TICKS_PER_BEAT * 1_000_000 / TEMPO_US


def midi_pitch(f0_hz: np.ndarray) -> np.ndarray:
    return np.rint(69 + 12 * np.log2(np.asarray(f0_hz, dtype=np.float64) / 440.0)).astype(np.int64)


def frames_to_notes(frames: pd.DataFrame, frame_s: float, onset_threshold: float = 0.5,
                    min_duration: float = 0.05) -> pd.DataFrame:
    """Note events (``NOTE_COLUMNS``, sorted by onset then pitch) of a frame table whose frames
    are ``frame_s`` seconds apart; where it has ``onset_strength``, a note starts at its attack
    (``_attack_frames``)."""
    return _notes(_runs(frames, frame_s), frame_s, onset_threshold, min_duration)


def _runs(frames: pd.DataFrame, frame_s: float) -> pd.DataFrame:
    """One row per detected (pitch, frame) of ``frames``, the more confident of two, with its
    ``run`` (a pitch's consecutive frames) and that run's ``attack`` frame."""
    if frame_s <= 0:
        raise ValueError(f"frame_s must be > 0, got {frame_s}")
    table = pd.DataFrame({"pitch": midi_pitch(frames["f0_hz"]),
                          "frame": np.rint(frames["time"].to_numpy() / frame_s).astype(np.int64),
                          "f0_hz": frames["f0_hz"].to_numpy(),
                          "confidence": frames["confidence"].to_numpy(),
                          "share": frames["energy_share"].to_numpy(),
                          "strength": frames.get("onset_strength", np.nan)})
    # two detections snapped to one pitch in one frame: keep the more confident
    table = (table.sort_values(["pitch", "frame", "confidence"])
             .drop_duplicates(["pitch", "frame"], keep="last"))
    pitch, frame = table["pitch"].to_numpy(), table["frame"].to_numpy()
    starts = np.r_[True, (pitch[1:] != pitch[:-1]) | (frame[1:] != frame[:-1] + 1)]
    table["run"] = np.cumsum(starts)
    table["attack"] = _attack_frames(table, frame_s)
    return table


def _notes(table: pd.DataFrame, frame_s: float, onset_threshold: float,
           min_duration: float) -> pd.DataFrame:
    """``frames_to_notes`` of ``_runs``' table: each run from its attack on."""
    if table.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in NOTE_COLUMNS})
    runs = table[table["frame"] >= table["attack"]].groupby("run", sort=False).agg(
        pitch=("pitch", "first"), first=("frame", "min"), last=("frame", "max"),
        f0_hz=("f0_hz", "median"), confidence=("confidence", "max"), share=("share", "mean"))
    notes = pd.DataFrame({
        "onset": np.maximum(runs["first"].to_numpy() - 0.5, 0) * frame_s,
        "offset": (runs["last"].to_numpy() + 0.5) * frame_s,
        "pitch": runs["pitch"].to_numpy(),
        "f0_hz": runs["f0_hz"].to_numpy(),
        "velocity": np.clip(np.rint(127 * np.sqrt(np.clip(runs["share"].to_numpy(), 0, 1))),
                            1, 127).astype(np.int64),
        "confidence": runs["confidence"].to_numpy(),
    })
    keep = (notes["confidence"] >= onset_threshold) & (notes["offset"] - notes["onset"] >= min_duration)
    notes = notes[keep & notes["pitch"].between(0, 127)]
    return notes.sort_values(["onset", "pitch"]).reset_index(drop=True)[NOTE_COLUMNS]


def _attack_frames(table: pd.DataFrame, frame_s: float) -> np.ndarray:
    """Per row of ``table`` (``run``, ``frame``, ``strength``: a pitch's frames, runs of
    consecutive frames), the frame its run starts at: the run's frame of strongest onset
    strength in its first ``ATTACK_SEARCH_S`` if that is ``ATTACK_STRENGTH`` times the median
    of the table's frames, otherwise its first frame."""
    first = table.groupby("run")["frame"].transform("min")
    reference = table.drop_duplicates("frame")["strength"].median()
    early = table[table["frame"] - first <= round(ATTACK_SEARCH_S / frame_s)]
    if early["strength"].isna().all():
        return first.to_numpy()
    strongest = early.loc[early.groupby("run")["strength"].idxmax()]
    strongest = strongest[strongest["strength"] >= ATTACK_STRENGTH * reference]
    attack = table["run"].map(strongest.set_index("run")["frame"])
    return attack.fillna(first).to_numpy()


def melody(frames: pd.DataFrame, frame_s: float, onset_threshold: float = 0.5,
           min_duration: float = 0.05) -> pd.DataFrame:
    """One row (``MELODY_COLUMNS``) per frame time that has a melody note (module docstring);
    the notes are ``frames_to_notes`` with these settings."""
    table = _runs(frames, frame_s)
    notes = _notes(table, frame_s, onset_threshold, min_duration)
    if notes.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in MELODY_COLUMNS})
    # notes of one pitch never overlap: a detection's note is its pitch's last onset before it
    frames = frames.assign(pitch=midi_pitch(frames["f0_hz"])).sort_values("time")
    rows = pd.merge_asof(frames, notes[["onset", "offset", "pitch"]].sort_values("onset"),
                         left_on="time", right_on="onset", by="pitch")
    rows = rows[rows["time"] < rows["offset"]].reset_index(drop=True)
    rows["attacked"] = _latest_attacks(rows, frame_s)
    top = rows.groupby("time")["confidence"].transform("max")
    rows = rows[rows["confidence"] >= MELODY_SHARE * top].reset_index(drop=True)
    rows = rows[~_partials(rows)]
    loudest = rows.groupby("time")["energy_share"].transform("max")
    rows = rows[rows["energy_share"] >= MELODY_ENERGY * loudest]
    picked = rows.sort_values(["attacked", "confidence"]).groupby("time").tail(1)
    picked = picked.sort_values("time")
    if MELODY_HOLD:
        picked = _held(picked, table.loc[table["frame"] < table["attack"], "frame"], frame_s)
    return picked.reset_index(drop=True)[MELODY_COLUMNS]


def _latest_attacks(rows: pd.DataFrame, frame_s: float) -> np.ndarray:
    """Per row (``time``, ``onset``, ``energy_share`` of a note's consecutive frames), the time
    its note was last attacked: its onset, or a later re-attack (``REATTACK_S``,
    ``REATTACK_RATIO``, ``REATTACK_RISE``)."""
    order = rows.sort_values(["pitch", "onset", "time"])
    note = order.groupby(["pitch", "onset"], sort=False)
    share = order["energy_share"]
    lowest = note["energy_share"].rolling(round(REATTACK_S / frame_s) + 1, min_periods=1).min()
    lowest = lowest.reset_index(level=[0, 1], drop=True).loc[order.index]
    rising = (share >= REATTACK_RATIO * lowest) & (share - lowest >= REATTACK_RISE)
    began = rising & ~rising.groupby([order["pitch"], order["onset"]]).shift(fill_value=False)
    attacked = order["time"].where(began, order["onset"])
    attacked = attacked.groupby([order["pitch"], order["onset"]]).cummax()
    return attacked.loc[rows.index].to_numpy()


def _held(picked: pd.DataFrame, waiting: pd.Series, frame_s: float) -> pd.DataFrame:
    """``picked`` (by time) with each ``waiting`` frame (a note detected there before its
    attack) that has no pick given the pick of the frame before it, if that has one."""
    frame = np.rint(picked["time"].to_numpy() / frame_s).astype(np.int64)
    held = []
    pick_of = dict(zip(frame, range(len(picked))))
    for t in np.unique(waiting.to_numpy()):
        if t not in pick_of and t - 1 in pick_of:
            pick_of[t] = pick_of[t - 1]
            held.append((t, pick_of[t]))
    if not held:
        return picked
    extra = picked.iloc[[i for _, i in held]].assign(time=[t * frame_s for t, _ in held])
    return pd.concat([picked, extra]).sort_values("time", kind="stable")


def _partials(rows: pd.DataFrame) -> np.ndarray:
    """Rows ``PARTIAL_INTERVALS`` semitones above another row of their frame time whose note
    started or ends with theirs (``PARTIAL_ONSET_S``, ``PARTIAL_END_S``)."""
    columns = ["time", "pitch", "onset", "offset"]
    pairs = rows[columns].reset_index().merge(rows[columns].rename(
        columns={"pitch": "below", "onset": "below_onset", "offset": "below_offset"}), on="time")
    partial = ((pairs["pitch"] - pairs["below"]).isin(PARTIAL_INTERVALS)
               & ((pairs["onset"] <= pairs["below_onset"] + PARTIAL_ONSET_S)
                  | (pairs["offset"] <= pairs["below_offset"] + PARTIAL_END_S)))
    return np.isin(np.arange(len(rows)), pairs.loc[partial, "index"].to_numpy())


def midi_bytes(notes: pd.DataFrame) -> bytes:
    """A one-track standard MIDI file of ``notes`` (piano, channel 0)."""
    events = []
    for onset, offset, pitch, velocity in notes[["onset", "offset", "pitch", "velocity"]].itertuples(index=False):
        on, off = round(onset * TICKS_PER_SECOND), round(offset * TICKS_PER_SECOND)
        events.append((on, 1, int(pitch), int(velocity)))
        events.append((max(off, on + 1), 0, int(pitch), 0))  # note-offs first at a tick
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=TEMPO_US, time=0)])
    now = 0
    for tick, is_on, pitch, velocity in sorted(events):
        kind = "note_on" if is_on else "note_off"
        track.append(mido.Message(kind, note=pitch, velocity=velocity, time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    buffer = io.BytesIO()
    mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT, tracks=[track]).save(file=buffer)
    return buffer.getvalue()


def write_midi(notes: pd.DataFrame, path: str | Path) -> None:
    atomic_write_bytes(path, midi_bytes(notes))
