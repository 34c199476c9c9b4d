"""Where ``lstmlm export`` writes: never over another export's companions, a file lstmlm did not
write, or a run's own files; again over its own export to the same ``--out``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lstmlm.runs import folder as run_folder
from tests.conftest import file_digests, invoke, one_line_error
from tests.export.test_formats import make_run


@pytest.fixture
def runs(tiny_corpus: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Two runs with different weights (and the same tokenizer)."""
    first = make_run(tmp_path / "a", tiny_corpus, cell="lstm")
    return first, make_run(tmp_path / "b", tiny_corpus, cell="gru")


def export(run: Path, fmt: str, out: Path) -> object:
    return invoke("export", str(run), "--format", fmt, "--out", str(out))


def test_an_export_does_not_clobber_another_exports_companions(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    first, second = runs
    assert export(first, "torchscript", deploy / "lm.pt").exit_code == 0
    before = file_digests(deploy)
    one_line_error(
        export(second, "onnx", deploy / "lm.onnx"), f"{deploy / 'lm.tokenizer.json'} is already there"
    )
    assert file_digests(deploy) == before  # lm.onnx would have shared lm.tokenizer.json
    sidecar = json.loads((deploy / "lm.pt.json").read_text())
    assert sidecar["files"]["tokenizer"] == "lm.tokenizer.json" and sidecar["run"] == str(first.resolve())
    assert export(second, "torchscript", deploy / "other.pt").exit_code == 0  # another name: fine
    assert file_digests(deploy).items() >= before.items()


def test_an_export_does_not_replace_a_file_lstmlm_did_not_write(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    mine = tmp_path / "lm.tokenizer.json"
    mine.write_text("someone else's tokenizer")
    one_line_error(export(runs[0], "torchscript", tmp_path / "lm.pt"), "lm.tokenizer.json is already there")
    assert mine.read_text() == "someone else's tokenizer" and not (tmp_path / "lm.pt").exists()
    (tmp_path / "step.onnx").write_bytes(b"not ours")
    one_line_error(export(runs[0], "onnx", tmp_path / "step.onnx"), "step.onnx is already there")


def test_an_export_replaces_its_own_earlier_export(runs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "lm.pt"
    assert export(runs[0], "torchscript", out).exit_code == 0
    first = out.read_bytes()
    assert export(runs[1], "torchscript", out).exit_code == 0  # the same --out: its own files
    assert out.read_bytes() != first
    assert json.loads((tmp_path / "lm.pt.json").read_text())["model"]["cell"] == "gru"


def test_an_export_cannot_replace_a_runs_own_files(runs: tuple[Path, Path]) -> None:
    run = runs[0]
    (run / run_folder.STATE).write_bytes(b"the run's train state")
    before = file_digests(run)
    out = run / run_folder.STATE  # train_state.pt: a TorchScript file name
    one_line_error(export(run, "torchscript", out), f"--out {out} would replace train_state.pt of the run")
    assert file_digests(run) == before
    assert export(run, "torchscript", run / "lm.pt").exit_code == 0  # beside the run's files: fine
