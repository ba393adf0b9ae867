"""Export of the pitch model (``notewise export-pitch``): ONNX run by onnxruntime and TorchScript
reloaded give the PyTorch logits, with any batch size; the config travels in the file; the CLI
picks the format by extension and leaves no file when anything fails."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from notewise.cli import main
from notewise.pitch.export import (
    CONFIG_KEY,
    INPUT_NAME,
    OUTPUT_NAMES,
    export_onnx,
    export_torchscript,
    read_config,
)
from notewise.pitch.model import CONFIG_FILE, PitchModel, PitchModelConfig, load_model

from pitch_helpers import synthetic_windows

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*deprecated:DeprecationWarning")

SMALL = PitchModelConfig(width=8, dilations=(1, 2))
# float32 logits of two FFT implementations (pocketfft in torch, onnxruntime's radix-2 DFT) of
# window * fft_oversample points: the spectra differ by ~1e-7 of their peak, which the dB map,
# the level scaling and a few convolutions turn into logit differences of ~1e-5 for these random
# weights (measured 1.0e-5 to 1.4e-5; a trained model, with larger logits, reaches 5.2e-4 at worst
# over 200 windows, hence the exporter's own check at 5e-3). 1e-3 logit (a probability difference
# below 2.5e-4, far under any decoding threshold's resolution) keeps a wide margin here and fails
# any graph that computes something else (differences O(1)).
ATOL = 1e-3


def waveforms(batch: int, seed: int = 0) -> torch.Tensor:
    """Harmonic tones and chords (1-3 notes), and in every fourth row from the second on
    silence, in the third white noise, in the fourth a quiet tone in noise."""
    waves, *_ = synthetic_windows(batch, seed=seed)
    rng = np.random.default_rng(seed)
    for i in range(batch):
        if i % 4 == 1:
            waves[i] = 0.0
        elif i % 4 == 2:
            waves[i] = 0.1 * rng.standard_normal(waves.shape[1])
        elif i % 4 == 3:
            waves[i] = 1e-3 * waves[i] + 1e-4 * rng.standard_normal(waves.shape[1])
    return torch.from_numpy(waves).unsqueeze(1)


def needs_onnx() -> None:
    """Skip where the ONNX tool chain is missing (the ``export`` extra; ``dev`` pulls it)."""
    for module in ("onnxruntime", "onnxscript", "onnx"):
        pytest.importorskip(module)


def reference(model: PitchModel, x: torch.Tensor) -> list[np.ndarray]:
    with torch.no_grad():
        return [out.numpy() for out in model(x)]


def untrained(cfg: PitchModelConfig, seed: int = 0) -> PitchModel:
    """A model with random weights and non-trivial BatchNorm statistics (as after training)."""
    torch.manual_seed(seed)
    model = PitchModel(cfg)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A harness-style checkpoint directory: ``model.pth`` (state_dict) + ``model_config.json``."""
    path = tmp_path_factory.mktemp("ckpt")
    torch.save(untrained(SMALL).state_dict(), path / "model.pth")
    (path / CONFIG_FILE).write_text(json.dumps(SMALL.to_dict()))
    return path


@pytest.fixture(scope="module")
def onnx_file(checkpoint, tmp_path_factory):
    """The checkpoint exported by the CLI (``.onnx``)."""
    needs_onnx()
    out = tmp_path_factory.mktemp("onnx") / "pitch.onnx"
    assert main(["export-pitch", str(checkpoint / "model.pth"), str(out)]) == 0
    return out


def run_onnx(path, x: torch.Tensor) -> list[np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(list(OUTPUT_NAMES), {INPUT_NAME: x.numpy()})


def assert_close(got, want, atol: float) -> None:
    for name, g, w in zip(OUTPUT_NAMES, got, want):
        assert g.shape == w.shape, name
        diff = np.abs(g - w).max()
        assert diff <= atol, f"{name}: max |difference| {diff}"


def test_onnx_matches_pytorch_at_any_batch_size(onnx_file, checkpoint):
    model = load_model(checkpoint)
    for batch in (1, 5, 8):  # exported at batch 2: the batch axis is dynamic
        x = waveforms(batch, seed=batch)
        want = reference(model, x)
        assert_close(run_onnx(onnx_file, x), want, ATOL)
    # not trivially equal: the windows give different logits, and ones that a wrong front end
    # (say, no pooling of the high bins, or a phase-sensitive spectrum) would change
    assert np.abs(want[0][0] - want[0][1]).max() > 0.1


def test_onnx_file_is_self_contained_and_holds_the_config(onnx_file):
    import onnx

    proto = onnx.load(str(onnx_file))
    onnx.checker.check_model(proto)
    assert not [p for p in onnx_file.parent.iterdir() if p != onnx_file]  # no .data, no temp
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props[CONFIG_KEY]) == SMALL.to_dict()
    assert read_config(onnx_file) == SMALL
    (inp,) = proto.graph.input
    assert inp.name == INPUT_NAME
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [1, SMALL.window]
    assert [o.name for o in proto.graph.output] == list(OUTPUT_NAMES)
    ops = {node.op_type for node in proto.graph.node}
    assert {"DFT", "ScatterND"} <= ops  # the front end is inside the file


def test_onnx_of_the_default_model(tmp_path):
    needs_onnx()
    model = untrained(PitchModelConfig(), seed=1)
    out = tmp_path / "default.onnx"
    diffs = export_onnx(model, out)  # the exporter checks too (and reports what it measured)
    assert set(diffs) == set(OUTPUT_NAMES) and max(diffs.values()) <= ATOL
    assert model.training is False and next(model.parameters()).device.type == "cpu"
    x = waveforms(3, seed=7)
    assert_close(run_onnx(out, x), reference(model, x), ATOL)
    assert read_config(out) == PitchModelConfig()


@pytest.mark.skipif("stride" not in PitchModelConfig.__dataclass_fields__,
                    reason="this model has no coarser stack grid (stride)")
def test_onnx_of_a_strided_model(tmp_path):
    """The coarser internal grid (reshape/permute in front end and head) exports too."""
    needs_onnx()
    model = untrained(PitchModelConfig(width=8, dilations=(1, 2), stride=4))
    out = tmp_path / "strided.onnx"
    export_onnx(model, out)
    x = waveforms(5, seed=3)
    assert_close(run_onnx(out, x), reference(model, x), ATOL)


def test_torchscript_round_trip(checkpoint, tmp_path):
    out = tmp_path / "pitch.ts"
    assert main(["export-pitch", str(checkpoint), str(out)]) == 0  # a checkpoint directory
    model = load_model(checkpoint)
    files = {CONFIG_FILE: ""}
    loaded = torch.jit.load(str(out), _extra_files=files)
    assert json.loads(files[CONFIG_FILE]) == SMALL.to_dict()
    assert read_config(out) == SMALL
    for batch in (1, 5):  # traced at batch 2
        x = waveforms(batch, seed=10 + batch)
        with torch.no_grad():
            got = [o.numpy() for o in loaded(x)]
        assert_close(got, reference(model, x), 1e-6)  # the same kernels: equal up to rounding


def test_torchscript_of_the_default_model(tmp_path):
    model = untrained(PitchModelConfig(), seed=2)
    out = tmp_path / "default.pt"
    assert max(export_torchscript(model, out).values()) <= 1e-6
    x = waveforms(2, seed=5)
    with torch.no_grad():
        got = [o.numpy() for o in torch.jit.load(str(out))(x)]
    assert_close(got, reference(model, x), 1e-6)


@pytest.mark.parametrize("name", ["model.h5", "model", "model.onnx.bak"])
def test_cli_rejects_an_unknown_extension(checkpoint, tmp_path, caplog, name):
    out = tmp_path / name
    assert main(["export-pitch", str(checkpoint), str(out)]) == 1
    suffix = out.suffix or "(none)"
    assert suffix in caplog.text and ".onnx" in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_cli_names_a_missing_or_unreadable_checkpoint(tmp_path, caplog):
    missing = tmp_path / "nope" / "model.pth"
    out = tmp_path / "out" / "pitch.pt"
    assert main(["export-pitch", str(missing), str(out)]) == 1
    assert str(missing) in caplog.text and "does not exist" in caplog.text
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    caplog.clear()
    assert main(["export-pitch", str(garbage), str(out)]) == 1
    assert str(garbage) in caplog.text and "unreadable" in caplog.text
    no_config = tmp_path / "no_config"
    no_config.mkdir()
    torch.save(PitchModel(SMALL).state_dict(), no_config / "model.pth")
    caplog.clear()
    assert main(["export-pitch", str(no_config / "model.pth"), str(out)]) == 1
    assert CONFIG_FILE in caplog.text
    assert not out.exists() and not (tmp_path / "out").exists()


def test_a_failed_check_leaves_no_file_and_keeps_the_old_one(tmp_path):
    model = untrained(SMALL)
    out = tmp_path / "pitch.pt"
    out.write_bytes(b"the previous export")
    with pytest.raises(ValueError, match="does not match the PyTorch model"):
        export_torchscript(model, out, atol=-1.0)  # no difference passes a negative tolerance
    assert out.read_bytes() == b"the previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["pitch.pt"]  # no temporary file left


def test_a_failed_onnx_check_leaves_no_file(tmp_path):
    needs_onnx()
    out = tmp_path / "pitch.onnx"
    with pytest.raises(ValueError, match="does not match the PyTorch model"):
        export_onnx(untrained(SMALL), out, atol=-1.0)
    assert list(tmp_path.iterdir()) == []


def test_an_opset_older_than_the_exporters_is_refused(checkpoint, tmp_path, caplog):
    out = tmp_path / "pitch.onnx"
    assert main(["export-pitch", str(checkpoint), str(out), "--opset", "17"]) == 1
    assert "opset 17" in caplog.text and "18" in caplog.text
    assert list(tmp_path.iterdir()) == []
