"""The ``midi`` settings of ``midi-train``: one set of defaults for the CLI and the workflow.

The defaults live in ``workflow/schemas/config.schema.yaml`` (section ``midi``), as for every
other section; ``midi-train``'s flags default to them, and the workflow passes its ``midi``
section as one JSON object (``--spec``). A flag given on the command line overrides the spec.
Importing this module does not import torch.
"""

from __future__ import annotations


from notewise.atomicio import read_json_argument
from notewise.config import ConfigError, fill_defaults, load_schema

#: midi-train flag (argparse dest) -> (section, key) of the ``midi`` settings.
TRAIN_FLAGS = {
    "num_epochs": ("train", "epochs"),
    "min_sequence_length": ("train", "min_sequence_length"),
    "max_sequence_length": ("train", "max_sequence_length"),
    "max_batch_size": ("train", "max_batch_size"),
    "learning_rate": ("train", "lr"),
    "weight_decay": ("train", "weight_decay"),
    "warmup_steps": ("train", "warmup_steps"),
    "schedule": ("train", "schedule"),
    "amp": ("train", "amp"),
    "seed": ("train", "seed"),
    "device": ("train", "device"),
    "d_model": ("model", "d_model"),
    "layers": ("model", "layers"),
    "heads": ("model", "heads"),
    "context": ("model", "context"),
    "dropout": ("model", "dropout"),
    "timeout": ("read", "timeout"),
    "max_bytes": ("read", "max_bytes"),
}


def midi_settings(section: dict | None = None) -> dict:
    """``section`` (a partial ``midi:`` config) with every schema default filled in."""
    return fill_defaults(load_schema()["properties"]["midi"], section or {})


def default(section: str, key: str):
    """The schema default of ``midi.<section>.<key>``."""
    return midi_settings()[section][key]


def parse_spec(text: str | None) -> dict:
    """A ``--spec`` value (JSON text, or ``@file``) -> the full ``midi`` settings."""
    if not text:
        return midi_settings()
    try:
        spec = read_json_argument(text)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if not isinstance(spec, dict):
        raise ConfigError(f"--spec must be a JSON object, not {type(spec).__name__}")
    unknown = sorted(set(spec) - set(load_schema()["properties"]["midi"]["properties"]))
    if unknown:
        raise ConfigError(f"--spec: unknown midi key(s) {', '.join(unknown)}")
    return midi_settings(spec)


def resolve_train_args(args) -> None:
    """Fill every ``midi-train`` flag left unset (None) from ``--spec`` or the defaults."""
    settings = parse_spec(getattr(args, "spec", None))
    for dest, (section, key) in TRAIN_FLAGS.items():
        if getattr(args, dest, None) is None:
            setattr(args, dest, settings[section][key])


def section_settings(args, section: str, flags: tuple[str, ...]) -> dict:
    """``midi.<section>`` as a command uses it: the schema defaults, then ``--spec`` (a full or
    partial ``midi`` settings object, what the rules pass), then each of ``flags`` (argparse dests
    named as the section's keys) given on the command line."""
    settings = dict(parse_spec(getattr(args, "spec", None))[section])
    for key in flags:
        if getattr(args, key, None) is not None:
            settings[key] = getattr(args, key)
    return settings
