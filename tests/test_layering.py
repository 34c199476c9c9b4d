"""Imports point down, by folder: the rooms' rules, read from the source, and what start-up loads.

The rooms, bottom to top (``LAYERS``): a module may import its own room and any room in a
lower layer, never one beside or above it, so no two rooms can import each other. A few
rooms have a rule of their own (``ONLY_IMPORTED_BY``, ``THIRD_PARTY``). Imports inside
functions count as much as those at the top: moving an import into a function hides a
cycle from Python, not from this test.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lstmlm"

LAYERS: list[set[str]] = [
    {"errors", "files"},  # the one-line error type; atomic writes
    {"config"},  # every setting, declared once; no torch
    {"runtime", "data"},  # device, precision, signals, process groups; text, tokenizers, batches
    {"model"},  # the cells as equations, stacks, the LM; fast paths
    {"runs"},  # the run folder: read, write, load a run
    {"generate", "evaluation", "export", "embeddings"},  # sampling; perplexity; ONNX/TorchScript; embed
    {"scoring"},  # minimal pairs and surprisal (reads evaluation's windows, generation's prompts)
    {"analysis"},  # traces, units, plots (scores pairs to find units)
    {"api", "training"},  # lstmlm.load(...) and lstmlm train: neither imports the other
    {"train_from_python", "view"},  # lstmlm.train(...); lstmlm view (the page and its server, on lstmlm.load)
    {"cli"},  # parse, call the library, print
    {"__main__"},  # python -m lstmlm
]
ONLY_IMPORTED_BY = {
    # nothing outside training/ and the train command imports the loop
    "training": {"training", "cli/train_command.py", "train_from_python.py"},
}
THIRD_PARTY = {
    # library -> the rooms (or files) that may import it
    "typer": {"cli"},
    "rich": {"cli"},
    "datasets": {"data/corpus.py", "scoring/suites.py"},
    "tokenizers": {"data/tokenizer.py", "data/pre_tokenize.py"},
    "matplotlib": {"analysis/plots.py"},
    "safetensors": {"runs/checkpoint.py"},
    "starlette": {"view/server.py"},
    "uvicorn": {"view/server.py"},
    "torch": {
        "runtime",
        "data",
        "model",
        "runs",
        "generate",
        "evaluation",
        "export",
        "embeddings",
        "scoring",
        "analysis",
        "api",
        "training",
        "train_from_python",
        "view",
        "cli",
    },  # fmt: skip  (not config, errors, files)
}


def room_of(relative: str) -> str:
    """``runs/folder.py`` -> ``runs``; ``api.py`` -> ``api``."""
    return relative.split("/")[0].removesuffix(".py")


def imports(source: str) -> Iterator[str]:
    """Every module ``source`` imports, at the top or inside a function (``lstmlm.x.y``, ``torch``)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "lstmlm":
                yield from (f"lstmlm.{alias.name}" for alias in node.names)
            else:
                yield node.module


def imported_room(module: str) -> str | None:
    """The room an ``lstmlm`` import lands in, None for the package itself (``__version__``)."""
    parts = module.split(".")
    if parts[0] != "lstmlm" or len(parts) == 1 or parts[1] == "__version__":
        return None
    return parts[1]


def allowed(relative: str, rooms_or_files: set[str]) -> bool:
    return room_of(relative) in rooms_or_files or relative in rooms_or_files


def layer(room: str) -> int:
    return next(i for i, rooms in enumerate(LAYERS) if room in rooms)


def violations(relative: str, source: str) -> list[str]:
    """What breaks the rules in the module at ``relative`` (``runs/folder.py``) with ``source``."""
    own, found = room_of(relative), []
    for module in imports(source):
        target, library = imported_room(module), module.split(".")[0]
        if target is not None and target != own:
            if layer(target) >= layer(own):
                found.append(f"{own} imports {module}, which is not below it")
            if target in ONLY_IMPORTED_BY and not allowed(relative, ONLY_IMPORTED_BY[target]):
                found.append(f"{relative} imports {module}: only the train command may")
        if library in THIRD_PARTY and not allowed(relative, THIRD_PARTY[library]):
            found.append(f"{relative} imports {library} outside its rooms")
    return found


SOURCES = sorted(
    p.relative_to(PACKAGE).as_posix()
    for p in PACKAGE.rglob("*.py")
    if p.relative_to(PACKAGE).as_posix() != "__init__.py"
)


def test_every_room_has_a_layer() -> None:
    rooms = {room_of(relative) for relative in SOURCES}
    assert rooms == set().union(*LAYERS), "a room was added or removed: place it in LAYERS"


@pytest.mark.parametrize("relative", SOURCES)
def test_imports_point_down_and_libraries_stay_at_their_edges(relative: str) -> None:
    """A room imports only itself and lower layers; typer and rich only in cli/, datasets and
    tokenizers only in their loaders, no torch in config/; nothing else imports training/."""
    assert violations(relative, (PACKAGE / relative).read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("relative", "source", "broken"),
    [
        ("runs/folder.py", "def f():\n    from lstmlm.evaluation import perplexity\n", "not below it"),
        ("model/lm.py", "from lstmlm.runs import folder\n", "not below it"),
        ("runtime/precision.py", "from lstmlm.model.recurrent import fused_layer\n", "not below it"),
        ("cli/eval_command.py", "from lstmlm.training import launch\n", "only the train command"),
        ("api.py", "import typer\n", "typer outside"),
        ("config/fields.py", "import torch\n", "torch outside"),
        ("evaluation/methods.py", "from lstmlm.scoring import pairs\n", "not below it"),
    ],
)
def test_the_rules_catch_what_they_forbid(relative: str, source: str, broken: str) -> None:
    assert any(broken in line for line in violations(relative, source))


def imported_after(statement: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh interpreter holds after running ``statement``."""
    code = f"import sys\n{statement}\nprint(' '.join(m for m in {modules!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_import_lstmlm_is_light() -> None:
    """``import lstmlm`` loads nothing heavy; its public names load on first use, never the loop."""
    heavy = ("torch", "numpy", "lstmlm.api", "lstmlm.training")
    assert imported_after("import lstmlm", heavy) == []
    used = imported_after("import lstmlm\nlstmlm.load, lstmlm.SentenceScore", heavy)
    assert used == ["torch", "numpy", "lstmlm.api"]


def test_the_cli_imports_no_heavy_library() -> None:
    """``lstmlm --help`` and ``lstmlm info`` stay fast: torch, datasets, matplotlib load on use."""
    heavy = ("torch", "datasets", "matplotlib", "numpy", "lstmlm.training")
    assert imported_after("import lstmlm.cli\nimport lstmlm.runs.folder", heavy) == []


@pytest.mark.parametrize(
    "module",
    [
        "lstmlm.runs.load",
        "lstmlm.evaluation.methods",
        "lstmlm.generate",
        "lstmlm.scoring.pairs",
        "lstmlm.analysis.units",
        "lstmlm.api",
    ],
)
def test_reading_a_run_imports_neither_the_loop_nor_the_compiler(module: str) -> None:
    """eval, generate, agreement and inspect do not import the training loop or torch._dynamo."""
    loop = ("lstmlm.training", "torch._dynamo", "datasets")
    assert imported_after(f"import {module}", loop) == []
