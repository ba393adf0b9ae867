"""The decoding threshold chosen on validation sets: mir_eval multipitch P / R / F per threshold.

    .venv/bin/python bench/bench_threshold.py --checkpoint results/release/pitch/model.pth \
        --sets random=results/datasets/val music=results/datasets/music_val \
        [--thresholds 0.2 0.25 0.3 0.35 0.4 0.5] [--max-windows 2048] [--refine-cents CENTS]

Scores a checkpoint like the pitch matrix does (``notewise.pitch.matrix.score_dataset``: windows
as frames, the fully labelled notes as the reference, 50 cents) at each threshold, on each set and
pooled over the sets (the mean F); prints one row per threshold and the best by mean F. Use
validation sets only: the threshold chosen here is a setting, and the test figures are reported
once, for it.
"""
from __future__ import annotations

import argparse

import torch

from notewise.pitch.inference import Predictor
from notewise.pitch.matrix import score_dataset


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--sets", nargs="+", required=True, help="name=dataset_dir")
    parser.add_argument("--thresholds", nargs="+", type=float,
                        default=[0.2, 0.25, 0.3, 0.35, 0.4, 0.5])
    parser.add_argument("--max-windows", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--refine-cents", type=float,
                        help="pitch_model.decode.refine_cents (default: the schema's)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sets = dict(item.split("=", 1) for item in args.sets)
    predictor = Predictor.load(args.checkpoint, device="cpu", refine_cents=args.refine_cents)
    table = {}
    print("threshold " + " ".join(f"{name:>20}" for name in sets) + "   mean F")
    for threshold in args.thresholds:
        predictor.threshold = threshold
        rows = {name: score_dataset(predictor, path, args.max_windows) for name, path in sets.items()}
        mean_f = sum(r["f_measure"] for r in rows.values()) / len(rows)
        table[threshold] = {"sets": rows, "mean_f": mean_f}
        print(f"{threshold:9.2f} " + " ".join(
            f"{r['precision']:.3f}/{r['recall']:.3f}/{r['f_measure']:.4f}" .rjust(20)
            for r in rows.values()) + f"   {mean_f:.4f}")
    best = max(table, key=lambda t: table[t]["mean_f"])
    print(f"best by mean F: threshold {best} (F {table[best]['mean_f']:.3f}); cells are P/R/F")
    return table


if __name__ == "__main__":
    main()
