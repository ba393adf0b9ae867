"""Shared training harness: see :mod:`notewise.training.harness` for the API and its contract."""

from .harness import (
    StepResult,
    TrainSettings,
    TrainTask,
    deterministic_metrics,
    fit,
    load_model_state,
    read_metrics,
)

__all__ = [
    "StepResult",
    "TrainSettings",
    "TrainTask",
    "deterministic_metrics",
    "fit",
    "load_model_state",
    "read_metrics",
]
