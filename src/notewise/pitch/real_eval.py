"""Real-instrument evaluation: held-out pieces through a held-out SoundFont, scored like a user.

``rules/real_eval.smk`` runs it (target ``real_eval``, part of ``all`` where a held-out SoundFont
is installed):

1. ``render_clips``: the first ``pieces`` pieces (by name) of the corpus' **val** split -- which
   no training set reads (``check_held_out`` refuses a config where one does, and the render step
   checks the piece names against every training set's notes file) -- each cut to ``clip_s``
   seconds from its first note and rendered with the held-out SoundFont once per instrument of
   ``instruments``: ``mono`` (the highest voice alone) and ``poly`` (every voice, all on that
   instrument). Every note is rendered alone with ``notewise.music.soundfont.NoteRenderer`` and the
   clip is their sum (key down to key release, then the release tail). Written: one float32 WAV
   per clip and its ``mir_eval`` multipitch reference (``time f1 f2 ...`` every 10 ms: the
   notes whose key is down at that time), plus ``manifest.json``.
2. ``notewise predict`` on every WAV (the CLI as a user runs it: its default threshold and the
   10 ms hop), and the peer (``notewise.pitch.peers``: basic-pitch) on the same files.
3. ``score``: ``mir_eval.multipitch`` (frame level, 50 cents) pooled over the clips of each
   subset -- texture (mono / poly / all) x instrument (each / all) -- precision, recall, F1 and
   accuracy, for notewise and, where basic-pitch is installed, for its frame posteriorgram (> 0.3)
   and its note events. ``melody_score``: on the mono clips, raw pitch accuracy (the share of
   the reference melody's voiced frames whose estimate is within 50 cents; an unvoiced estimate
   is a miss) pooled over the clips of each instrument, for notewise's melody
   (``notes.melody`` of its frames) and basic-pitch's most probable key per frame (> 0.3).
"""
from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FRAME_S = 0.01
#: Where a held-out SoundFont is looked for when ``real_eval.soundfont`` is ``auto`` (Debian's
#: fluid-soundfont-gm and musescore-general-soundfont-small packages).
SOUNDFONT_CANDIDATES = ("/usr/share/sounds/sf2/FluidR3_GM.sf2",
                        "/usr/share/sounds/sf3/MuseScore_General.sf3",
                        "/usr/share/sounds/sf3/default-GM.sf3")
SKIP_MESSAGE = ("real-instrument evaluation skipped: no held-out SoundFont found ({tried});"
                " install one (apt-get install fluid-soundfont-gm or"
                " musescore-general-soundfont-small) or set real_eval.soundfont")
TEXTURES = ("mono", "poly")
SYSTEMS = ("notewise", "basic_pitch_frames", "basic_pitch_notes")


def real_eval_settings(config: dict) -> dict:
    from notewise.config import section_settings

    return section_settings(config, "real_eval")


def held_out_soundfont(settings: dict) -> Path | None:
    """The SoundFont the evaluation renders with; None where ``auto`` finds none."""
    if settings["soundfont"] != "auto":
        return Path(settings["soundfont"])
    found = [Path(p) for p in SOUNDFONT_CANDIDATES if Path(p).is_file()]
    return found[0].resolve() if found else None


def skip_message() -> str:
    return SKIP_MESSAGE.format(tried=", ".join(SOUNDFONT_CANDIDATES))


def training_datasets(config: dict) -> list[str]:
    """Datasets some model trains on: the pitch model's training set, the matrix models' and
    the released model's."""
    from notewise.config import section_settings

    names = [config.get("pitch_model", {}).get("train", {}).get("dataset", "train")]
    for datasets in section_settings(config, "music_matrix")["models"].values():
        names.extend(datasets)
    names.extend(section_settings(config, "pitch_release")["datasets"])
    return sorted(set(names))


def check_held_out(config: dict) -> None:
    """Held out by construction: no training set reads the evaluation's corpus split, and no
    soundfont_render set uses its SoundFont. Raises ``ConfigError`` naming the key."""
    from notewise.config import ConfigError
    from notewise.music.checks import soundfont_path

    settings = real_eval_settings(config)
    soundfont = held_out_soundfont(settings)
    for name in training_datasets(config):
        ds = config["datasets"].get(name, {})
        if ds.get("kind") not in ("midi_render", "soundfont_render"):
            continue
        corpus, split = ds.get("corpus", "bach"), ds.get("split", "train")
        if corpus == settings["corpus"] and split == settings["split"]:
            raise ConfigError(f"config key 'datasets.{name}.split': training set {name} reads"
                              f" the {split} split of {corpus}, which real_eval holds out")
    for name, ds in config["datasets"].items():
        if ds.get("kind") != "soundfont_render" or soundfont is None:
            continue
        used = soundfont_path(ds.get("soundfont", "default"))
        if used.resolve() == soundfont.resolve():
            raise ConfigError(f"config key 'real_eval.soundfont': {soundfont} is also dataset"
                              f" {name}'s SoundFont; the evaluation's must be held out")


#: Validation clips through the training SoundFont: an instrument whose preset there sounds an
#: octave below its key plays this program instead (TimGM6mb's reed organ for its church organ).
STAND_INS = {"organ": 20}


def instruments_at_key(renderer, instruments: dict) -> dict:
    """``instruments`` with each preset that sounds an octave below its key through
    ``renderer``'s SoundFont (``NoteRenderer.sounds_at_key``) replaced by its ``STAND_INS``
    program, or left out, saying which: the validation clips through the training SoundFont
    use it (its church organ has a 16' rank, so its key is not its pitch)."""
    kept = {}
    for name, program in instruments.items():
        if renderer.sounds_at_key(program):
            kept[name] = program
            continue
        stand_in = STAND_INS.get(name)
        usable = stand_in is not None and renderer.sounds_at_key(stand_in)
        print(f"{renderer.path.name}: {name} (program {program}) sounds an octave below its key;"
              + (f" program {stand_in} plays it" if usable else " left out"))
        if usable:
            kept[name] = stand_in
    return kept


def clip_names(settings: dict, first_piece: int = 0,
               textures: tuple[str, ...] = TEXTURES) -> list[str]:
    """``PP_instrument_texture`` for pieces ``first_piece ...`` (``settings["pieces"]`` of them);
    the evaluation's are the first (``bench/bench_rpa.py --validation`` renders later ones)."""
    pieces = range(first_piece, first_piece + settings["pieces"])
    return [f"{piece:02d}_{instrument}_{texture}" for piece in pieces
            for instrument in settings["instruments"] for texture in textures]


# --------------------------------------------------------------------------- rendering


def piece_names(corpus) -> set[str]:
    """File names of a corpus' pieces (without the split directory: ``val/x.mid`` -> ``x.mid``)."""
    return {Path(str(n)).name for n in corpus.names}


def check_disjoint(corpus, training_notes) -> None:
    """No piece of ``corpus`` in any training notes file (a ``ValueError`` naming one)."""
    from notewise.music.corpus import load_corpus

    names = piece_names(corpus)
    for path in training_notes:
        shared = names & piece_names(load_corpus(path))
        if shared:
            raise ValueError(f"{path}: training notes share {len(shared)} pieces with the"
                             f" evaluation set, e.g. {sorted(shared)[0]}")


def clip_notes(corpus, piece: int, texture: str, clip_s: float) -> dict:
    """Notes (seconds from the clip start, MIDI pitch, velocity) of a clip of ``piece``."""
    a, b = corpus.piece_start[piece], corpus.piece_start[piece + 1]
    start, end = corpus.start_s[a:b], corpus.end_s[a:b]
    pitch, velocity, track = corpus.pitch[a:b], corpus.velocity[a:b], corpus.track[a:b]
    keep = np.ones(b - a, bool)
    if texture == "mono":
        tracks = np.unique(track)
        top = tracks[np.argmax([pitch[track == t].mean() for t in tracks])]
        keep = track == top
    origin = start[keep].min()
    keep &= start < origin + clip_s
    return {"start": start[keep] - origin, "end": np.minimum(end[keep] - origin, clip_s),
            "pitch": pitch[keep].astype(np.int64), "velocity": velocity[keep].astype(np.int64)}


def render_clip(renderer, notes: dict, program: int, clip_s: float, sample_rate: int,
                tail_s: float) -> np.ndarray:
    """The clip as the sum of its notes, each rendered alone (float32, peak <= 0.9)."""
    length = int(round(clip_s * sample_rate))
    mix = np.zeros(length, np.float64)
    for start, end, pitch, velocity in zip(notes["start"], notes["end"], notes["pitch"],
                                           notes["velocity"]):
        first = int(round(start * sample_rate))
        held = max(int(round(end * sample_rate)) - first, 1)
        signal = renderer.note_signal(program, int(pitch), velocity / 127.0, held,
                                      int(tail_s * sample_rate))
        signal = signal[:length - first]
        mix[first:first + len(signal)] += signal
    peak = np.abs(mix).max() if length else 0.0
    if peak > 0.9:
        mix *= 0.9 / peak
    return mix.astype(np.float32)


def reference_frames(notes: dict, clip_s: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """``mir_eval`` multipitch reference: frame times every 10 ms, the sounding f0s of each."""
    from notewise.synth.bins import midi_to_hz

    times = np.arange(int(round(clip_s / FRAME_S))) * FRAME_S
    freqs = midi_to_hz(notes["pitch"])
    t = times[:, None]
    active = (notes["start"][None, :] <= t + 1e-9) & (t < notes["end"][None, :])
    return times, [np.sort(freqs[row]) for row in active]


def write_frames(path, times, freqs) -> None:
    from notewise.atomicio import atomic_write_text

    lines = [" ".join([f"{t:.2f}"] + [f"{f:.3f}" for f in row]) for t, row in zip(times, freqs)]
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_frames(path) -> tuple[np.ndarray, list[np.ndarray]]:
    times, freqs = [], []
    for line in Path(path).read_text().splitlines():
        values = line.split()
        if values:
            times.append(float(values[0]))
            freqs.append(np.array([float(v) for v in values[1:]]))
    return np.array(times), freqs


def write_wav(path, audio: np.ndarray, sample_rate: int) -> None:
    from scipy.io import wavfile

    from notewise.atomicio import atomic_write_bytes

    buffer = io.BytesIO()
    wavfile.write(buffer, sample_rate, audio)
    atomic_write_bytes(path, buffer.getvalue())


def render_clips(notes_file, soundfont, settings: dict, out_dir, training_notes=(),
                 sample_rate: int = 44100, names: list[str] | None = None) -> dict:
    """Step 1 (module docstring): WAVs, references and ``manifest.json`` under ``out_dir``; the
    clips ``names`` (default: ``clip_names(settings)``)."""
    from notewise.atomicio import atomic_write_text
    from notewise.music.corpus import load_corpus
    from notewise.music.soundfont import NoteRenderer

    corpus = load_corpus(notes_file)
    check_disjoint(corpus, training_notes)
    names = clip_names(settings) if names is None else names
    wanted = 1 + max((int(name.split("_", 1)[0]) for name in names), default=-1)
    if len(corpus) < wanted:
        raise ValueError(f"{notes_file}: {len(corpus)} pieces, the clips ask for {wanted}")
    renderer = NoteRenderer(soundfont, sample_rate)
    renderer.check_programs(settings["instruments"].values())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"soundfont": str(soundfont), "notes": str(notes_file), "clips": {}}
    for name in names:
        piece, instrument, texture = name.split("_", 2)
        program = int(settings["instruments"][instrument])
        notes = clip_notes(corpus, int(piece), texture, settings["clip_s"])
        audio = render_clip(renderer, notes, program, settings["clip_s"], sample_rate,
                            settings["release_tail_s"])
        write_wav(out_dir / f"{name}.wav", audio, sample_rate)
        write_frames(out_dir / f"{name}.ref.txt", *reference_frames(notes, settings["clip_s"]))
        manifest["clips"][name] = {"piece": str(corpus.names[int(piece)]),
                                   "instrument": instrument, "program": program,
                                   "texture": texture, "notes": int(len(notes["pitch"]))}
    atomic_write_text(out_dir / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    return manifest


def write_peer_frames(wavs, out_dir) -> dict:
    """basic-pitch on every WAV: ``<clip>.frames.txt`` (posteriorgram > 0.3),
    ``<clip>.notes.txt`` (note events) and ``<clip>.melody.txt`` (its most probable key per
    frame), multipitch frames, plus ``status.json`` (``available``, and ``reason`` where it
    cannot run); returns the status."""
    from scipy.io import wavfile

    from notewise.atomicio import atomic_write_text
    from notewise.pitch.peers import (BasicPitch, basic_pitch_problem, note_event_frames,
                                      posteriorgram_frames, posteriorgram_melody)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    problem = basic_pitch_problem()
    if problem is None:
        model = BasicPitch()
        for wav in wavs:
            name = Path(wav).name.removesuffix(".wav")
            output, events = model.run(wav)
            rate, samples = wavfile.read(wav, mmap=True)
            write_frames(out / f"{name}.frames.txt", *posteriorgram_frames(output["note"]))
            write_frames(out / f"{name}.notes.txt",
                         *note_event_frames(events, len(samples) / rate))
            write_frames(out / f"{name}.melody.txt", *posteriorgram_melody(output["note"]))
    status = {"available": problem is None, "reason": problem}
    atomic_write_text(out / "status.json", json.dumps(status) + "\n")
    return status


# --------------------------------------------------------------------------- scoring


def frames_from_predict_csv(path) -> tuple[np.ndarray, list[np.ndarray]]:
    """``notewise predict``'s CSV (time, f0_hz, ...) as multipitch frames."""
    import pandas as pd

    return on_frame_grid(pd.read_csv(path))


def on_frame_grid(table) -> tuple[np.ndarray, list[np.ndarray]]:
    """Rows ``(time, f0_hz)`` as multipitch frames every ``FRAME_S`` from 0 to the last row's
    time, a frame without rows empty (so that resampling does not fill it from a neighbour)."""
    if table.empty:
        return np.zeros(0), []
    times = np.round(table["time"].to_numpy() / FRAME_S).astype(np.int64)
    grid = np.arange(times.max() + 1)
    freqs = [[] for _ in grid]
    for t, f in zip(times, table["f0_hz"].to_numpy()):
        freqs[t].append(f)
    return grid * FRAME_S, [np.sort(np.array(f)) for f in freqs]


def melody_from_predict_csv(path) -> tuple[np.ndarray, list[np.ndarray]]:
    """The melody (``notes.melody``) of ``notewise predict``'s frame CSV, as multipitch frames."""
    import pandas as pd

    from notewise.pitch.notes import melody

    return on_frame_grid(melody(pd.read_csv(path), FRAME_S))


def melody_hits(reference: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Voiced frames of the ``reference`` melody (Hz, 0 unvoiced) whose ``estimate`` is within
    50 cents (an unvoiced estimate, 0, is a miss)."""
    voiced = reference > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        cents = np.abs(1200 * np.log2(estimate / np.where(voiced, reference, 1.0)))
    return voiced & (estimate > 0) & (cents <= 50)


def first_frequency(freqs) -> np.ndarray:
    """A melody of multipitch frames: each frame's first (lowest) frequency, 0 where none."""
    return np.array([f[0] if len(f) else 0.0 for f in freqs])


def on_reference_grid(ref_times, est_times, est_freqs) -> list[np.ndarray]:
    """Estimates resampled onto the reference's frames (``mir_eval``'s nearest-frame rule)."""
    import mir_eval

    if len(est_times) == 0:
        return [np.zeros(0) for _ in ref_times]
    return mir_eval.multipitch.resample_multipitch(np.asarray(est_times), list(est_freqs),
                                                   np.asarray(ref_times))


def pooled_scores(pairs) -> dict:
    """``mir_eval.multipitch`` over the concatenated frames of ``pairs`` ``(ref, est)`` (lists of
    per-frame frequency arrays already on the same 10 ms grid)."""
    import mir_eval

    ref = [f for r, _ in pairs for f in r]
    est = [f for _, e in pairs for f in e]
    times = np.arange(len(ref)) * FRAME_S
    scores = mir_eval.multipitch.evaluate(times, ref, times, est)
    p, r = float(scores["Precision"]), float(scores["Recall"])
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r > 0 else 0.0,
            "accuracy": float(scores["Accuracy"]), "frames": len(ref)}


def subsets(manifest: dict, instruments) -> list[tuple[str, str, list[str]]]:
    """``(texture, instrument, clip names)`` of every subset scored."""
    clips = manifest["clips"]
    out = []
    for texture in (*TEXTURES, "all"):
        for instrument in (*instruments, "all"):
            names = [n for n, c in clips.items()
                     if texture in ("all", c["texture"]) and instrument in ("all", c["instrument"])]
            out.append((texture, instrument, names))
    return out


def score(audio_dir, ours_dir, peer_dir=None):
    """Step 3: a table with one row per (system, texture, instrument)."""
    import pandas as pd

    audio_dir, ours_dir = Path(audio_dir), Path(ours_dir)
    manifest = json.loads((audio_dir / "manifest.json").read_text())
    instruments = sorted({c["instrument"] for c in manifest["clips"].values()})
    estimates = {"notewise": lambda n: frames_from_predict_csv(ours_dir / f"{n}.csv")}
    peer = None if peer_dir is None else Path(peer_dir)
    if peer is not None and json.loads((peer / "status.json").read_text())["available"]:
        estimates["basic_pitch_frames"] = lambda n: read_frames(peer / f"{n}.frames.txt")
        estimates["basic_pitch_notes"] = lambda n: read_frames(peer / f"{n}.notes.txt")
    rows = []
    for system, load in estimates.items():
        pairs = {}
        for name in manifest["clips"]:
            ref_times, ref = read_frames(audio_dir / f"{name}.ref.txt")
            pairs[name] = (ref, on_reference_grid(ref_times, *load(name)))
        for texture, instrument, names in subsets(manifest, instruments):
            rows.append({"system": system, "texture": texture, "instrument": instrument,
                         "clips": len(names), **pooled_scores([pairs[n] for n in names])})
    return pd.DataFrame(rows)


def melody_score(audio_dir, ours_dir, peer_dir=None):
    """Step 3's melody table: one row per (system, instrument) of the mono clips, pooled (module
    docstring)."""
    import pandas as pd

    audio_dir, ours_dir = Path(audio_dir), Path(ours_dir)
    manifest = json.loads((audio_dir / "manifest.json").read_text())
    mono = {n: c for n, c in manifest["clips"].items() if c["texture"] == "mono"}
    estimates = {"notewise": lambda n: melody_from_predict_csv(ours_dir / f"{n}.csv")}
    peer = None if peer_dir is None else Path(peer_dir)
    if peer is not None and json.loads((peer / "status.json").read_text())["available"]:
        estimates["basic_pitch"] = lambda n: read_frames(peer / f"{n}.melody.txt")
    rows = []
    for system, load in estimates.items():
        counts = {}
        for name, clip in mono.items():
            ref_times, ref = read_frames(audio_dir / f"{name}.ref.txt")
            reference = first_frequency(ref)
            hits = melody_hits(reference, first_frequency(on_reference_grid(ref_times,
                                                                            *load(name))))
            for key in (clip["instrument"], "all"):
                got = counts.setdefault(key, np.zeros(3, np.int64))
                got += (1, hits.sum(), (reference > 0).sum())
        for instrument in sorted(counts, key=lambda k: (k == "all", k)):
            clips, hit, voiced = counts[instrument]
            rows.append({"system": system, "instrument": instrument, "clips": int(clips),
                         "voiced_frames": int(voiced),
                         "raw_pitch_accuracy": float(hit / voiced) if voiced else float("nan")})
    return pd.DataFrame(rows)


def side_by_side(table, markdown: bool = False) -> str:
    """The table as text (or a Markdown table), one line per (texture, instrument), each system's
    P / R / F1 / Acc beside the others' (the layout of docs/real_eval.md)."""
    systems = [s for s in SYSTEMS if s in set(table["system"])]
    head = ["texture", "instrument"] + [f"{s} P / R / F1 / Acc" for s in systems]
    rows = []
    for (texture, instrument), group in table.groupby(["texture", "instrument"], sort=False):
        cells = [texture, instrument]
        for system in systems:
            r = group[group["system"] == system].iloc[0]
            cells.append(f"{r['precision']:.3f} / {r['recall']:.3f} / {r['f1']:.3f}"
                         f" / {r['accuracy']:.3f}")
        rows.append(cells)
    if markdown:
        lines = [head, ["---"] * len(head)] + rows
        return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in [head] + rows)


def write_score(audio_dir, ours_dir, peer_dir, csv_path, melody_path=None) -> None:
    """``score``'s table to ``csv_path`` and, given ``melody_path``, ``melody_score``'s."""
    from notewise.atomicio import atomic_write_csv

    table = score(audio_dir, ours_dir, peer_dir)
    atomic_write_csv(table, csv_path, float_format="%.4f")
    log.info("real-instrument evaluation (mir_eval.multipitch, 10 ms, 50 cents):\n%s",
             side_by_side(table))
    if melody_path is not None:
        melody = melody_score(audio_dir, ours_dir, peer_dir)
        atomic_write_csv(melody, melody_path, float_format="%.4f")
        log.info("mono raw pitch accuracy (50 cents):\n%s", melody.to_string(index=False))
