"""The polyphonic pitch model: ``[B, 1, 4096]`` waveform -> confidence and energy logits per bin.

Design
------
A fixed (parameter-free) **harmonic log-frequency front end** followed by a small **convolution
stack along the log-frequency axis**, the recipe of the field's polyphonic models (basic-pitch's
harmonic CQT stack, the HCQT of Bittner et al. 2017) rather than a CREPE-style stack of learned
filters on raw samples. Why:

* **Phase and window position drop out by construction.** The front end keeps only the magnitude
  of a Hann-windowed spectrum, which does not change when a stationary tone's phase or the
  window's start moves. The seed's window-position problem (section 5.1: +13.9 +- 25.3 cents at
  220 Hz) is thus removed by the representation, not merely reduced by phase augmentation.
* **Pitch is a translation.** On a log-frequency axis a transposed note is the same pattern
  shifted, so convolutions along that axis share what they learn across the whole range: a timbre
  seen at 200 Hz is recognised at 900 Hz. Raw-waveform filters must relearn every register.
* **Harmonics are one hop away.** Channel ``h`` of bin ``i`` holds the spectrum at ``h * f_i``
  (``h`` in 0.5, 1, 2, ..., 7), so each bin sees its own partials (and its sub-octave, against
  octave errors) without a huge receptive field. This is what lets a tiny network name the
  fundamental of a piano-like tone with a weak or missing fundamental.
* **Level does not matter.** The waveform is scaled to unit RMS before the transform and the
  spectrum is compressed to decibels with a floor, so a quiet recording looks like a loud one.
* **Small.** About 6 k parameters at the default width of 16 (21 k at 32): it trains on 2 CPU
  cores in minutes on the demo set and scales on a GPU by width and depth, not by a heavier front
  end. A network this size cannot memorise 100 synthetic timbres, which is what generalisation to
  real instruments needs. Measured figures and the comparison with a CREPE-style stack:
  ``docs/pitch_model.md``.

A fixed window of 4096 samples has ~10.8 Hz resolution, wider than a bin below ~2 kHz, so the
lowest octave is resolved through its harmonics; a learned position channel (the bin's
normalised log-frequency) lets the stack adapt to how the spectral peak width varies with pitch.

Front end details: unit-RMS waveform -> Hann window -> zero-padded rFFT (``fft_oversample`` x the
window, so the spectrum is sampled finely enough to interpolate) -> power on an extended log grid
(the bin grid continued below ``f_min`` and up to Nyquist), in dB: cubic interpolation at each
grid point, and where grid points are sparser than FFT samples (high frequencies) the maximum with
every FFT sample whose nearest grid point it is (so no partial falls between grid points) ->
floored at ``floor_db`` below a full-scale sine and mapped to [0, 1] -> harmonic channels as
integer shifts of that grid (exact for ``h = 1``, within half a bin, 2.3 cents, for the others).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class PitchModelConfig:
    """Everything that fixes the model's shape; stored next to the weights."""

    n_bins: int = 2048
    f_min: float = 20.0
    f_max: float = 5000.0
    sample_rate: int = 44100
    window: int = 4096
    harmonics: tuple[float, ...] = (0.5, 1, 2, 3, 4, 5, 6, 7)
    fft_oversample: int = 2
    floor_db: float = -80.0
    width: int = 16  # the schema's defaults too
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    kernel: int = 3
    stride: int = 8  # output bins per position of the convolution stack

    def __post_init__(self):
        if self.n_bins % self.stride:
            raise ValueError(f"pitch model: stride {self.stride} does not divide n_bins "
                             f"{self.n_bins}")

    @classmethod
    def from_dict(cls, values: dict) -> "PitchModelConfig":
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        known.setdefault("stride", 1)  # written before the stack had strides
        for key in ("harmonics", "dilations"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def stack_bins(self) -> int:
        """Positions along the convolution stack's frequency axis."""
        return self.n_bins // self.stride

    @property
    def bins_per_octave(self) -> float:
        return (self.n_bins - 1) / math.log2(self.f_max / self.f_min)

    def freq_to_bin(self, freq):
        return (self.n_bins - 1) * np.log(np.asarray(freq, np.float64) / self.f_min) / np.log(
            self.f_max / self.f_min)

    def bin_to_freq(self, index):
        return self.f_min * (self.f_max / self.f_min) ** (np.asarray(index, np.float64)
                                                          / (self.n_bins - 1))


def catmull_rom_taps(position: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and weights ``[len(position), 4]`` of cubic (Catmull-Rom) interpolation of a
    sequence of ``length`` samples at fractional ``position``: smooth (C1), so a spectral peak
    between FFT samples keeps its true position (linear interpolation would put every maximum on
    an FFT sample). Taps beyond the ends repeat the end sample."""
    left = np.floor(position).astype(np.int64)
    t = (position - left)[:, None]
    weights = 0.5 * np.hstack([-t + 2 * t**2 - t**3, 2 - 5 * t**2 + 3 * t**3,
                               t + 4 * t**2 - 3 * t**3, -t**2 + t**3])
    index = np.clip(left[:, None] + np.arange(-1, 3), 0, length - 1)
    return index, weights


def pool_table(grid_index: np.ndarray, fft_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fft_index[i]`` pools into grid point ``grid_index[i]``, as a dense table: the distinct
    grid points ``[G]`` and ``[K, G]`` FFT indices, row ``k`` the ``k``-th member of each
    (a grid point's last member repeated where it has fewer than ``K``; a maximum ignores it)."""
    order = np.argsort(grid_index, kind="stable")
    grid_index, fft_index = grid_index[order], fft_index[order]
    pooled, starts, counts = np.unique(grid_index, return_index=True, return_counts=True)
    rank = np.arange(counts.max(initial=1))[:, None]
    return pooled, fft_index[starts + np.minimum(rank, counts - 1)]


class HarmonicSpectrum(nn.Module):
    """Fixed front end: ``[B, 1, window]`` -> ``(harmonics, fundamental)``, levels in [0, 1].

    ``harmonics`` ``[B, len(harmonics), stack_bins]``: channel ``h`` at stack position ``k`` is
    the loudest level at ``h`` times the frequencies of output bins ``k * stride ...
    (k + 1) * stride - 1``. ``fundamental`` ``[B, stride, stack_bins]``: the level at each output
    bin itself (``[:, j, k]`` is bin ``k * stride + j``), the exact peak positions for the head.
    """

    def __init__(self, cfg: PitchModelConfig):
        super().__init__()
        self.cfg = cfg
        self.n_fft = cfg.window * cfg.fft_oversample
        octave = cfg.bins_per_octave / cfg.stride  # stack positions per octave
        shifts = [round(octave * math.log2(h)) for h in cfg.harmonics]
        self.stack_lo = min(0, min(shifts))  # the extended grid, in stack positions
        self.stack_hi = cfg.stack_bins - 1 + max(0, max(shifts))
        grid_lo = self.stack_lo * cfg.stride  # ... and in output bins
        nyquist_bin = math.floor(cfg.freq_to_bin(cfg.sample_rate / 2))
        grid_hi = min((self.stack_hi + 1) * cfg.stride - 1, nyquist_bin)
        self.above_nyquist = (self.stack_hi + 1) * cfg.stride - 1 - grid_hi  # -> the floor
        grid = np.arange(grid_lo, grid_hi + 1)
        fft_pos = cfg.bin_to_freq(grid) * self.n_fft / cfg.sample_rate  # fractional FFT index
        index, weights = catmull_rom_taps(fft_pos, self.n_fft // 2 + 1)
        # one column per tap: four gathers of whole rows are several times faster than one
        # gather of [grid, 4] taps followed by a sum over the taps
        self._buffer("interp_index", torch.from_numpy(index.T.copy()))
        self._buffer("interp_weights", torch.from_numpy(weights.T.copy()).float())
        fft_freqs = np.arange(self.n_fft // 2 + 1) * cfg.sample_rate / self.n_fft
        # pool only where grid points are further apart than FFT samples (elsewhere the
        # interpolation alone is smooth, and pooling would add steps at the FFT samples)
        sparse_from = cfg.bin_to_freq(0) * (2 ** (1 / cfg.bins_per_octave) - 1)
        sparse_from = cfg.sample_rate / self.n_fft / sparse_from * cfg.bin_to_freq(0)
        in_grid = (fft_freqs >= max(cfg.bin_to_freq(grid_lo - 0.5), sparse_from)) & (
            fft_freqs <= cfg.bin_to_freq(grid_hi + 0.5))
        nearest = np.rint(cfg.freq_to_bin(np.maximum(fft_freqs[in_grid], 1e-9))) - grid_lo
        pooled, members = pool_table(nearest.astype(np.int64), np.flatnonzero(in_grid))
        self._buffer("pool_grid_index", torch.from_numpy(pooled))
        self._buffer("pool_fft_index", torch.from_numpy(members))
        self._buffer("hann", torch.hann_window(cfg.window, periodic=False))
        index = np.arange(cfg.stack_bins)[None, :] + np.asarray(shifts)[:, None] - self.stack_lo
        self._buffer("shift_index", torch.from_numpy(index))

    def _buffer(self, name: str, value: torch.Tensor) -> None:
        self.register_buffer(name, value, persistent=False)  # rebuilt from the config

    def grid_db(self, waveform: torch.Tensor) -> torch.Tensor:
        """Power in dB on the extended log grid up to Nyquist, ``[B, grid]``; 0 dB = a
        full-scale sine."""
        x = waveform.reshape(waveform.shape[0], -1).float()
        rms = x.pow(2).mean(dim=1, keepdim=True).sqrt()
        x = x / rms.clamp_min(1e-5)
        spectrum = torch.fft.rfft(x * self.hann, n=self.n_fft)
        power = spectrum.real.square() + spectrum.imag.square()
        power = power * (4.0 / self.hann.sum().square())
        db = 10.0 * torch.log10(power.clamp_min(1e-12))
        grid = db.index_select(1, self.interp_index[0]) * self.interp_weights[0]
        for index, weight in zip(self.interp_index[1:], self.interp_weights[1:]):
            grid += db.index_select(1, index) * weight
        pooled = grid.index_select(1, self.pool_grid_index)
        for members in self.pool_fft_index:
            torch.maximum(pooled, db.index_select(1, members), out=pooled)
        return grid.index_copy_(1, self.pool_grid_index, pooled)

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        with torch.autocast(waveform.device.type, enabled=False):
            db = self.grid_db(waveform)
            level = ((db - cfg.floor_db) / -cfg.floor_db).clamp_min(0.0)
            level = F.pad(level, (0, self.above_nyquist))  # partials above Nyquist: the floor
            batch, positions = level.shape[0], self.stack_hi - self.stack_lo + 1
            stack = level.view(batch, positions, cfg.stride).amax(dim=2)
            own = -self.stack_lo * cfg.stride
            fundamental = level[:, own:own + cfg.n_bins].reshape(batch, cfg.stack_bins, cfg.stride)
            return stack[:, self.shift_index], fundamental.transpose(1, 2)


def conv_along_bins(layer: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """``layer`` on ``[B, C, 1, positions]`` as a ``1 x kernel`` 2-D convolution: in the
    channels-last layout PyTorch's CPU kernels run the stack's narrow convolutions several times
    faster than ``conv1d`` (the same weights, the same sums)."""
    return F.conv2d(x, layer.weight.unsqueeze(2), layer.bias, padding=(0, layer.padding[0]),
                    dilation=(1, layer.dilation[0]))


class ResidualBlock(nn.Module):
    """``x + conv(gelu(bn(x)))``, a dilated convolution along frequency, on ``[B, C, 1, L]``."""

    def __init__(self, width: int, kernel: int, dilation: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(width)
        self.conv = nn.Conv1d(width, width, kernel, dilation=dilation,
                              padding=dilation * (kernel - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + conv_along_bins(self.conv, F.gelu(self.norm(x)))


CONFIDENCE_PRIOR_LOGIT = -6.0


class PitchModel(nn.Module):
    """``[B, 1, window]`` -> ``(confidence_logits, energy_logits)``, each ``[B, n_bins]``.

    The stack runs on ``n_bins / stride`` positions; the head turns each position into
    ``stride`` output bins from the stack's features and the front end's level at those bins
    (and at its neighbours': kernel 3), so the output keeps the full bin resolution.
    """

    def __init__(self, cfg: PitchModelConfig | None = None):
        super().__init__()
        self.cfg = cfg or PitchModelConfig()
        c = self.cfg
        self.frontend = HarmonicSpectrum(c)
        position = torch.linspace(0.0, 1.0, c.stack_bins).view(1, 1, -1)
        self.register_buffer("position", position, persistent=False)
        channels = len(c.harmonics) + 1 + (c.stride if c.stride > 1 else 0)
        self.stem = nn.Conv1d(channels, c.width, 5, padding=2)
        self.blocks = nn.Sequential(*[ResidualBlock(c.width, c.kernel, d) for d in c.dilations])
        self.head_norm = nn.BatchNorm2d(c.width)
        # the head also sees the front end itself: the exact spectral peak positions, for sub-bin
        # accuracy the stack would otherwise have to carry through every block
        head_kernel = 1 if c.stride == 1 else 3
        self.head = nn.Conv1d(c.width + channels, 2 * c.stride, head_kernel,
                              padding=head_kernel // 2)
        with torch.no_grad():  # start from the prior "no note in this bin" (sigmoid = 1/400)
            self.head.bias[:c.stride] = CONFIDENCE_PRIOR_LOGIT

    def features(self, waveform: torch.Tensor) -> torch.Tensor:
        """The stack's input ``[B, channels, stack_bins]``: harmonics, position and (when
        ``stride`` > 1; with stride 1 it is the ``h = 1`` harmonic) the fundamental level."""
        harmonics, fundamental = self.frontend(waveform)
        parts = [harmonics, self.position.expand(harmonics.shape[0], -1, -1)]
        return torch.cat(parts + [fundamental] if self.cfg.stride > 1 else parts, dim=1)

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(waveform).unsqueeze(2).contiguous(
            memory_format=torch.channels_last)
        x = self.blocks(conv_along_bins(self.stem, features))
        out = conv_along_bins(self.head, torch.cat([F.gelu(self.head_norm(x)), features], dim=1))
        batch, stride = out.shape[0], self.cfg.stride  # channel o * stride + j: bin k * stride + j
        out = out.reshape(batch, 2, stride, -1).transpose(2, 3).reshape(batch, 2, -1)
        return out[:, 0], out[:, 1]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_model(model: PitchModel, path) -> None:
    """A self-describing file: ``{"config": ..., "state_dict": ...}`` (for export, not training)."""
    torch.save({"config": model.cfg.to_dict(), "state_dict": model.state_dict()}, path)


def load_model(path, config: PitchModelConfig | dict | None = None,
               map_location="cpu") -> PitchModel:
    """Load weights from a harness ``model.pth`` (plain state_dict) or a ``save_model`` file.

    A harness checkpoint stores no config: it is read from ``model_config.json`` beside it, or
    taken from ``config`` when given.
    """
    import json
    from pathlib import Path

    from notewise.training import load_model_state

    path = Path(path)
    blob = torch.load(path if path.is_file() else path / "model.pth", map_location=map_location,
                      weights_only=True)
    if isinstance(blob, dict) and "state_dict" in blob and "config" in blob:
        config, state = blob["config"], blob["state_dict"]
    else:
        state = load_model_state(path, map_location)
        if config is None:
            cfg_file = (path.parent if path.is_file() else path) / CONFIG_FILE
            config = json.loads(cfg_file.read_text())
    if isinstance(config, dict):
        config = PitchModelConfig.from_dict(config)
    model = PitchModel(config)
    model.load_state_dict(state)
    return model.eval()


CONFIG_FILE = "model_config.json"

__all__ = ["PitchModel", "PitchModelConfig", "HarmonicSpectrum", "load_model", "save_model",
           "count_parameters", "CONFIG_FILE"]
