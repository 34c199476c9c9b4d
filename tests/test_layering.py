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
    heavy = ("torch", "numpy", "lstmlm.api", "lstmlm.train", "lstmlm.launch")
    assert imported_after("import lstmlm", heavy) == []
    used = imported_after("import lstmlm\nlstmlm.load, lstmlm.SentenceScore", heavy)
    assert used == ["torch", "numpy", "lstmlm.api"]


def test_the_cli_imports_no_heavy_library() -> None:
    """``lstmlm --help`` and ``lstmlm info`` stay fast: torch, datasets, matplotlib load on use."""
    heavy = ("torch", "datasets", "matplotlib", "numpy", "lstmlm.train")
    assert imported_after("import lstmlm.cli\nimport lstmlm.run_folder", heavy) == []


@pytest.mark.parametrize(
    "module",
    [
        "lstmlm.runs",
        "lstmlm.evaluate",
        "lstmlm.generate",
        "lstmlm.pair_scoring",
        "lstmlm.units",
        "lstmlm.api",
    ],
)
def test_reading_a_run_imports_neither_the_loop_nor_the_compiler(module: str) -> None:
    """eval, generate, agreement and inspect do not import the training loop or torch._dynamo."""
    loop = ("lstmlm.train", "lstmlm.launch", "lstmlm.step", "torch._dynamo", "datasets")
    assert imported_after(f"import {module}", loop) == []
