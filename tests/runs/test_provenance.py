"""A run remembers its data: it keeps using it from any folder, and refuses text that changed."""

from __future__ import annotations

import json
from pathlib import Path

from lstmlm.runs import folder as run_folder
from lstmlm.runs.metrics import read_metrics
from lstmlm.runs.provenance import DATA_RECORD
from tests.conftest import (
    TINY_FLAGS,
    error_lines,
    invoke,
    one_line_error,
    run_lstmlm,
    train_tiny_run,
    write_tiny_file,
)

# ---------------------------------------------------------------- runs that move


def test_a_run_keeps_using_its_own_data_from_any_folder(tmp_path: Path) -> None:
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir(), elsewhere.mkdir()
    write_tiny_file(here / "corpus.txt", 400, seed=1)
    write_tiny_file(elsewhere / "corpus.txt", 60, seed=9)  # same name, other text
    run = tmp_path / "run"
    trained = run_lstmlm(
        "train", "--data", "corpus.txt", "--out", str(run), *TINY_FLAGS, "--device", "cpu", cwd=here
    )
    assert trained.returncode == 0, trained.stderr
    assert run_folder.read_config(run).data.data == str((here / "corpus.txt").resolve())
    scores = [run_lstmlm("eval", str(run), "--json", cwd=folder) for folder in (here, elsewhere)]
    assert all(s.returncode == 0 for s in scores), [s.stderr for s in scores]
    assert json.loads(scores[0].stdout) == json.loads(scores[1].stdout)

    resumed = run_lstmlm(
        "train", "--out", str(run), "--resume", "--max-steps", "70", "--device", "cpu", cwd=elsewhere
    )
    assert resumed.returncode == 0, resumed.stderr
    assert [r["step"] for r in read_metrics(run / run_folder.METRICS) if r["event"] == "end"][-1] == 70


# ---------------------------------------------------------------- data that changed


def test_changed_data_is_refused_by_resume_and_eval(tmp_path: Path) -> None:
    corpus = write_tiny_file(tmp_path / "corpus.txt", 400, seed=1)
    run = tmp_path / "run"
    assert (
        run_lstmlm(
            "train", "--data", str(corpus), "--out", str(run), *TINY_FLAGS, "--device", "cpu"
        ).returncode
        == 0
    )
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    write_tiny_file(corpus, 60, seed=9)

    resumed = run_lstmlm(
        "train", "--out", str(run), "--resume", "--max-steps", "80", "--device", "cpu", timeout=60
    )
    assert resumed.returncode == 1
    (line,) = error_lines(resumed)
    assert line.startswith(f"error: {corpus}: the train split changed since {run} was trained on it")
    scored = run_lstmlm("eval", str(run))
    assert scored.returncode == 1 and len(error_lines(scored)) == 1 and "--data" in scored.stderr
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    assert run_lstmlm("eval", str(run), "--data", str(corpus)).returncode == 0  # other text on purpose


def test_resume_beyond_the_epoch_is_an_error_not_a_loop(tmp_path: Path) -> None:
    """A run without ``data.json`` (written before it existed) whose text shrank."""
    corpus = write_tiny_file(tmp_path / "corpus.txt", 2000, seed=1)
    run = tmp_path / "run"
    flags = [*TINY_FLAGS, "--device", "cpu", "--max-steps", "200", "--save-every", "190"]
    assert run_lstmlm("train", "--data", str(corpus), "--out", str(run), *flags).returncode == 0
    (run / DATA_RECORD).unlink()
    write_tiny_file(corpus, 300, seed=1)  # about 60 windows per epoch, saved at window 200
    resumed = run_lstmlm(
        "train", "--out", str(run), "--resume", "--max-steps", "300", "--device", "cpu", timeout=60
    )
    assert resumed.returncode == 1, resumed.stderr
    assert len(error_lines(resumed)) == 1 and "the data changed" in resumed.stderr


# ---------------------------------------------------------------- data that moved


def test_a_run_resumes_with_its_text_at_a_new_place_and_records_it(tmp_path: Path) -> None:
    corpus = write_tiny_file(tmp_path / "corpus.txt", 400, seed=1)
    run = train_tiny_run(tmp_path / "run", corpus, "--device", "cpu", "--max-steps", "10")
    moved = tmp_path / "moved" / "shards"
    moved.mkdir(parents=True)
    lines = corpus.read_text().splitlines(keepends=True)
    for i in range(0, len(lines), 100):  # the same text as four shards
        (moved / f"part-{i // 100}.txt").write_text("".join(lines[i : i + 100]))
    corpus.unlink()

    gone = invoke("train", "--out", str(run), "--resume", "--max-steps", "12")
    one_line_error(gone, f"{run} was trained on {corpus}, which is no longer there", "--data NEW_PLACE")

    other = write_tiny_file(tmp_path / "other.txt", 400, seed=2)
    refused = invoke("train", "--out", str(run), "--resume", "--max-steps", "12", "--data", str(other))
    one_line_error(refused, f"{other}: the train split changed since {run} was trained on it")

    resumed = invoke("train", "--out", str(run), "--resume", "--max-steps", "12", "--data", str(moved))
    assert resumed.exit_code == 0, resumed.output
    assert run_folder.read_config(run).data.data == str(moved)
    assert [r["step"] for r in read_metrics(run / run_folder.METRICS) if r["event"] == "end"][-1] == 12
    assert invoke("eval", str(run), "--json").exit_code == 0  # from the new place, checked


def test_a_run_without_a_data_record_cannot_move_its_text(tmp_path: Path) -> None:
    corpus = write_tiny_file(tmp_path / "corpus.txt", 400, seed=1)
    run = train_tiny_run(tmp_path / "run", corpus, "--device", "cpu", "--max-steps", "10")
    (run / DATA_RECORD).unlink()  # as written before data.json existed
    copy = tmp_path / "copy.txt"
    copy.write_bytes(corpus.read_bytes())
    refused = invoke("train", "--out", str(run), "--resume", "--max-steps", "12", "--data", str(copy))
    one_line_error(refused, "data.data", "no data.json to check the text by")
