"""Which source decides each pitch stage, and its hash (a Snakemake param of the stage's rules).

A module of its own, in no stage's training hash: adding a file to a stage's list reruns that
stage only, not the training of every model.
"""

from __future__ import annotations


#: Source files and folders (under ``src/notewise``) whose code decides each pitch rule's
#: outputs: the rules take ``code_hash(stage)`` as a param, so editing them reruns the stage (and
#: what follows it), and a resumable training checkpoint made by other code is discarded rather
#: than resumed. Files rather than the whole ``pitch`` folder: a plot edit must not retrain.
CODE = {
    "train": ("pitch/model.py", "pitch/loss.py", "pitch/train.py", "pitch/settings.py",
              "training/harness.py", "training/checkpoint.py", "training/distributed.py",
              "loading"),
    "evaluate": ("pitch/decode.py", "pitch/reassign.py", "pitch/inference.py",
                 "pitch/evaluate.py"),
    "plots": ("pitch/plots.py",),
}
CODE["matrix_train"] = CODE["train"] + ("pitch/matrix.py", "pitch/matrix_commands.py")
CODE["matrix"] = CODE["matrix_train"] + CODE["evaluate"]
CODE["real_eval"] = ("pitch/real_eval.py", "pitch/peers.py", "music")
#: Scoring also picks the melody from predict's frames.
CODE["real_eval_score"] = CODE["real_eval"] + ("pitch/notes.py",)
#: ``notewise predict`` and what it loads (model, decoding, notes, export): the whole package.
CODE["predict"] = ("pitch",)
CODE["release"] = ("pitch/release.py",)


def code_hash(stage: str) -> str:
    """16 hex digits of sha256 over the source of ``CODE[stage]``."""
    from notewise.workflow.codehash import source_hash

    if stage not in CODE:
        raise KeyError(f"no pitch stage {stage!r}; stages: {sorted(CODE)}")
    return source_hash(CODE[stage])


__all__ = ["CODE", "code_hash"]
