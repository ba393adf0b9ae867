"""Reading untrusted MIDI files with bounded time and memory.

``MidiReader.read(path)`` returns the file's note sequences (:class:`~notewise.midi.notes.RawMidi`)
or raises :class:`~notewise.midi.smf.MidiFileError` with a one-line reason. Bounds:

* size: files above ``max_bytes`` are refused before being read in full;
* container: :func:`~notewise.midi.smf.inspect_smf` rejects bad headers and chunks;
* time and memory: with ``isolate=True`` (the default) mido parses inside a worker process that
  is killed after ``timeout`` seconds (mido's variable-length-quantity reader is quadratic, so a
  crafted 1 MB delta time takes minutes) and whose address space is capped at ``memory_mb``.

``read_many`` keeps ``workers`` such processes busy in parallel. ``isolate=False`` parses in the
calling process (for trusted files and benchmarks).

Public, stable API (other parts of notewise read MIDI through it):

* :func:`read_notes` ``(path) -> list[TimedNote]``: every note of a file in seconds
  (``onset``, ``offset``, ``pitch``, ``velocity``, ``program``, ``track``, ``drum``), sorted by
  onset; raises :class:`~notewise.midi.smf.MidiFileError` whose message is the reason;
* :class:`MidiReader` ``.read(path)`` / ``.read_many(paths)``: the same bounds, notes in ticks
  (:class:`~notewise.midi.notes.RawMidi`); :func:`notes_in_seconds` converts;
* :func:`parse_file`, :func:`parse_bytes`, :func:`read_bytes`: in-process steps (no time bound).
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import subprocess
import sys
import time
from collections import deque
from multiprocessing.connection import wait
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

import mido

from .notes import RawMidi, TempoMap, extract
from .smf import MidiFileError, inspect_smf

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 16 * 2**20
DEFAULT_TIMEOUT = 60.0
DEFAULT_MEMORY_MB = 2048


def read_bytes(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise MidiFileError(f"file too large ({size} bytes > {max_bytes})")
        with open(path, "rb") as fh:
            return fh.read(max_bytes + 1)[:max_bytes]
    except OSError as err:
        raise MidiFileError(f"cannot read file: {err.strerror or err}") from err


def parse_bytes(data: bytes, sustain: bool = True) -> list[RawMidi]:
    """Container check, mido parse and note extraction, in this process."""
    info, clean = inspect_smf(data)
    try:
        midi = mido.MidiFile(file=io.BytesIO(clean))
    except MemoryError:
        raise
    except Exception as err:  # mido raises EOFError, OSError, IndexError, KeyError, ValueError...
        raise MidiFileError(f"corrupt track data ({type(err).__name__}: {err})"[:300]) from err
    try:
        return extract(midi, info, sustain)
    except Exception as err:
        raise MidiFileError(f"bad events ({type(err).__name__}: {err})"[:300]) from err


def parse_file(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES,
               sustain: bool = True) -> list[RawMidi]:
    return parse_bytes(read_bytes(path, max_bytes), sustain)


class TimedNote(NamedTuple):
    onset: float  # seconds from the start of the file
    offset: float  # seconds; where the note stops sounding (sustain pedal applied if asked)
    pitch: int  # MIDI note number
    velocity: int  # 1..127
    program: int  # General MIDI program of its channel at the onset
    track: int  # index of its track in the file
    drum: bool  # channel 10


def notes_in_seconds(raws: list[RawMidi]) -> list[TimedNote]:
    """The notes of a file's sequences with times in seconds, sorted by (onset, track, pitch).

    Format-2 files hold one sequence per track; each starts at 0 s.
    """
    out = []
    for raw in raws:
        seconds = TempoMap(raw.tempos, raw.ticks_per_beat)
        out += [TimedNote(seconds(n.start), seconds(n.end), n.pitch, n.velocity, n.program,
                          n.track, n.drum) for n in raw.notes]
    return sorted(out, key=lambda n: (n.onset, n.track, n.pitch, n.offset))


def read_notes(path: str | os.PathLike, *, sustain: bool = True, drums: bool = True,
               reader: "MidiReader | None" = None) -> list[TimedNote]:
    """Every note of the MIDI file ``path`` in seconds (see :class:`TimedNote`).

    Raises :class:`MidiFileError` (its message is the reason, e.g. ``"empty file (0 bytes)"``)
    for a file that cannot be read. Parsing is bounded in time and memory by ``reader`` (default:
    a one-off :class:`MidiReader` with the default bounds; pass one to reuse its worker, and
    its own ``sustain`` setting applies).
    ``drums=False`` leaves out channel-10 notes. A readable file may give an empty list.
    """
    if reader is None:
        with MidiReader(sustain=sustain) as own:
            return read_notes(path, sustain=sustain, drums=drums, reader=own)
    notes = notes_in_seconds(reader.read(path))
    return notes if drums else [n for n in notes if not n.drum]


# --------------------------------------------------------------------------- worker side
# The worker is a fresh interpreter (``python -m notewise.midi.reading``), not a multiprocessing
# child: it never re-imports the caller's ``__main__`` and works under any start method.
# Requests and answers are pickles over its stdin/stdout.


def _limit_memory(memory_mb: int) -> None:
    import resource

    with open("/proc/self/statm") as fh:
        current = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = current + memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _answer(path: str, max_bytes: int, sustain: bool, memory_mb: int) -> tuple[str, object]:
    try:
        return "ok", parse_file(path, max_bytes, sustain)
    except MidiFileError as err:
        return "error", str(err)
    except MemoryError:
        return "error", f"out of memory (> {memory_mb} MB while parsing)"
    except Exception as err:  # a reader bug must not kill the dataset build
        return "error", f"unexpected {type(err).__name__}: {err}"[:300]


def _worker_main(memory_mb: int, max_bytes: int, sustain: bool) -> None:
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints must not corrupt the answer stream
    try:
        _limit_memory(memory_mb)
    except (ImportError, OSError, ValueError):  # no rlimit here: the time bound still holds
        pass
    while True:
        try:
            path = pickle.load(requests)
        except EOFError:
            return
        pickle.dump(_answer(path, max_bytes, sustain, memory_mb), answers,
                    protocol=pickle.HIGHEST_PROTOCOL)
        answers.flush()


class _Worker:
    def __init__(self, memory_mb: int, max_bytes: int, sustain: bool):
        cmd = [sys.executable, "-m", __name__, str(memory_mb), str(max_bytes), str(int(sustain))]
        self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.task: tuple[int, str] | None = None
        self.deadline = 0.0

    def fileno(self) -> int:
        return self.process.stdout.fileno()

    def submit(self, index: int, path: str, timeout: float) -> None:
        self.task = (index, path)
        self.deadline = time.monotonic() + timeout
        pickle.dump(path, self.process.stdin)
        self.process.stdin.flush()

    def receive(self) -> tuple[str, object]:
        return pickle.load(self.process.stdout)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.process.stdin.close()
        self.process.stdout.close()


class MidiReader:
    """Parse MIDI files safely; see the module docstring for the bounds."""

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, max_bytes: int = DEFAULT_MAX_BYTES,
                 memory_mb: int = DEFAULT_MEMORY_MB, workers: int = 1, isolate: bool = True,
                 sustain: bool = True):
        self.timeout, self.max_bytes, self.memory_mb = timeout, max_bytes, memory_mb
        self.n_workers, self.isolate, self.sustain = max(1, workers), isolate, sustain
        self._idle: list[_Worker] = []

    def __enter__(self) -> "MidiReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for worker in self._idle:
            worker.kill()
        self._idle.clear()

    def read(self, path: str | os.PathLike) -> list[RawMidi]:
        """Note sequences of ``path``; raises MidiFileError with the reason."""
        ((_, result),) = list(self.read_many([path]))
        if isinstance(result, MidiFileError):
            raise result
        return result

    def read_many(self, paths: Iterable[str | os.PathLike]
                  ) -> Iterator[tuple[Path, list[RawMidi] | MidiFileError]]:
        """``(path, sequences or error)`` for each path, in input order."""
        paths = [Path(p) for p in paths]
        if not self.isolate:
            for path in paths:
                yield path, self._read_here(path)
            return
        results: dict[int, list[RawMidi] | MidiFileError] = {}
        pending = deque(enumerate(paths))
        busy: list[_Worker] = []
        next_out = 0
        try:
            while next_out < len(paths):
                while pending and len(busy) < self.n_workers:
                    index, path = pending.popleft()
                    worker = self._idle.pop() if self._idle else self._spawn()
                    worker.submit(index, str(path), self.timeout)
                    busy.append(worker)
                if busy:
                    self._collect(busy, results)
                while next_out in results:
                    yield paths[next_out], results.pop(next_out)
                    next_out += 1
        finally:  # abandoned mid-way: workers still parsing cannot be reused
            for worker in busy:
                worker.kill()

    def _read_here(self, path: Path) -> list[RawMidi] | MidiFileError:
        try:
            return parse_file(path, self.max_bytes, self.sustain)
        except MidiFileError as err:
            return err

    def _spawn(self) -> _Worker:
        return _Worker(self.memory_mb, self.max_bytes, self.sustain)

    def _collect(self, busy: list[_Worker], results: dict) -> None:
        """Wait for at least one busy worker to answer or time out."""
        now = time.monotonic()
        timeout = max(0.0, min(w.deadline for w in busy) - now)
        ready = wait(busy, timeout=timeout)
        for worker in list(busy):
            index, _ = worker.task
            if worker in ready:
                try:
                    status, payload = worker.receive()
                except (EOFError, OSError, pickle.UnpicklingError):
                    results[index] = MidiFileError(
                        f"parser process died (exit code {worker.process.poll()})")
                    busy.remove(worker)
                    worker.kill()
                    continue
                results[index] = payload if status == "ok" else MidiFileError(payload)
                busy.remove(worker)
                self._idle.append(worker)
            elif time.monotonic() >= worker.deadline:
                results[index] = MidiFileError(f"parsing took longer than {self.timeout:g} s")
                busy.remove(worker)
                worker.kill()


if __name__ == "__main__":
    _worker_main(int(sys.argv[1]), int(sys.argv[2]), bool(int(sys.argv[3])))
