"""Tokenizer settings and the vocabulary they imply (saved as JSON next to models and caches).

Token kinds (``<Kind>_<value>``), in vocabulary order:

======================  ====================================================================
``PAD`` ``BOS`` ``EOS``  padding (id 0, masked out of the loss), start and end of a piece
``Bar``                  the next bar starts
``Skip_<2^j>``           ``2^j`` empty bars (a gap of k empty bars costs popcount(k) tokens)
``TimeSig_<n>/<d>``      time signature from this bar on (right after ``Bar``)
``Pos_<p>``              onset position inside the bar, in grid steps
``Tempo_<i>``            tempo bin ``i`` (log-spaced) from this position on
``Program_<p>``          General MIDI program of the following pitched notes (only on change)
``Vel_<i>``              velocity bin of the following notes (only on change)
``Pitch_<p>``            a pitched note ... followed by
``Dur_<d>``              ... its duration in grid steps
``Drum_<p>``             a drum hit (channel 10 note ``p``; one grid step long)
======================  ====================================================================
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

from notewise.atomicio import atomic_write_text

SPECIAL = ("PAD", "BOS", "EOS")
PAD, BOS, EOS = 0, 1, 2
VOCAB_FORMAT = "notewise-midi-vocab"
#: Default shortest sequence kept for training (tokens; about 6 notes). The design document's
#: "2^32" is a typo that would drop every sequence.
DEFAULT_MIN_LENGTH = 16


@dataclass(frozen=True)
class TokenizerConfig:
    steps_per_beat: int = 4  # grid: 4 = sixteenth notes
    max_duration_beats: int = 16  # longer notes are clamped
    velocity_bins: int = 16
    tempo_bins: int = 32
    tempo_range: tuple[float, float] = (30.0, 300.0)  # bpm, log-spaced bin centres
    max_numerator: int = 16
    max_skip_exponent: int = 20  # gaps longer than 2**21 - 1 empty bars are clamped
    drums: str = "drop"  # "drop" or "keep" (as Drum_* tokens)
    sustain: bool = True  # apply the sustain pedal to durations when reading

    def __post_init__(self) -> None:
        if self.drums not in ("drop", "keep"):
            raise ValueError("drums must be 'drop' or 'keep'")
        if self.steps_per_beat < 1 or self.max_duration_beats < 1:
            raise ValueError("steps_per_beat and max_duration_beats must be >= 1")
        object.__setattr__(self, "tempo_range", tuple(float(x) for x in self.tempo_range))

    @property
    def denominators(self) -> tuple[int, ...]:
        """Time-signature denominators whose beats fall on the grid."""
        return tuple(d for d in (1, 2, 4, 8, 16, 32) if (4 * self.steps_per_beat) % d == 0)

    def bar_steps(self, numerator: int, denominator: int) -> int:
        return numerator * 4 * self.steps_per_beat // denominator

    @property
    def max_bar_steps(self) -> int:
        return self.bar_steps(self.max_numerator, min(self.denominators))

    @property
    def max_duration(self) -> int:
        return self.max_duration_beats * self.steps_per_beat

    def velocity_bin(self, velocity: int) -> int:
        clamped = max(1, min(127, velocity))
        return min(self.velocity_bins - 1, (clamped - 1) * self.velocity_bins // 127)

    def velocity_value(self, index: int) -> int:
        """Centre of a velocity bin (1..127)."""
        lo = math.ceil(index * 127 / self.velocity_bins) + 1
        hi = math.ceil((index + 1) * 127 / self.velocity_bins)
        return (lo + hi) // 2

    def tempo_value(self, index: int) -> float:
        lo, hi = self.tempo_range
        return round(lo * (hi / lo) ** (index / (self.tempo_bins - 1)), 3)

    def tempo_bin(self, bpm: float) -> int:
        lo, hi = self.tempo_range
        position = math.log(max(lo, min(hi, bpm)) / lo) / math.log(hi / lo)
        return round(position * (self.tempo_bins - 1))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "TokenizerConfig":
        data = dict(data)
        data["tempo_range"] = tuple(data.get("tempo_range", cls.tempo_range))
        return cls(**data)


@dataclass(frozen=True)
class Vocabulary:
    """Token strings <-> ids for one :class:`TokenizerConfig`."""

    config: TokenizerConfig = field(default_factory=TokenizerConfig)

    @cached_property
    def tokens(self) -> list[str]:
        cfg = self.config
        out = list(SPECIAL) + ["Bar"]
        out += [f"Skip_{2 ** j}" for j in range(cfg.max_skip_exponent + 1)]
        out += [f"TimeSig_{n}/{d}" for d in cfg.denominators
                for n in range(1, cfg.max_numerator + 1)]
        out += [f"Pos_{p}" for p in range(cfg.max_bar_steps)]
        out += [f"Tempo_{i}" for i in range(cfg.tempo_bins)]
        out += [f"Program_{p}" for p in range(128)]
        out += [f"Vel_{i}" for i in range(cfg.velocity_bins)]
        out += [f"Pitch_{p}" for p in range(128)]
        if cfg.drums == "keep":
            out += [f"Drum_{p}" for p in range(128)]
        out += [f"Dur_{d}" for d in range(1, cfg.max_duration + 1)]
        return out

    @cached_property
    def ids(self) -> dict[str, int]:
        return {tok: i for i, tok in enumerate(self.tokens)}

    @cached_property
    def kinds(self) -> list[tuple[str, str]]:
        """``(kind, value string)`` per id, for decoding."""
        return [tuple(tok.split("_", 1)) if "_" in tok else (tok, "") for tok in self.tokens]

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, kind: str, value: object = None) -> int:
        return self.ids[kind if value is None else f"{kind}_{value}"]

    @cached_property
    def digest(self) -> str:
        """Identifies the vocabulary (and the tokenizer settings) in caches and checkpoints."""
        payload = json.dumps({"config": self.config.to_json(), "tokens": self.tokens},
                             sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:16]

    def to_json(self) -> dict:
        return {"format": VOCAB_FORMAT, "digest": self.digest, "config": self.config.to_json(),
                "tokens": self.tokens}

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Vocabulary":
        data = json.loads(Path(path).read_text())
        if data.get("format") != VOCAB_FORMAT:
            raise ValueError(f"{path}: not a notewise vocabulary file")
        vocab = cls(TokenizerConfig.from_json(data["config"]))
        if vocab.tokens != data["tokens"]:
            raise ValueError(f"{path}: token list does not match its config (other version?)")
        return vocab
