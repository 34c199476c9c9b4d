"""Starting ``train``: into a new folder, back into a run (``--resume``), never over one by
accident nor over a folder lstmlm did not make; a start that fails leaves nothing behind, one
refused by the lock touches nothing."""

from __future__ import annotations

from pathlib import Path

from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs import folder as run_folder
from tests.conftest import (
    TINY_FLAGS,
    error_lines,
    file_digests,
    invoke,
    one_line_error,
    run_lstmlm,
    write_tiny_file,
)
from tests.runs.test_folder import hugging_face_folder


def test_resume_continues_and_overwrite_is_required(trained_run_copy: Path, tiny_corpus: Path) -> None:
    again = invoke("train", "--data", str(tiny_corpus), "--out", str(trained_run_copy), *TINY_FLAGS)
    assert again.exit_code == 1 and "--resume" in again.stderr
    more = [*TINY_FLAGS[:-6], "--max-steps", "80", *TINY_FLAGS[-4:]]
    resumed = invoke("train", "--out", str(trained_run_copy), "--resume", *more)
    assert resumed.exit_code == 0, resumed.stderr
    assert "resuming at step 60" in resumed.stdout
    assert ckpt.latest_checkpoint(trained_run_copy).step == 80


def test_a_start_that_fails_before_its_first_checkpoint_leaves_nothing_behind(tmp_path: Path) -> None:
    corpus = write_tiny_file(tmp_path / "corpus.txt", 400, seed=1)
    out = tmp_path / "run"
    diverging = [*TINY_FLAGS, "--device", "cpu", "--optimizer", "sgd", "--lr", "1e38", "--max-bad-steps", "1"]
    failed = run_lstmlm("train", "--data", str(corpus), "--out", str(out), *diverging)
    assert failed.returncode == 1 and "training diverged" in failed.stderr
    assert "run folder" not in failed.stdout and not out.exists()
    again = run_lstmlm("train", "--data", str(corpus), "--out", str(out), *TINY_FLAGS, "--device", "cpu")
    assert again.returncode == 0, again.stderr
    assert str(out) in again.stdout


def test_a_start_refused_by_the_lock_leaves_the_other_run_alone(tmp_path: Path) -> None:
    corpus = write_tiny_file(tmp_path / "corpus.txt", 400, seed=1)
    out = tmp_path / "run"
    args = ["train", "--data", str(corpus), "--out", str(out), *TINY_FLAGS, "--device", "cpu"]
    assert run_lstmlm(*args, "--max-steps", "5", "--eval-every", "5").returncode == 0
    (out / run_folder.MODEL).unlink()  # as if the other run had not saved yet
    with run_folder.run_lock(out):  # another train is writing here (its pid in .lock)
        before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
        refused = run_lstmlm(*args, "--overwrite")
        after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert refused.returncode == 1 and len(error_lines(refused)) == 1
    assert after == before


def test_overwrite_refuses_a_folder_lstmlm_did_not_make(tiny_corpus: Path, tmp_path: Path) -> None:
    hf = hugging_face_folder(tmp_path / "hf")
    before = file_digests(hf)
    args = ["train", "--data", str(tiny_corpus), "--out", str(hf), *TINY_FLAGS]
    for flags in (["--overwrite"], []):
        refused = invoke(*args, *flags)
        one_line_error(refused, f"--out {hf} is a non-empty folder that is not an lstmlm run")
        assert "its config.json is not lstmlm's, with no model, data and train sections" in refused.stderr
        assert file_digests(hf) == before and sorted(p.name for p in hf.iterdir()) == sorted(before)


def test_overwrite_replaces_an_old_run_and_says_what_it_removes(trained_run_copy: Path) -> None:
    run = trained_run_copy
    (run / run_folder.MARK).unlink()  # a run trained before the mark: known by its own files
    (run / "notes.txt").write_text("kept")
    corpus = run_folder.read_config(run).data.data  # the shared run's corpus
    result = invoke("train", "--data", str(corpus), "--out", str(run), "--overwrite", *TINY_FLAGS,
                    "--max-steps", "5", "--eval-every", "5")  # fmt: skip
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "--overwrite" in line]
    removed = "config.json, data.json, tokenizer.json, model.safetensors, train_state.pt"
    assert len(warnings) == 1 and f"removing the run in {run}: {removed}" in warnings[0], result.stderr
    assert (run / "notes.txt").read_text() == "kept" and run_folder.is_run(run)
    assert (run / run_folder.MARK).is_file() and ckpt.latest_checkpoint(run).step == 5
