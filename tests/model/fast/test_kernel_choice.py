"""Choosing oneDNN or MKL by timing both: the faster wins, the choice is cached per machine,
pinned by ``$LSTMLM_KERNELS``, and either kernel computes the same product."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lstmlm.errors import BadArgument
from lstmlm.model.fast import kernel_choice, output_linear, packed_linear
from lstmlm.model.fast.kernel_choice import KERNELS_VARIABLE, choose


class FakeTimer:
    """Times from a table instead of a clock; counts the calls."""

    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds = seconds
        self.calls: list[str] = []

    def __call__(self, kernel: str) -> float:
        self.calls.append(kernel)
        return self.seconds[kernel]


@pytest.fixture(autouse=True)
def fresh_choices(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(KERNELS_VARIABLE, raising=False)
    kernel_choice.forget_choices()
    yield
    kernel_choice.forget_choices()


@pytest.mark.parametrize("faster", ["onednn", "mkl"])
def test_the_faster_kernel_is_chosen(tmp_path: Path, faster: str) -> None:
    timer = FakeTimer({"onednn": 1.0, "mkl": 2.0} if faster == "onednn" else {"onednn": 2.0, "mkl": 1.0})
    assert choose("decoder", (8, 4, 16), timer, cache=tmp_path) == faster
    assert sorted(set(timer.calls)) == ["mkl", "onednn"]
    assert timer.calls[:2] != timer.calls[2:4]  # alternating which goes first


def test_the_choice_is_kept_in_the_process_and_on_disk(tmp_path: Path) -> None:
    timer = FakeTimer({"onednn": 2.0, "mkl": 1.0})
    assert choose("decoder", (8, 4, 16), timer, cache=tmp_path) == "mkl"
    calls = len(timer.calls)
    assert choose("decoder", (8, 4, 16), timer, cache=tmp_path) == "mkl"
    kernel_choice.forget_choices()  # as a new process
    assert choose("decoder", (8, 4, 16), timer, cache=tmp_path) == "mkl"
    assert len(timer.calls) == calls  # neither timed again
    saved = json.loads((tmp_path / "kernels.json").read_text())
    assert saved["machine"] == kernel_choice.machine()
    assert list(saved["choices"].values()) == ["mkl"]
    choose("decoder", (16, 4, 16), timer, cache=tmp_path)  # another shape: timed
    assert len(timer.calls) > calls


def test_a_choice_from_another_machine_or_a_damaged_file_is_timed_again(tmp_path: Path) -> None:
    timer = FakeTimer({"onednn": 1.0, "mkl": 2.0})
    file = tmp_path / "kernels.json"
    key = kernel_choice._key("recurrent", (2, 3, 4))
    file.write_text(json.dumps({"machine": "elsewhere", "choices": {key: "mkl"}}))
    assert choose("recurrent", (2, 3, 4), timer, cache=tmp_path) == "onednn"
    for damaged in ("{not json", json.dumps({"machine": kernel_choice.machine(), "choices": {key: "cuda"}})):
        kernel_choice.forget_choices()
        file.write_text(damaged)
        timer.calls.clear()
        assert choose("recurrent", (2, 3, 4), timer, cache=tmp_path) == "onednn"
        assert timer.calls
    assert json.loads(file.read_text())["choices"] == {key: "onednn"}  # repaired


def test_timing_stops_after_the_budget() -> None:
    def slow(kernel: str) -> float:
        time.sleep(0.02)
        return {"onednn": 2.0, "mkl": 1.0}[kernel]

    started = time.perf_counter()
    assert kernel_choice.fastest(slow, budget_s=0.01, rounds=50) == ("mkl", False)  # one sample: unsteady
    assert time.perf_counter() - started < 0.5  # one round of two, not fifty


def test_a_choice_timed_on_a_busy_machine_is_not_kept_on_disk(tmp_path: Path) -> None:
    # rounds alternate: onednn, mkl | mkl, onednn | onednn, mkl
    bursts = iter([1.0, 2.0, 5.0, 9.0, 1.9, 2.1])  # onednn 1.0, 9.0, 1.9: second best 1.9x its best
    scattered = iter([1.0, 2.0, 3.0, 1.5, 1.0, 2.0])  # onednn 1.0, 1.5, 1.0 and mkl 2.0, 3.0, 2.0: steady

    assert choose("decoder", (1, 2, 3), lambda kernel: next(bursts), cache=tmp_path) == "onednn"
    assert not (tmp_path / "kernels.json").exists()
    kernel_choice.forget_choices()
    assert choose("decoder", (1, 2, 3), lambda kernel: next(scattered), cache=tmp_path) == "onednn"
    assert (tmp_path / "kernels.json").exists()  # onednn 1.0, 1.0 and mkl 1.5, 2.0: steady enough


@pytest.mark.parametrize(
    ("pin", "decoder", "recurrent"),
    [("mkl", "mkl", "mkl"), ("onednn", "onednn", "onednn"), ("decoder=mkl", "mkl", "timed"),
     ("recurrent=mkl, decoder=onednn", "onednn", "mkl")],
)  # fmt: skip
def test_the_variable_pins_kernels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pin: str, decoder: str, recurrent: str
) -> None:
    monkeypatch.setenv(KERNELS_VARIABLE, pin)
    timer = FakeTimer({"onednn": 1.0, "mkl": 2.0})
    assert choose("decoder", (1, 2, 3), timer, cache=tmp_path) == decoder
    assert choose("recurrent", (1, 2, 3), timer, cache=tmp_path) == (
        "onednn" if recurrent == "timed" else recurrent
    )
    assert bool(timer.calls) == (recurrent == "timed")


def test_measure_times_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    choose("decoder", (1, 2, 3), FakeTimer({"onednn": 1.0, "mkl": 2.0}), cache=tmp_path)
    kernel_choice.forget_choices()
    monkeypatch.setenv(KERNELS_VARIABLE, "measure")
    assert choose("decoder", (1, 2, 3), FakeTimer({"onednn": 2.0, "mkl": 1.0}), cache=tmp_path) == "mkl"


@pytest.mark.parametrize("pin", ["cuda", "decoder=fast", "softmax=mkl", "decoder"])
def test_a_bad_pin_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pin: str) -> None:
    monkeypatch.setenv(KERNELS_VARIABLE, pin)
    with pytest.raises(BadArgument, match=r"^\$LSTMLM_KERNELS: expected onednn, mkl, measure"):
        choose("decoder", (1, 2, 3), FakeTimer({"onednn": 1.0, "mkl": 2.0}), cache=tmp_path)


def test_a_read_only_cache_still_chooses(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the cache folder should be
    assert choose("decoder", (1, 2, 3), FakeTimer({"onednn": 2.0, "mkl": 1.0}), cache=blocked) == "mkl"


@pytest.mark.parametrize("kernel", ["onednn", "mkl"])
def test_both_decoder_kernels_compute_the_product(monkeypatch: pytest.MonkeyPatch, kernel: str) -> None:
    monkeypatch.setenv(KERNELS_VARIABLE, kernel)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(5, 7, 24, generator=generator, dtype=torch.float64).float().requires_grad_()
    w = torch.randn(40, 24, generator=generator).requires_grad_()
    b = torch.randn(40, generator=generator).requires_grad_()
    y = output_linear.fast_linear(x, w, b)
    expected = F.linear(x.double(), w.double(), b.double())
    # fp32 sums of 24 products of N(0,1) values: errors ~ sqrt(24) * 2^-24 * |terms|, far below 1e-4
    torch.testing.assert_close(y.double(), expected, atol=1e-4, rtol=1e-5)
    y.sum().backward()
    torch.testing.assert_close(
        w.grad.double(), x.detach().double().sum((0, 1)).expand(40, 24), atol=1e-4, rtol=1e-5
    )


def test_the_timers_measure_real_products(tmp_path: Path) -> None:
    """The default timers run both kernels at a small shape, leaving the global generator alone."""
    state = torch.random.get_rng_state()
    for kernel in ("onednn", "mkl"):
        assert 0 < output_linear._time_decoder(kernel, (8, 16, 32)) < 5
        for steps in (0, 1, 32):
            assert 0 < packed_linear._time_sequence(kernel, (4, 16, 64, 1, steps)) < 5
            assert 0 < packed_linear._time_sequence(kernel, (4, 64, 16, 0, steps)) < 5
    assert torch.equal(torch.random.get_rng_state(), state)


def test_packing_follows_the_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    weight = torch.randn(64, 16)
    monkeypatch.setenv(KERNELS_VARIABLE, "recurrent=mkl")
    assert packed_linear.pack(weight, 4, 35) is None
    monkeypatch.setenv(KERNELS_VARIABLE, "recurrent=onednn")
    if packed_linear.onednn_works():
        assert packed_linear.pack(weight, 4, 35) is not None
