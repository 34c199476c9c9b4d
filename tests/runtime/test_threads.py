"""The thread policy: parsing ``--threads`` and ``$LSTMLM_THREADS``, the default's sources, the
physical-core count from a CPU topology, a container's CPU quota, and the wait policy."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lstmlm.errors import BadArgument
from lstmlm.runtime import threads
from tests.conftest import invoke


@pytest.mark.parametrize(
    ("text", "expected"), [("1", 1), (" 4 ", 4), ("1024", 1024), ("auto", None), ("AUTO", None)]
)
def test_thread_counts_parse(text: str, expected: int | None) -> None:
    assert threads.parse_threads(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "1025", "2.0", "two", "", "1e3"])
def test_bad_thread_counts_are_one_line_errors(text: str) -> None:
    with pytest.raises(
        BadArgument, match=r"^--threads: expected a number of threads from 1 to 1024, or auto"
    ):
        threads.parse_threads(text)


@pytest.fixture
def no_thread_variables(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (threads.THREADS_VARIABLE, "OMP_NUM_THREADS", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "physical_cores", lambda: 8)
    monkeypatch.setattr(threads, "cpu_quota", lambda: None)
    return monkeypatch


def test_the_default_is_the_physical_cores(no_thread_variables: pytest.MonkeyPatch) -> None:
    assert threads.chosen_threads() == 8


def test_the_flag_beats_the_variables(no_thread_variables: pytest.MonkeyPatch) -> None:
    no_thread_variables.setenv(threads.THREADS_VARIABLE, "3")
    no_thread_variables.setenv("OMP_NUM_THREADS", "5")
    assert threads.chosen_threads(2) == 2
    assert threads.chosen_threads() == 3
    no_thread_variables.setenv(threads.THREADS_VARIABLE, "auto")
    assert threads.chosen_threads() == 5  # auto: the policy, which honours OMP_NUM_THREADS


def test_a_bad_variable_names_itself(no_thread_variables: pytest.MonkeyPatch) -> None:
    no_thread_variables.setenv(threads.THREADS_VARIABLE, "many")
    with pytest.raises(BadArgument, match=r"^\$LSTMLM_THREADS: expected"):
        threads.chosen_threads()


def test_ranks_on_one_machine_share_its_cores(no_thread_variables: pytest.MonkeyPatch) -> None:
    no_thread_variables.setenv("LOCAL_WORLD_SIZE", "3")
    assert threads.chosen_threads() == 2  # 8 cores // 3 ranks
    no_thread_variables.setenv("LOCAL_WORLD_SIZE", "16")
    assert threads.chosen_threads() == 1


def test_a_container_quota_caps_the_default(no_thread_variables: pytest.MonkeyPatch) -> None:
    no_thread_variables.setattr(threads, "cpu_quota", lambda: 3)
    assert threads.chosen_threads() == 3


def write_topology(root: Path, cores: dict[int, tuple[int, int]]) -> Path:
    """A fake /sys/devices/system/cpu: logical CPU -> (package, core)."""
    for cpu, (package, core) in cores.items():
        folder = root / f"cpu{cpu}" / "topology"
        folder.mkdir(parents=True)
        (folder / "physical_package_id").write_text(f"{package}\n")
        (folder / "core_id").write_text(f"{core}\n")
    return root


def test_smt_siblings_are_one_core(tmp_path: Path) -> None:
    # 2 packages x 2 cores x 2 hardware threads; core ids repeat across packages
    layout = {cpu: (cpu // 4, (cpu // 2) % 2) for cpu in range(8)}
    topology = write_topology(tmp_path, layout)
    assert threads.physical_cores(set(range(8)), topology) == 4
    assert threads.physical_cores({0, 1}, topology) == 1  # allowed on one core's two threads
    assert threads.physical_cores({0, 2, 4}, topology) == 3


def test_an_unreadable_topology_counts_logical_cpus(tmp_path: Path) -> None:
    assert threads.physical_cores({0, 1, 2}, tmp_path / "absent") == 3


@pytest.mark.parametrize(
    ("content", "expected"), [("max 100000\n", None), ("200000 100000\n", 2), ("150000 100000", 2),
                              ("50000 100000", 1), ("garbage", None), ("", None)]
)  # fmt: skip
def test_cpu_quota(tmp_path: Path, content: str, expected: int | None) -> None:
    limit = tmp_path / "cpu.max"
    limit.write_text(content)
    assert threads.cpu_quota(limit) == expected
    assert threads.cpu_quota(tmp_path / "absent") is None


def test_use_threads_sets_torch(no_thread_variables: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    try:
        assert threads.use_threads(1) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_idle_workers_sleep_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    threads.prefer_sleeping_workers()
    assert threads.os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    threads.prefer_sleeping_workers()
    assert threads.os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_the_command_line_sets_the_wait_policy_first(monkeypatch: pytest.MonkeyPatch) -> None:
    import lstmlm.cli as cli

    seen = []
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(cli, "app", lambda: seen.append(threads.os.environ.get("OMP_WAIT_POLICY")))
    cli.main()
    assert seen == ["PASSIVE"]


def test_eval_computes_with_the_threads_asked_for(trained_run: Path) -> None:
    before = torch.get_num_threads()
    try:
        result = invoke("eval", str(trained_run), "--split", "valid", "--threads", "1")
        assert result.exit_code == 0, result.output
        assert torch.get_num_threads() == 1
        result = invoke("eval", str(trained_run), "--split", "valid", env={threads.THREADS_VARIABLE: "2"})
        assert result.exit_code == 0, result.output
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
