"""The pitch model for deployment outside Python: ONNX (onnxruntime, ...) and TorchScript
(libtorch).

``notewise export-pitch CKPT OUT``: the format follows OUT's extension (``.onnx``: ONNX;
``.pt``, ``.ts``, ``.torchscript``: TorchScript). Both files take ``waveform`` ``[batch, 1,
window]`` float32 (any batch size) and give ``confidence_logits`` and ``energy_logits``
``[batch, n_bins]``, the whole model including its fixed front end (the zero-padded FFT is an
ONNX ``DFT`` node, the max-pooling onto the log grid gathers, ``Max`` and a ``ScatterND``;
opset 18 at least: torch's exporter writes 18, and its conversion down to 17 fails on this graph). Decoding (peaks, f0, energy share: ``notewise.pitch.decode``) is not
part of the file.

The model config (``PitchModelConfig.to_dict()``, JSON: window, sample rate, bin layout) travels
inside the file: the ONNX ``metadata_props`` entry ``CONFIG_KEY``, the TorchScript extra file
``CONFIG_FILE``; :func:`read_config` reads it back from either.

Every export is written to a temporary file next to OUT, checked against the PyTorch model on
:func:`probe_waveforms` (harmonic tones, a chord, silence, noise) with onnxruntime or
``torch.jit.load`` at two batch sizes, and only then renamed onto OUT: a failed export or check
leaves no file. Measured differences: ``docs/pitch_model.md``, section "Export".
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from notewise.atomicio import atomic_path
from notewise.pitch.model import CONFIG_FILE, PitchModel, PitchModelConfig, load_model

log = logging.getLogger("notewise.pitch.export")

INPUT_NAME = "waveform"
OUTPUT_NAMES = ("confidence_logits", "energy_logits")
CONFIG_KEY = "notewise.pitch_model_config"  # ONNX metadata_props: the config as JSON
IO_KEY = "notewise.io"  # ONNX metadata_props: what the input and outputs are
MIN_OPSET = 18  # torch's exporter writes 18; converting the graph down to 17 fails
DEFAULT_OPSET = 18
# The check before the rename: max |exported - PyTorch| over the logits. float32 FFTs of
# window * fft_oversample points (8192 by default) in two libraries differ by ~1e-7 of the
# spectrum's peak; the dB map and the stack turn that into logit differences of ~1e-4 on trained
# weights (5.2e-4 at worst over 200 windows, 8.6e-5 on the check's own windows; figures in
# docs/pitch_model.md). 5e-3 (a probability difference below 1.3e-3) is 10x the worst measured
# and still fails a wrong graph, whose logits differ by O(1).
DEFAULT_ATOL = 5e-3
CHECK_BATCHES = (1, 5)  # the dynamic batch axis is checked at a size other than the traced one
FORMATS = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript",
           ".torchscript": "torchscript"}


def load_checkpoint(path) -> PitchModel:
    """``load_model`` with errors that name the file: ``FileNotFoundError`` if it (or the
    ``model_config.json`` a harness checkpoint needs) is missing, ``ValueError`` if unreadable."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"pitch checkpoint {path} does not exist")
    try:
        return load_model(path)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"pitch checkpoint {path}: {err}") from err
    except Exception as err:  # torch.load, JSON, state_dict mismatch: all "not a checkpoint"
        raise ValueError(f"pitch checkpoint {path} is unreadable: {type(err).__name__}: "
                         f"{err}") from err


def _model(model_or_checkpoint) -> PitchModel:
    """A CPU float32 eval-mode copy (the caller's model keeps its device and mode)."""
    if isinstance(model_or_checkpoint, PitchModel):
        return copy.deepcopy(model_or_checkpoint).cpu().float().eval()
    return load_checkpoint(model_or_checkpoint)


def config_json(cfg: PitchModelConfig) -> str:
    return json.dumps(cfg.to_dict(), sort_keys=True)


def io_description(cfg: PitchModelConfig) -> str:
    return (f"input {INPUT_NAME} [batch, 1, {cfg.window}] float32 audio at {cfg.sample_rate} Hz"
            f" (any level: the model scales to unit RMS); outputs {', '.join(OUTPUT_NAMES)}"
            f" [batch, {cfg.n_bins}], logits per log-frequency bin (bin i at f_min * (f_max /"
            f" f_min) ** (i / (n_bins - 1)) Hz; sigmoid of the confidence, softmax over bins of"
            f" the energy)")


def probe_waveforms(cfg: PitchModelConfig, batch: int = 5, seed: int = 0) -> torch.Tensor:
    """``[batch, 1, window]`` real-looking windows, cycling through: a harmonic tone, a chord of
    three, silence, white noise, a quiet low tone in noise (each with random phases)."""
    rng = np.random.default_rng(seed)
    t = np.arange(cfg.window) / cfg.sample_rate

    def harmonic(freq: float) -> np.ndarray:
        parts = [0.6 ** k * np.sin(2 * np.pi * k * freq * t + rng.uniform(0, 2 * np.pi))
                 for k in range(1, 8) if k * freq < cfg.sample_rate / 2]
        return np.sum(parts, axis=0)

    kinds = [
        lambda: 0.5 * harmonic(rng.uniform(100, 1000)),
        lambda: 0.2 * sum(harmonic(f) for f in (261.63, 329.63, 392.0)),
        lambda: np.zeros(cfg.window),
        lambda: 0.1 * rng.standard_normal(cfg.window),
        lambda: 0.01 * harmonic(rng.uniform(40, 120)) + 1e-3 * rng.standard_normal(cfg.window),
    ]
    rows = [kinds[i % len(kinds)]() for i in range(batch)]
    return torch.tensor(np.stack(rows)[:, None, :], dtype=torch.float32)


def _reference(model: PitchModel, waveform: torch.Tensor) -> list[np.ndarray]:
    with torch.no_grad():
        return [out.numpy() for out in model(waveform)]


def _max_diff(got, want) -> dict[str, float]:
    return {name: float(np.max(np.abs(np.asarray(g, np.float64) - w)))
            for name, g, w in zip(OUTPUT_NAMES, got, want)}


def _check(diffs: dict[str, float], atol: float, what: str) -> None:
    bad = {k: v for k, v in diffs.items() if not v <= atol}  # NaN fails too
    if bad:
        raise ValueError(f"{what} does not match the PyTorch model: max |difference| {bad} > "
                         f"{atol}")


def compare_onnx(path, model: PitchModel, batches=CHECK_BATCHES) -> dict[str, float]:
    """Max |onnxruntime - PyTorch| per output over :func:`probe_waveforms` at each batch size."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    diffs: dict[str, float] = {}
    for batch in batches:
        waveform = probe_waveforms(model.cfg, batch)
        got = session.run(list(OUTPUT_NAMES), {INPUT_NAME: waveform.numpy()})
        for name, value in _max_diff(got, _reference(model, waveform)).items():
            diffs[name] = max(diffs.get(name, 0.0), value)
    return diffs


def compare_torchscript(path, model: PitchModel, batches=CHECK_BATCHES) -> dict[str, float]:
    """Max |TorchScript (reloaded) - PyTorch| per output, as :func:`compare_onnx`."""
    loaded = torch.jit.load(str(path), map_location="cpu")
    diffs: dict[str, float] = {}
    for batch in batches:
        waveform = probe_waveforms(model.cfg, batch)
        with torch.no_grad():
            got = [out.numpy() for out in loaded(waveform)]
        for name, value in _max_diff(got, _reference(model, waveform)).items():
            diffs[name] = max(diffs.get(name, 0.0), value)
    return diffs


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter's noise off the terminal: torchvision-not-installed warnings and the graph
    optimiser's INFO lines (logging), ``torch.jit`` deprecation warnings, torch.export's
    FutureWarnings."""
    quiet = {"torch.onnx": logging.ERROR, "onnx_ir": logging.WARNING,
             "onnxscript": logging.WARNING}
    loggers = [logging.getLogger(name) for name in quiet]
    levels = [logger.level for logger in loggers]
    try:
        for logger, level in zip(loggers, quiet.values()):
            logger.setLevel(level)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.")
            warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated")
            warnings.filterwarnings("ignore", category=FutureWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _want_check(check: bool | None, module: str) -> bool:
    if check is not None:
        return check
    try:
        __import__(module)
    except ImportError:
        log.warning("%s is not installed: the export is not checked against PyTorch", module)
        return False
    return True


def export_onnx(model_or_checkpoint, path, *, opset: int = DEFAULT_OPSET,
                check: bool | None = None, atol: float = DEFAULT_ATOL) -> dict[str, float]:
    """Write the model as one self-contained ONNX file (weights inside, config in
    ``metadata_props``) with a dynamic batch axis, atomically.

    ``check`` (default: when onnxruntime is installed) runs the file with onnxruntime before the
    rename and raises ``ValueError`` (leaving no file) if an output differs from PyTorch by more
    than ``atol``. Returns the max differences per output ({} when not checked).
    """
    if int(opset) < MIN_OPSET:
        raise ValueError(f"ONNX opset {opset} is too old for the pitch model: its front end's"
                         f" graph needs opset {MIN_OPSET} or newer (torch's exporter cannot convert it to an"
                         f" older one)")
    try:
        import onnx  # noqa: F401  (both needed by torch's exporter)
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise ImportError(f"ONNX export needs onnx and onnxscript (pip install "
                          f"'notewise[export]'): {err}") from err
    model = _model(model_or_checkpoint)
    cfg = model.cfg
    check = _want_check(check, "onnxruntime")
    example = probe_waveforms(cfg, 2)
    batch = torch.export.Dim("batch", min=1)
    with _quiet_exporter():
        try:
            program = torch.onnx.export(
                model, (example,), dynamo=True, opset_version=int(opset), verbose=False,
                input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                dynamic_shapes={INPUT_NAME: {0: batch}})
        except Exception as err:
            raise ValueError(f"ONNX export of the pitch model failed: {type(err).__name__}: "
                             f"{err}") from err
    got_opset = program.model.opset_imports.get("", None)
    if got_opset != int(opset):  # the exporter falls back silently when it cannot convert
        raise ValueError(f"ONNX export: asked for opset {opset}, the exporter produced "
                         f"{got_opset}")
    program.model.metadata_props[CONFIG_KEY] = config_json(cfg)
    program.model.metadata_props[IO_KEY] = io_description(cfg)
    program.model.doc_string = "notewise pitch model: " + io_description(cfg)
    diffs: dict[str, float] = {}
    with atomic_path(path) as tmp:
        program.save(tmp, external_data=False)
        if check:
            diffs = compare_onnx(tmp, model)
            _check(diffs, atol, f"ONNX export {path}")
    return diffs


def export_torchscript(model_or_checkpoint, path, *, check: bool = True,
                       atol: float = DEFAULT_ATOL) -> dict[str, float]:
    """Write the model as a traced TorchScript file (``torch.jit.load`` in Python or
    ``torch::jit::load`` in C++), the config as its extra file ``model_config.json``, atomically;
    ``check`` reloads it and compares with PyTorch as :func:`export_onnx` does."""
    model = _model(model_or_checkpoint)
    cfg = model.cfg
    # traced at batch 2, its check at another size: the batch stays symbolic in the graph
    example, other = probe_waveforms(cfg, 2), probe_waveforms(cfg, 3, seed=1)
    with _quiet_exporter(), torch.no_grad():
        try:
            traced = torch.jit.trace(model, (example,), check_inputs=[(other,)])
        except Exception as err:
            raise ValueError(f"TorchScript export of the pitch model failed: "
                             f"{type(err).__name__}: {err}") from err
    extra = {CONFIG_FILE: config_json(cfg), "io.txt": io_description(cfg)}
    diffs: dict[str, float] = {}
    with atomic_path(path) as tmp:
        with _quiet_exporter():
            torch.jit.save(traced, str(tmp), _extra_files=extra)
            if check:
                diffs = compare_torchscript(tmp, model)
        if check:
            _check(diffs, atol, f"TorchScript export {path}")
    return diffs


def export_format(path) -> str:
    """``"onnx"`` or ``"torchscript"`` from ``path``'s extension; ``ValueError`` otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unknown export extension {suffix or '(none)'!r}; use .onnx "
                         f"(ONNX) or .pt, .ts, .torchscript (TorchScript)")
    return FORMATS[suffix]


def export_pitch(checkpoint, out, *, opset: int = DEFAULT_OPSET, check: bool | None = None,
                 atol: float = DEFAULT_ATOL) -> dict[str, float]:
    """``notewise export-pitch``: the checkpoint (or model) to ``out``, format by extension."""
    fmt = export_format(out)  # before loading anything: a bad name fails fast
    model = _model(checkpoint)
    if fmt == "onnx":
        return export_onnx(model, out, opset=opset, check=check, atol=atol)
    return export_torchscript(model, out, check=True if check is None else check, atol=atol)


def read_config(path) -> PitchModelConfig:
    """The model config stored in an exported file (either format)."""
    path = Path(path)
    if export_format(path) == "onnx":
        import onnx

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False)
                 .metadata_props}
        if CONFIG_KEY not in props:
            raise ValueError(f"{path}: no {CONFIG_KEY} in its metadata (not a notewise export)")
        text = props[CONFIG_KEY]
    else:
        files = {CONFIG_FILE: ""}
        with _quiet_exporter():
            torch.jit.load(str(path), map_location="cpu", _extra_files=files)
        if not files[CONFIG_FILE]:
            raise ValueError(f"{path}: no {CONFIG_FILE} inside (not a notewise export)")
        text = files[CONFIG_FILE]
    return PitchModelConfig.from_dict(json.loads(text))


__all__ = ["export_onnx", "export_torchscript", "export_pitch", "export_format", "read_config",
           "load_checkpoint", "probe_waveforms", "compare_onnx", "compare_torchscript",
           "INPUT_NAME", "OUTPUT_NAMES", "CONFIG_KEY", "MIN_OPSET", "DEFAULT_OPSET",
           "DEFAULT_ATOL"]
