"""Imports point the right way: the CLI starts without torch, reading a run without the loop."""

from __future__ import annotations

import subprocess
import sys

import pytest


def imported_after(statement: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh interpreter holds after running ``statement``."""
    code = f"import sys\n{statement}\nprint(' '.join(m for m in {modules!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_import_lstmlm_is_light() -> None:
    """``import lstmlm`` loads nothing heavy; its public names load on first use, never the loop."""
    heavy = ("torch", "numpy", "lstmlm.api", "lstmlm.training.train", "lstmlm.training.launch")
    assert imported_after("import lstmlm", heavy) == []
    used = imported_after("import lstmlm\nlstmlm.load, lstmlm.SentenceScore", heavy)
    assert used == ["torch", "numpy", "lstmlm.api"]


def test_the_cli_imports_no_heavy_library() -> None:
    """``lstmlm --help`` and ``lstmlm info`` stay fast: torch, datasets, matplotlib load on use."""
    heavy = ("torch", "datasets", "matplotlib", "numpy", "lstmlm.training.train")
    assert imported_after("import lstmlm.cli\nimport lstmlm.runs.folder", heavy) == []


@pytest.mark.parametrize(
    "module",
    [
        "lstmlm.runs.load",
        "lstmlm.evaluation.perplexity",
        "lstmlm.generate",
        "lstmlm.scoring.pairs",
        "lstmlm.analysis.units",
        "lstmlm.api",
    ],
)
def test_reading_a_run_imports_neither_the_loop_nor_the_compiler(module: str) -> None:
    """eval, generate, agreement and inspect do not import the training loop or torch._dynamo."""
    loop = (
        "lstmlm.training.train",
        "lstmlm.training.launch",
        "lstmlm.training.step",
        "torch._dynamo",
        "datasets",
    )
    assert imported_after(f"import {module}", loop) == []
