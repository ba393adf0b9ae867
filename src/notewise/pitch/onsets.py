"""How sharply the sound changes at a window's stamp: its onset strength, from the audio.

The model sees a whole window, 93 ms, of which 58 ms lie after the stamp at the default stamp
(0.375): a struck note (piano) is detected as soon as its attack enters the window's late part,
20-40 ms before it sounds, while a bowed or blown note builds up and is detected late
(docs/pitch_model.md, "Mono raw pitch accuracy"). The audio says when a struck note starts: its
attack is a jump of the spectrum across all bins. The onset strength of a window is the largest
spectral flux (the half-wave rectified increase of log magnitude, summed over bins: Bello et al.
2005) between ``FLUX_STEPS + 1`` short frames of ``FLUX_FRAME_S`` seconds stepped across the hop
around its stamp, each reaching ``FLUX_AHEAD`` of its length past the point it stands for: a
frame sees an attack as soon as the attack enters it, so frames centred on their point place it
early and frames ending there late. ``notes.frames_to_notes`` moves a note's onset to a strong
one in its first frames. The constants were chosen on the validation clips (docs/pitch_model.md,
"Session 11: attacks from the audio"; ``bench/bench_rpa.py --validation --flux-ahead ...``):
mean raw pitch accuracy 0.9606 with these, 0.9600 centred, 0.9566 ending at the point;
1024-sample frames and 4 steps 0.9610, at twice the cost.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["FLUX_AHEAD", "FLUX_FRAME_S", "FLUX_STEPS", "LOG_GAIN", "onset_strength"]

FLUX_FRAME_S = 0.0116  # 512 samples at 44.1 kHz: short enough to place an attack to a few ms
FLUX_STEPS = 2  # differences per hop: the flux is sampled every hop / 2
FLUX_AHEAD = 0.25
LOG_GAIN = 100.0  # log(1 + LOG_GAIN |X|): the compression of onset detection functions
BATCH = 1024  # windows at a time: an in-memory hour is 360,000 windows


def onset_strength(waveforms, rows: np.ndarray, stamp_offset: int, hop: int,
                   sample_rate: int) -> np.ndarray:
    """Per entry of ``rows`` (rows of ``waveforms`` ``[N, window]`` whose stamp is sample
    ``stamp_offset``), the window's onset strength (module docstring), float32."""
    rows = np.asarray(rows, np.int64)
    if len(rows) == 0:
        return np.zeros(0, np.float32)
    waves = torch.as_tensor(waveforms)
    length = int(round(FLUX_FRAME_S * sample_rate))
    step = hop / FLUX_STEPS
    points = stamp_offset + step * (np.arange(FLUX_STEPS + 1) - FLUX_STEPS / 2)
    starts = np.clip(np.rint(points - (1 - FLUX_AHEAD) * length).astype(np.int64), 0,
                     waves.shape[-1] - length)
    used, row_of = np.unique(rows, return_inverse=True)
    span = waves[:, starts[0]:starts[-1] + length]  # only the samples the short frames read
    window = torch.hann_window(length, periodic=True, device=waves.device)
    flux = []
    for part in np.array_split(used, max(1, -(-len(used) // BATCH))):  # bounded memory
        x = span[torch.as_tensor(part, device=waves.device)].float()
        frames = x.unfold(1, length, 1)[:, starts - starts[0]]  # [windows, steps + 1, length]
        spectrum = torch.view_as_real(torch.fft.rfft(frames * window))
        level = torch.log1p(LOG_GAIN * torch.hypot(spectrum[..., 0], spectrum[..., 1]))
        flux.append(torch.clamp(level[:, 1:] - level[:, :-1], min=0).sum(dim=-1).amax(dim=1))
    return torch.cat(flux).cpu().numpy().astype(np.float32)[row_of]
