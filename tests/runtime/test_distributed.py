"""Data-parallel training on CPU: 2 gloo processes compute what 1 does, and a process that
was in a group leaves without finalizing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lstmlm import cli
from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs import folder as run_folder
from lstmlm.runtime import distributed
from tests.conftest import TINY_FLAGS, events

# ---------------------------------------------------------------- two processes, gloo

# Dropout on (two layers: embedding, between-layer and output sites) and SGD at lr 1: two
# processes differ from one only in the order of fp32 sums (the gradient all-reduce, the
# split matmuls), ~1e-7 relative per step. At lr 1 with clipping at 0.25 a step moves the
# weights by at most 0.25, and the map from weights to weights is close to non-expansive,
# so 80 steps keep that far below 1e-4. (At the default lr 20 the same rounding grows to
# percent-size differences: it then depends on the CPU, which a test must not.)
DDP_FLAGS = [
    *TINY_FLAGS,
    *("--device", "cpu", "--nlayers", "2", "--dropout", "0.3", "--optimizer", "sgd", "--lr", "1"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(nproc: int, *args: str) -> subprocess.CompletedProcess:
    """``lstmlm train`` under torchrun with ``nproc`` CPU processes (1: plain ``python -m lstmlm``)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc == 1:
        command = [sys.executable, "-m", "lstmlm"]
    else:
        run = ["-m", "torch.distributed.run", f"--nproc_per_node={nproc}", f"--master_port={free_port()}"]
        command = [sys.executable, *run, "-m", "lstmlm"]
    return subprocess.run([*command, "train", *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("cpu", ["native", "avx2"])
def test_two_gloo_processes_match_one_and_resume_with_one(
    cpu: str, tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if cpu == "avx2":  # another CPU's numerics (see README "Determinism")
        monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    data = ["--data", str(tiny_corpus)]
    two, one = tmp_path / "two", tmp_path / "one"
    result = launch(2, *data, "--out", str(two), *DDP_FLAGS)  # 60 steps
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Training summary") == 1  # rank 0 alone reports
    end = events(two, "end")[-1]
    assert end["ranks_in_sync"] is True and events(two, "start")[0]["world_size"] == 2
    assert end["tokens"] == 60 * 8 * 4  # global batch 4: 2 streams on each rank
    assert ckpt.latest_checkpoint(two).state["hidden"][0].shape[1] == 4  # all streams, not rank 0's

    more = [*DDP_FLAGS, "--max-steps", "80"]
    result = launch(1, "--out", str(two), "--resume", *more)
    assert result.returncode == 0, result.stderr
    assert "resuming at step 60" in result.stdout
    steps = [r["step"] for r in events(two, "log")]
    assert steps == sorted(set(steps)) and steps[-1] == 80

    assert launch(1, *data, "--out", str(one), *more).returncode == 0  # evaluates at the same steps
    valid_two = {r["step"]: r["valid_loss"] for r in events(two, "eval")}
    valid_one = {r["step"]: r["valid_loss"] for r in events(one, "eval")}
    assert sorted(valid_two) == sorted(valid_one) == [30, 60, 80]
    for step, loss in valid_one.items():
        assert valid_two[step] == pytest.approx(loss, rel=1e-4), step


AWD_FLAGS = [
    *DDP_FLAGS,
    *("--locked-dropout", "--dropouti", "0.2", "--dropouth", "0.2", "--dropoute", "0.1"),
    *("--weight-drop", "0.3", "--ar-alpha", "2", "--tar-beta", "1", "--variable-bptt", "--grad-accum", "2"),
    *("--optimizer", "ntasgd", "--lr", "1", "--nonmono", "1", "--eval-every", "5", "--max-steps", "120"),
]


@pytest.mark.slow
def test_two_gloo_processes_match_one_with_every_awd_piece_on(tiny_corpus: Path, tmp_path: Path) -> None:
    """Locked, word and weight dropout, AR/TAR, variable BPTT, accumulation and NT-ASGD: the
    masks and windows do not depend on the process layout, so 2 processes compute what 1 does
    (fp32 sums aside, as above)."""
    data = ["--data", str(tiny_corpus)]
    two, one = tmp_path / "two", tmp_path / "one"
    for processes, out in ((2, two), (1, one)):
        result = launch(processes, *data, "--out", str(out), *AWD_FLAGS)
        assert result.returncode == 0, result.stderr
    valid_two = {r["step"]: r for r in events(two, "eval")}
    valid_one = {r["step"]: r for r in events(one, "eval")}
    assert sorted(valid_two) == sorted(valid_one) and len(valid_one) >= 4
    assert any(r.get("averaged") for r in valid_one.values())  # NT-ASGD switched within the run
    for step, record in valid_one.items():
        assert valid_two[step]["valid_loss"] == pytest.approx(record["valid_loss"], rel=1e-4), step
        assert valid_two[step].get("averaged") == record.get("averaged")


@pytest.mark.slow
def test_two_gloo_processes_match_one_with_the_adaptive_softmax(tiny_corpus: Path, tmp_path: Path) -> None:
    """A rank whose targets miss a cluster still uses that cluster's weights (zero rows), so
    DDP's all-reduce sees every parameter, and 2 processes compute what 1 does."""
    adaptive = [*DDP_FLAGS, "--softmax", "adaptive", "--cutoffs", "4,10"]
    valid = {}
    for processes in (2, 1):
        out = tmp_path / str(processes)
        result = launch(processes, "--data", str(tiny_corpus), "--out", str(out), *adaptive)
        assert result.returncode == 0, result.stderr
        valid[processes] = {r["step"]: r["valid_loss"] for r in events(out, "eval")}
    assert sorted(valid[2]) == sorted(valid[1]) == [30, 60]
    for step, loss in valid[1].items():
        assert valid[2][step] == pytest.approx(loss, rel=1e-4), step


class Left(Exception):
    pass


@pytest.mark.parametrize("in_a_group", [False, True])
def test_a_process_that_was_in_a_group_exits_without_finalizing(
    in_a_group: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """DDP keeps gloo's threads alive into Python's finalization, where one can abort the
    process; so a process that joined a group leaves by ``os._exit`` with the command's code."""

    def leave(code: int) -> None:
        raise Left(code)

    monkeypatch.setattr(distributed, "joined_a_group", in_a_group)
    monkeypatch.setattr(cli.os, "_exit", leave)
    monkeypatch.setattr(sys, "argv", ["lstmlm", "info", "no-such-run"])
    with pytest.raises(Left if in_a_group else SystemExit) as ended:
        cli.main()
    assert (ended.value.args[0] if in_a_group else ended.value.code) == 1
    assert "no-such-run" in capsys.readouterr().err


def test_batch_size_not_divisible_by_processes_is_one_clear_error(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = launch(3, "--data", str(tiny_corpus), "--out", str(out), *DDP_FLAGS)  # batch size 4
    assert result.returncode == 1
    ours = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert ours == [
        "error: --batch-size 4 is the global number of streams and must be divisible by the 3 processes; "
        "use a multiple of 3"
    ]
    assert not (out / run_folder.CONFIG).exists()
