"""No output option replaces a run's own files: ``agreement --pairs``, ``inspect --plot``/``--npz``
and ``plot --out`` refuse such a path (or a link to one) in one line and write nothing.
``export --out``: ``tests/export/test_output_files.py``; ``train --out``: ``tests/training/``."""

from __future__ import annotations

from pathlib import Path

import pytest

from lstmlm.runs import folder as run_folder
from tests.conftest import file_digests, invoke, one_line_error


def link_to(tmp_path: Path, name: str, target: Path) -> Path:
    """``tmp_path/name``, a link to ``target``: a plain-looking path that writes into the run."""
    link = tmp_path / name
    link.symlink_to(target)
    return link


def refused(run: Path, args: list[str], *words: str) -> None:
    """The command fails in one line holding ``words``, and the run's files are as they were."""
    before = file_digests(run)
    one_line_error(invoke(*args), *words)
    assert file_digests(run) == before


@pytest.mark.parametrize("name", [run_folder.CONFIG, run_folder.METRICS, run_folder.MARK])
def test_agreement_pairs_cannot_replace_a_run_file(name: str, trained_run_copy: Path) -> None:
    run = trained_run_copy
    pairs = str(run / name)
    refused(
        run, ["agreement", str(run), "--pairs", pairs], f"--pairs {pairs} would replace {name} of the run"
    )
    assert run_folder.read_config(run).model.nhid == 16  # still the run's config


def test_agreement_pairs_cannot_reach_a_run_file_through_a_link(
    trained_run_copy: Path, tmp_path: Path
) -> None:
    link = link_to(tmp_path, "pairs.jsonl", trained_run_copy / run_folder.BEST)
    refused(
        trained_run_copy, ["agreement", str(trained_run_copy), "--pairs", str(link)], "would replace best"
    )


def test_inspect_outputs_cannot_replace_a_run_file(trained_run_copy: Path, tmp_path: Path) -> None:
    run = trained_run_copy
    text = ["inspect", str(run), "--text", "the cat sees the dog ."]
    npz = link_to(tmp_path, "trace.npz", run / run_folder.BEST)  # numpy would write through the link
    refused(run, [*text, "--npz", str(npz)], f"--npz {npz} would replace best.safetensors of the run")
    png = link_to(tmp_path, "gates.png", run / run_folder.MODEL)
    refused(run, [*text, "--plot", str(png)], f"--plot {png} would replace model.safetensors")
    units = link_to(tmp_path, "units.png", run / run_folder.CONFIG)
    refused(run, ["inspect", str(run), "--find-units", "--plot", str(units)], "would replace config.json")


def test_plot_out_cannot_replace_a_run_file(trained_run_copy: Path, tmp_path: Path) -> None:
    run = trained_run_copy
    out = link_to(tmp_path, "curves.svg", run / run_folder.METRICS)
    refused(run, ["plot", str(run), "--out", str(out)], f"--out {out} would replace metrics.jsonl")


def test_outputs_beside_a_runs_files_are_written(trained_run_copy: Path) -> None:
    run = trained_run_copy
    pairs = run / "pairs.jsonl"
    result = invoke(
        "agreement", str(run), "--suite", str(write_bare_suite(run.parent)), "--pairs", str(pairs)
    )
    assert result.exit_code == 0, result.output
    assert pairs.is_file() and run_folder.read_config(run).model.nhid == 16


def write_bare_suite(folder: Path) -> Path:
    path = folder / "bare.jsonl"
    path.write_text('{"sentence_good": "the cat sees the dog .", "sentence_bad": "the cat see the dog ."}\n')
    return path
