"""``notewise`` subcommands of the pitch model: train-pitch, evaluate-pitch, plot-pitch, predict,
package-release, export-pitch.

Handlers import torch (through the pitch modules) inside themselves, so ``notewise --help`` and
the data-generation commands start without it. The workflow passes the ``pitch_model`` settings
as one JSON object (``--spec``, inline or ``@file``), built by
:func:`notewise.pitch.settings.pitch_settings`; ``--config config.yaml`` does the same from a
workflow config file for use by hand.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

log = logging.getLogger("notewise.pitch")

DEFAULT_CHECKPOINT = "results/models/pitch/model.pth"


def _settings(args: argparse.Namespace) -> dict:
    from notewise.atomicio import read_json_argument
    from notewise.pitch.settings import pitch_settings

    if args.spec:
        return pitch_settings(read_json_argument(args.spec))
    import yaml

    with open(args.config) as fh:
        return pitch_settings(yaml.safe_load(fh))


def _add_settings(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--spec", help="settings JSON ({'audio','bins','pitch_model'}), or @file")
    group.add_argument("--config", default="config.yaml",
                       help="workflow config file to read the settings from (default: %(default)s)")


def train_pitch(args: argparse.Namespace) -> None:
    from notewise.pitch.train import train_pitch as train

    settings = _settings(args)
    if args.epochs is not None:
        settings["train"]["epochs"] = args.epochs
    history = train(settings, args.train, args.val, args.output, progress=not args.no_progress)
    if history:
        log.info("trained %d epochs; last: %s", len(history), history[-1])


def evaluate_pitch(args: argparse.Namespace) -> None:
    from notewise.pitch.evaluate import evaluate_pitch as evaluate

    summary = evaluate(_settings(args), args.checkpoint, args.single_note, args.polyphonic,
                       args.output)
    log.info("evaluation: %s", json.dumps({k: summary[k] for k in ("single_note", "polyphonic")
                                           if k in summary}))


def plot_pitch(args: argparse.Namespace) -> None:
    from notewise.pitch.plots import plot_pitch as plot

    for path in plot(_settings(args), args.metrics, args.eval_dir, args.checkpoint,
                     args.examples, args.output):
        log.info("wrote %s", path)


def predict(args: argparse.Namespace) -> None:
    import torch

    from notewise.pitch.predict import write_prediction

    torch.set_num_threads(args.threads)
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    out = args.output if args.output and args.output != "-" else sys.stdout
    table = write_prediction(args.audio, args.checkpoint, out, hop=args.hop,
                             stamp=args.stamp, threshold=args.threshold,
                             onset_threshold=args.onset_threshold,
                             min_duration=args.min_duration, batch_size=args.batch_size,
                             device=args.device, nonfinite=args.nonfinite,
                             refine_cents=args.refine_cents)
    log.info("%d rows; %.2f s wall, %.2f s CPU", len(table), time.perf_counter() - wall_start,
             time.process_time() - cpu_start)


def package_release(args: argparse.Namespace) -> None:
    from notewise.atomicio import read_json_argument
    from notewise.pitch.release import package_release as package

    package(args.model_dir, args.scores, args.summary, args.output,
            read_json_argument(args.recipe, "--recipe"), args.real_eval, args.melody)
    log.info("packaged %s into %s", args.model_dir, args.output)


def export_pitch(args: argparse.Namespace) -> None:
    from notewise.pitch.export import export_pitch as export

    try:
        diffs = export(args.checkpoint, args.output, opset=args.opset, atol=args.atol)
    except ImportError as err:  # onnx/onnxscript missing: a message, not a traceback
        raise ValueError(str(err)) from err
    log.info("wrote %s%s", args.output,
             f"; max |difference| from PyTorch: {diffs}" if diffs else " (not checked)")


def register(subparsers) -> None:
    p = subparsers.add_parser("train-pitch", help="train the pitch model (resumes a checkpoint)")
    _add_settings(p)
    p.add_argument("--train", required=True, help="training dataset directory")
    p.add_argument("--val", help="validation dataset directory")
    p.add_argument("-o", "--output", default="results/models/pitch",
                   help="model directory (default: %(default)s)")
    p.add_argument("--epochs", type=int, help="override pitch_model.train.epochs")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=train_pitch)

    p = subparsers.add_parser("evaluate-pitch", help="evaluate a pitch model checkpoint")
    _add_settings(p)
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    p.add_argument("--single-note", help="single-note dataset directory (the sanity set)")
    p.add_argument("--polyphonic", help="polyphonic dataset directory (the test set)")
    p.add_argument("-o", "--output", default="results/eval/pitch")
    p.set_defaults(func=evaluate_pitch)

    p = subparsers.add_parser("plot-pitch", help="draw the pitch model's figures")
    _add_settings(p)
    p.add_argument("--metrics", default="results/models/pitch/metrics.json")
    p.add_argument("--eval-dir", default="results/eval/pitch")
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    p.add_argument("--examples", required=True, help="dataset to draw example windows from")
    p.add_argument("-o", "--output", default="results/plots/pitch")
    p.set_defaults(func=plot_pitch)

    p = subparsers.add_parser("predict", help="notes of an audio file: MIDI, note CSV or frame CSV")
    p.add_argument("audio", help="audio file: any format libsndfile reads (WAV, FLAC, OGG, MP3),"
                                 " any sample rate and channel count")
    p.add_argument("--checkpoint",
                   help="model file or directory (default: the released model in the package)")
    p.add_argument("--hop", type=int, default=441, help="samples at 44.1 kHz between windows")
    p.add_argument("--stamp", type=float,
                   help="where in its window a window's notes are placed in time, a fraction of"
                        " the window: 0.5 its centre, 1.0 its end (default:"
                        " pitch_model.decode.stamp, measured on validation music)")
    p.add_argument("--threshold", type=float,
                   help="confidence threshold of a frame (default: pitch_model.decode.threshold,"
                        " 0.3)")
    p.add_argument("--refine-cents", type=float,
                   help="how far a note's f0 may move to its fundamental's reassigned frequency"
                        " (default: pitch_model.decode.refine_cents, 25; 0: the model's f0)")
    p.add_argument("--onset-threshold", type=float, default=0.5,
                   help="a note is kept if one of its frames reaches this (hysteresis; notes only)")
    p.add_argument("--min-duration", type=float, default=0.05,
                   help="shortest note kept, in seconds (notes only)")
    p.add_argument("--nonfinite", choices=("error", "zero"), default="error",
                   help="NaN/inf samples: refuse the file (default) or set them to zero")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", help="cpu, cuda, ... (default: cuda if available)")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads (default 1: the least CPU time per audio minute; on a"
                        " shared machine more threads spin and cost up to 5x; run files in"
                        " parallel instead)")
    p.add_argument("-o", "--output",
                   help="song.mid (MIDI), song.notes.csv (notes), song.melody.csv (a melody"
                        " note per frame), any other name a frame CSV"
                        " (default: the frame CSV on standard output)")
    p.set_defaults(func=predict)

    p = subparsers.add_parser("package-release",
                              help="copy a trained model and its metrics into the package")
    p.add_argument("--model-dir", required=True, help="release_train's model directory")
    p.add_argument("--scores", required=True, help="release_score's JSON")
    p.add_argument("--summary", required=True, help="release_evaluate's summary.json")
    p.add_argument("--real-eval", help="the real-instrument table (CSV), where there is one")
    p.add_argument("--melody", help="the real-instrument melody table (CSV), where there is one")
    p.add_argument("--recipe", required=True, help="the settings it was trained with (JSON or @file)")
    p.add_argument("-o", "--output", required=True, help="the package's release directory")
    p.set_defaults(func=package_release)

    p = subparsers.add_parser("export-pitch", help="the pitch model as ONNX or TorchScript")
    p.add_argument("checkpoint", help="model.pth, its checkpoint directory, or a save_model file")
    p.add_argument("output", help="out.onnx (ONNX) or out.pt / .ts / .torchscript (TorchScript)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset, 18 or newer (default: 18)")
    p.add_argument("--atol", type=float, default=5e-3,
                   help="largest |exported - PyTorch| logit accepted by the check before the file"
                        " is written (default: %(default)s)")
    p.set_defaults(func=export_pitch)
