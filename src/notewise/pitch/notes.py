"""From per-window detections to note events, and note events to a MIDI file.

A detection (a row of ``predict``'s frame table: ``time, f0_hz, confidence, energy_share``) is
snapped to the nearest MIDI pitch; the detections of one pitch in consecutive frames form a note,
with hysteresis: every frame of a note is above the decoding threshold (what made it a
detection), and a note is kept only if some frame reaches ``onset_threshold``, and only if it
lasts ``min_duration`` seconds. A frame stamped at ``t`` stands for ``t +- frame_s / 2``, so a
note of frames ``i .. j`` spans ``(i - 1/2) .. (j + 1/2)`` frames. Its ``f0_hz`` is the median
of its detections; its ``velocity`` (1-127) is ``127 * sqrt(mean energy share)``: the share is a
fraction of the window's energy, and MIDI velocity follows amplitude, the square root of energy.

``melody`` picks one note a frame, for a single melodic line: of the notes sounding in the frame
within ``MELODY_SHARE`` of its top confidence, those ``PARTIAL_INTERVALS`` semitones above
another that started or ends with it are dropped (a note's partials heard as notes: f0 ratios
3/2, 2, 3, 4; ``PARTIAL_ONSET_S``, ``PARTIAL_END_S``), and of the rest with at least ``MELODY_ENERGY`` of the
largest energy share among them (a note entering the window's edge before it sounds is still
quiet there), the one that started last (the new note over the previous one's release tail),
the more confident on a tie. The rule and its constants were chosen on validation clips
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
MELODY_SHARE = 0.6
MELODY_ENERGY = 0.4
PARTIAL_INTERVALS = (7, 12, 19, 24)
#: A note is a partial of a lower one only if it started at most ``PARTIAL_ONSET_S`` or ends at
#: most ``PARTIAL_END_S`` seconds after it: a partial sounds with its note, while a melody note a
#: fifth or an octave above the previous one, still ringing, starts later and outlasts it.
PARTIAL_ONSET_S = PARTIAL_END_S = 0.1
#: MIDI file timing: 480 ticks a beat at 120 bpm, so one tick is 1/960 s.
TICKS_PER_BEAT, TEMPO_US = 480, 500_000
TICKS_PER_SECOND = TICKS_PER_BEAT * 1_000_000 / TEMPO_US


def midi_pitch(f0_hz: np.ndarray) -> np.ndarray:
    return np.rint(69 + 12 * np.log2(np.asarray(f0_hz, dtype=np.float64) / 440.0)).astype(np.int64)


def frames_to_notes(frames: pd.DataFrame, frame_s: float, onset_threshold: float = 0.5,
                    min_duration: float = 0.05) -> pd.DataFrame:
    """Note events (``NOTE_COLUMNS``, sorted by onset then pitch) of a frame table whose frames
    are ``frame_s`` seconds apart."""
    if frame_s <= 0:
        raise ValueError(f"frame_s must be > 0, got {frame_s}")
    if frames.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in NOTE_COLUMNS})
    table = pd.DataFrame({"pitch": midi_pitch(frames["f0_hz"]),
                          "frame": np.rint(frames["time"].to_numpy() / frame_s).astype(np.int64),
                          "f0_hz": frames["f0_hz"].to_numpy(),
                          "confidence": frames["confidence"].to_numpy(),
                          "share": frames["energy_share"].to_numpy()})
    # two detections snapped to one pitch in one frame: keep the more confident
    table = (table.sort_values(["pitch", "frame", "confidence"])
             .drop_duplicates(["pitch", "frame"], keep="last"))
    pitch, frame = table["pitch"].to_numpy(), table["frame"].to_numpy()
    starts = np.r_[True, (pitch[1:] != pitch[:-1]) | (frame[1:] != frame[:-1] + 1)]
    runs = table.groupby(np.cumsum(starts), sort=False).agg(
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


def melody(frames: pd.DataFrame, frame_s: float, onset_threshold: float = 0.5,
           min_duration: float = 0.05) -> pd.DataFrame:
    """One row (``MELODY_COLUMNS``) per frame time that has a melody note (module docstring);
    the notes are ``frames_to_notes`` with these settings."""
    notes = frames_to_notes(frames, frame_s, onset_threshold, min_duration)
    if notes.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in MELODY_COLUMNS})
    # notes of one pitch never overlap: a detection's note is its pitch's last onset before it
    frames = frames.assign(pitch=midi_pitch(frames["f0_hz"])).sort_values("time")
    rows = pd.merge_asof(frames, notes[["onset", "offset", "pitch"]].sort_values("onset"),
                         left_on="time", right_on="onset", by="pitch")
    rows = rows[rows["time"] < rows["offset"]]
    top = rows.groupby("time")["confidence"].transform("max")
    rows = rows[rows["confidence"] >= MELODY_SHARE * top].reset_index(drop=True)
    rows = rows[~_partials(rows)]
    loudest = rows.groupby("time")["energy_share"].transform("max")
    rows = rows[rows["energy_share"] >= MELODY_ENERGY * loudest]
    picked = rows.sort_values(["onset", "confidence"]).groupby("time").tail(1)
    return picked.sort_values("time").reset_index(drop=True)[MELODY_COLUMNS]


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
