"""The package's structure, as checks: no import cycles, what each job command may import, and
that every module a job loads is inside the code its rule's code hash covers."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from notewise import kinds
from notewise.config import canonical_json
from notewise.workflow.codehash import NOTES_CODE, PACKAGE_DIR, TIMBRE_CODE

#: Modules a job loads that decide no byte of its output, beside what building the CLI's parser
#: loads (``cli_modules``): the config schema reader, the registry, the atomic file writes.
GLUE = {"notewise.config", "notewise.kinds", "notewise.atomicio"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """notewise module -> the notewise modules it imports (every import statement, function-local
    ones included; ``from package import name`` counts the submodule ``name`` when there is one,
    else the package)."""
    modules = {_module_name(p): p for p in PACKAGE_DIR.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            else:
                continue
            # importing a.b always runs a/__init__ first: an edge to one's own package is no cycle
            edges.update(t for t in targets if t in modules and t != name
                         and not name.startswith(t + "."))
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles():
    graph = import_graph()
    assert "notewise.store.meta" in graph["notewise.store.validate"]  # the graph sees imports
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_config_is_a_leaf():
    assert import_graph()["notewise.config"] == set()


# --------------------------------------------------------------------------- import budgets

SPEC = {"seed": 3, "audio": {"sample_rate": 44100, "window": 1024},
        "bins": {"n_bins": 256, "f_min": 20.0, "f_max": 5000.0}, "labels": {"sigma_bins": 1.5}}
SETTINGS = {
    "single_note": {"kind": "single_note", "samples_per_bin": 1, "velocity": 0.8, "timbre": 1},
    "random_polyphony": {"kind": "random_polyphony", "polyphony": [2], "freq_range": [50.0, 500.0],
                         "velocity_range": [0.5, 1.0], "onset_range": [-100, 100],
                         "offset_max": 8192, "timbres": [0, 1]},
    "midi_render": {"kind": "midi_render", "corpus": "bach", "timbres": [0, 1]},
    "soundfont_render": {"kind": "soundfont_render", "corpus": "bach", "programs": [0]},
}


def _run_cli(argv: list[str]) -> set[str]:
    """Run ``notewise ARGV`` in a fresh process as a job does; the modules it loaded."""
    code = ("import sys, json\nfrom notewise.cli import main\n"
            f"assert main(json.loads({json.dumps(json.dumps(argv))})) == 0\n"
            "print(json.dumps(sorted(sys.modules)))\n")
    run = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return set(json.loads(run.stdout.splitlines()[-1]))


@pytest.fixture(scope="module")
def glue() -> set[str]:
    """GLUE and every notewise module that building the CLI's parser (command modules, package
    markers, settings the subcommands' help texts read) or the kinds registry (the kinds' checks)
    loads."""
    code = ("import sys, json\nimport notewise.kinds\nfrom notewise.cli import build_parser\n"
            "build_parser()\n"
            "print(json.dumps(sorted(sys.modules)))\n")
    run = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return GLUE | {m for m in json.loads(run.stdout) if m.startswith("notewise")}


def _hashed(module: str, folders: tuple[str, ...]) -> bool:
    path = module.removeprefix("notewise.").replace(".", "/")
    return any(path == f.removesuffix(".py") or path.startswith(f + "/") for f in folders)


@pytest.fixture(scope="module")
def notes_file(tmp_path_factory):
    from notewise.music.corpus import MusicCorpus

    pieces = {"a.mid": {"start_s": np.array([0.0, 0.01]), "end_s": np.array([0.05, 0.06]),
                        "pitch": np.array([60, 64]), "velocity": np.array([90, 70]),
                        "program": np.array([0, 0]), "track": np.array([0, 1])}}
    path = tmp_path_factory.mktemp("corpus") / "notes.npz"
    MusicCorpus.from_pieces(pieces, {}).save(path)
    return path


@pytest.fixture(scope="module")
def timbre_library(tmp_path_factory, glue):
    path = tmp_path_factory.mktemp("timbres") / "timbres.npz"
    loaded = _run_cli(["build-timbres", "--count", "4", "-o", str(path)])
    assert "torch" not in loaded
    assert {m for m in loaded if m.startswith("notewise.")} - glue <= {
        m for m in loaded if _hashed(m, TIMBRE_CODE)}
    return path


@pytest.mark.parametrize("kind", sorted(kinds.KINDS))
def test_job_commands_import_budget_and_code_coverage(kind, tmp_path, timbre_library, notes_file,
                                                      glue):
    """Per kind, each command its rules run, in its own process: none imports torch (seconds per
    job); validation and meta import no Numba (a quarter of a second); every notewise module that
    generate-shard loads is in the folders the kind's code hash covers (so that changing it
    rebuilds the shards), or is glue that decides no byte."""
    spec = {**SPEC, "dataset": "t", "settings": SETTINGS[kind],
            **({"notes_file": str(notes_file)} if kinds.kind(kind).corpus else {})}
    d = tmp_path / "t"
    wave, targets = str(d / "waveforms" / "shard_00000.npy"), str(d / "targets" / "shard_00000.npz")
    steps = [
        ["generate-shard", "--spec", canonical_json({**spec, "start": 0, "count": 3}),
         "--timbres", str(timbre_library), "--waveforms", wave, "--targets", targets],
        ["validate-shard", "--spec", canonical_json(spec), "--waveforms", wave,
         "--targets", targets, "-o", str(d / "validation" / "shard_00000.json")],
        ["validate-dataset", "--spec", canonical_json(spec), "--reports",
         str(d / "validation" / "shard_00000.json"), "-o", str(d / "validation.json")],
        ["assemble-meta", "--spec", canonical_json(spec), "--validation",
         str(d / "validation.json"), "--code-hash", "x", "-o", str(d / "meta.json")],
    ]
    loaded = {argv[0]: _run_cli(argv) for argv in steps}
    assert not [command for command, modules in loaded.items() if "torch" in modules]
    assert not [command for command in ("validate-shard", "validate-dataset", "assemble-meta")
                if "numba" in loaded[command]]
    generating = {m for m in loaded["generate-shard"] if m.startswith("notewise.")}
    assert "numba" in loaded["generate-shard"] and kinds.kind(kind).generator.split(":")[0] in generating
    unhashed = generating - glue - {m for m in generating if _hashed(m, kinds.kind(kind).code)}
    assert not unhashed, f"{kind}: loaded by generate-shard, outside its code hash: {unhashed}"
    assert json.loads((d / "meta.json").read_text())["num_samples"] == 3


def test_music_notes_loads_only_what_its_code_hash_covers(tmp_path, glue):
    """Rule music_notes reruns when the code that reads the corpus changes (its code param)."""
    from midi_helpers import write_midi_file

    root = tmp_path / "corpus"
    (root / "train").mkdir(parents=True)
    write_midi_file(root / "train" / "a.mid", 500_000, [[(0, 480, 60, 100)]])
    loaded = _run_cli(["music-notes", str(root), "--split", "train", "-o",
                       str(tmp_path / "notes.npz")])
    notewise = {m for m in loaded if m.startswith("notewise.")}
    assert "notewise.midi.reading" in notewise and "torch" not in loaded
    assert not notewise - glue - {m for m in notewise if _hashed(m, NOTES_CODE)}


def test_every_rule_that_runs_notewise_has_a_code_param():
    """A rule whose output comes from package code reruns when that code changes."""
    import re

    from notewise.config import REPO_ROOT

    missing = []
    for path in sorted((REPO_ROOT / "rules").glob("*.smk")):
        text = path.read_text()
        for rule in re.finditer(r"(?ms)^(?:rule|checkpoint) (\w+):\n(.*?)(?=^\S|\Z)", text):
            body = rule.group(2)
            if re.search(r"\bnotewise\b|\{params\.launcher\}", body) and "shell:" in body \
                    and not re.search(r"^\s+code=", body, re.M):
                missing.append(f"{path.name}: {rule.group(1)}")
    assert not missing


def test_no_rule_repeats_a_section():
    """Snakemake keeps one of two ``params:`` (or other) sections of a rule and drops the other
    without a word: real_eval_predict's code hash was dropped that way."""
    import re

    from notewise.config import REPO_ROOT

    repeated = []
    for path in sorted((REPO_ROOT / "rules").glob("*.smk")):
        for rule in re.finditer(r"(?ms)^(?:rule|checkpoint) (\w+):\n(.*?)(?=^\S|\Z)",
                                path.read_text()):
            sections = re.findall(r"^    (\w+):", rule.group(2), re.M)
            repeated += [f"{path.name}: {rule.group(1)}.{name}"
                         for name in sorted(set(sections)) if sections.count(name) > 1]
    assert not repeated
