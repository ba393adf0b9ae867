"""Audio as the pitch model reads it: mono float32 at the model's rate, cut into windows.

Two ways in, one result. ``model_audio`` and ``frame`` take a whole array; ``stream_audio`` and
``stream_windows`` take a file block by block (``BLOCK_S`` seconds of input at a time), so an
hour of audio costs the memory of one block, not of the file:

* a block is mixed down and checked for non-finite samples as a whole file is (one report, the
  time of the first bad sample, their count over the file);
* ``resample_blocks`` resamples each block with ``resample_poly`` from an input sample that is a
  multiple of the reduced ``down`` factor, with ``margin`` input samples on each side that cover
  the filter and are trimmed after: the concatenated output equals the whole file's, sample for
  sample;
* ``stream_windows`` keeps at most one block plus a window (and a batch of hops) of the padded
  signal and hands out the windows ``frame`` would, in whole batches, counting across blocks.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import soundfile
import torch
from scipy.signal import resample_poly

log = logging.getLogger(__name__)

#: Seconds of input read, mixed down and resampled at a time.
BLOCK_S = 30.0

_READ_ERRORS = (soundfile.LibsndfileError, RuntimeError, OSError)


# --------------------------------------------------------------------------- samples


def resample_ratio(rate: int, sample_rate: int) -> tuple[int, int]:
    """``(up, down)``, reduced: ``rate`` Hz to ``sample_rate`` Hz."""
    g = math.gcd(int(rate), int(sample_rate))
    return int(sample_rate) // g, int(rate) // g


def resample(audio: np.ndarray, up: int, down: int) -> np.ndarray:
    return audio if up == down else resample_poly(audio, up, down).astype(np.float32)


def report_nonfinite(name, count: int, first_s: float, nonfinite: str) -> None:
    """Refuse (``nonfinite="error"``) or warn of ``count`` non-finite samples of ``name``."""
    where = f"{count} non-finite samples (the first at {first_s:.3f} s)"
    if nonfinite == "error":
        raise ValueError(f"{name}: {where}; they would erase every note of the windows they "
                         "touch (repair the file, or pass --nonfinite zero)")
    log.warning("%s: %s set to zero", name, where)


def _mono(audio: np.ndarray, name) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2):
        raise ValueError(f"{name}: audio must be [samples] or [samples, channels], "
                         f"not {audio.shape}")
    return audio.mean(axis=1) if audio.ndim == 2 else audio


def _zero_bad(audio: np.ndarray) -> tuple[np.ndarray, int, int]:
    """``audio`` with non-finite samples zeroed, their count and the first one's index."""
    bad = ~np.isfinite(audio)
    if not bad.any():
        return audio, 0, -1
    return np.where(bad, np.float32(0), audio), int(bad.sum()), int(np.argmax(bad))


def model_audio(audio: np.ndarray, rate: int, sample_rate: int, name="audio",
                nonfinite: str = "error") -> np.ndarray:
    """``audio`` (``[n]`` or ``[n, channels]`` at ``rate`` Hz) as the model reads it: mono
    float32 at ``sample_rate``, with non-finite samples refused or zeroed (``nonfinite``)."""
    audio, count, first = _zero_bad(_mono(audio, name))
    if count:
        report_nonfinite(name, count, first / rate, nonfinite)
    return resample(audio, *resample_ratio(rate, sample_rate))


# --------------------------------------------------------------------------- files in blocks


def _read(sound: soundfile.SoundFile, frames: int, path) -> np.ndarray:
    try:
        return sound.read(frames, dtype="float32", always_2d=True)
    except _READ_ERRORS as err:
        raise ValueError(f"{path}: unreadable audio ({err})") from err


def mono_blocks(path: str | Path, sound: soundfile.SoundFile, block: int,
                nonfinite: str = "error") -> Iterator[np.ndarray]:
    """Mono float32 blocks of at most ``block`` frames of ``sound``, at its own rate; non-finite
    samples reported as ``model_audio`` does, once, after the last block (``"error"``: no block
    is yielded after the first bad one, the rest is only counted)."""
    count, first, offset = 0, -1, 0
    while len(data := _read(sound, block, path)):
        mono, bad, at = _zero_bad(data.mean(axis=1))
        first = offset + at if bad and not count else first
        count += bad
        offset += len(mono)
        if not count or nonfinite != "error":
            yield mono
    log.info("%s: read %d frames (%.3f s) at %d Hz, %d channels", path, offset,
             offset / sound.samplerate, sound.samplerate, sound.channels)
    if count:
        report_nonfinite(path, count, first / sound.samplerate, nonfinite)


def resample_margin(up: int, down: int) -> int:
    """Input samples each side of a block that cover ``resample_poly``'s filter (half-length
    ``10 * max(up, down)`` at the upsampled rate), rounded up to a multiple of ``down``."""
    reach = 10 * max(up, down) // up + 2
    return down * -(-reach // down)


def resample_blocks(blocks: Iterable[np.ndarray], up: int, down: int) -> Iterator[np.ndarray]:
    """The blocks of ``resample(np.concatenate(blocks), up, down)``, one by one: each output
    block starts at an input sample ``done`` that is a multiple of ``down`` and is resampled
    from ``margin`` input samples before it to ``margin`` after its end, then trimmed."""
    if up == down:
        yield from blocks
        return
    margin = resample_margin(up, down)
    held, start, done = np.zeros(0, np.float32), 0, 0  # held[0] is input sample ``start``
    for block in blocks:
        held = np.concatenate([held, block])
        end = (start + len(held) - margin) // down * down
        if end > done:
            out = resample(held[:end + margin - start], up, down)
            yield out[(done - start) * up // down:(end - start) * up // down]
            done, cut = end, max(end - margin, 0)
            held, start = held[cut - start:], cut
    if len(held):
        yield resample(held, up, down)[(done - start) * up // down:]


def stream_audio(path: str | Path, sample_rate: int, nonfinite: str = "error",
                 block_s: float = BLOCK_S) -> Iterator[np.ndarray]:
    """``model_audio`` of the file ``path`` in blocks of about ``block_s`` seconds of input (the
    concatenation equals ``model_audio(soundfile.read(path))``); ``ValueError`` naming the file
    if it is unreadable, or holds non-finite samples and ``nonfinite`` is ``"error"``."""
    try:
        sound = soundfile.SoundFile(str(path))
    except _READ_ERRORS as err:
        raise ValueError(f"{path}: unreadable audio ({err})") from err
    with sound:
        block = max(1, int(block_s * sound.samplerate))
        up, down = resample_ratio(sound.samplerate, sample_rate)
        yield from resample_blocks(mono_blocks(path, sound, block, nonfinite), up, down)


# --------------------------------------------------------------------------- windows


def stamp_offset(window: int, stamp: float) -> int:
    """Samples from a window's first sample to its stamped point: ``round(stamp * window)``."""
    if not 0.0 <= stamp <= 1.0:
        raise ValueError(f"stamp must be a fraction of the window in [0, 1], not {stamp}")
    return int(round(stamp * window))


def frame_pads(length: int, window: int, hop: int, stamp: float) -> tuple[int, int, int]:
    """``(n, left, right)``: the windows of ``length`` samples and the zeros padded before and
    after them so that window ``k``'s stamped point is sample ``k * hop``."""
    n = length // hop + 1
    left = stamp_offset(window, stamp)
    return n, left, max((n - 1) * hop + window - left - length, 0)


def frame(audio: np.ndarray, window: int, hop: int, stamp: float) -> torch.Tensor:
    """Windows ``[len(audio) // hop + 1, window]`` whose stamped point (``stamp_offset``) is
    sample ``k * hop`` of ``audio``: window ``k`` is ``audio[k * hop - stamp_offset + j]``,
    ``j = 0 .. window - 1``, zeros outside ``audio`` (a strided view, no copy of the frames)."""
    n, left, right = frame_pads(len(audio), window, hop, stamp)
    padded = np.pad(audio, (left, right))
    return torch.from_numpy(padded).unfold(0, window, hop)[:n]


class _Framer:
    """The padded signal from window ``k``'s first sample on (``held[0]`` is padded sample
    ``start``), cut into whole batches of windows as samples arrive."""

    def __init__(self, window: int, hop: int, stamp: float, batch: int):
        self.window, self.hop, self.stamp, self.batch = window, hop, stamp, batch
        self.held = np.zeros(stamp_offset(window, stamp), np.float32)
        self.start = self.k = self.length = 0

    def push(self, block: np.ndarray) -> tuple[int, torch.Tensor] | None:
        self.length += len(block)
        self.held = np.concatenate([self.held, block])
        return self._take(None)

    def finish(self) -> tuple[int, torch.Tensor] | None:
        n, _, right = frame_pads(self.length, self.window, self.hop, self.stamp)
        self.held = np.concatenate([self.held, np.zeros(right, np.float32)])
        return self._take(n)

    def _take(self, n: int | None) -> tuple[int, torch.Tensor] | None:
        """``(k, windows)`` of every whole window held (``n``: the last call, up to window
        ``n - 1``; otherwise a multiple of ``batch``), or None."""
        skip = self.k * self.hop - self.start
        ready = max((len(self.held) - skip - self.window) // self.hop + 1, 0)
        count = ready - ready % self.batch if n is None else min(ready, n - self.k)
        if count <= 0:
            return None
        span = self.held[skip:skip + (count - 1) * self.hop + self.window]
        windows = torch.from_numpy(span).unfold(0, self.window, self.hop)
        first, self.k = self.k, self.k + count
        cut = min(self.k * self.hop - self.start, len(self.held))
        self.held, self.start = self.held[cut:], self.start + cut
        return first, windows


def stream_windows(blocks: Iterable[np.ndarray], window: int, hop: int, stamp: float,
                   batch: int = 256) -> Iterator[tuple[int, torch.Tensor]]:
    """``(k, windows)``: rows ``k, k + 1, ...`` of ``frame(np.concatenate(blocks), window, hop,
    stamp)``, in multiples of ``batch`` rows (the last excepted), holding at most one block plus
    ``window + batch * hop`` samples."""
    framer = _Framer(window, hop, stamp, batch)
    for block in blocks:
        if (taken := framer.push(block)) is not None:
            yield taken
    if (taken := framer.finish()) is not None:
        yield taken
