"""Which kernel computes a product on this machine: oneDNN or MKL, chosen by timing both once.

The two fp32 products that are most of a CPU training step have two implementations in
PyTorch, and which one is faster depends on the CPU, not on its vendor's name:

* ``decoder``: the output layer ``x @ Wᵀ + b`` and its backward, through oneDNN's inner
  product (``output_linear``) or MKL's sgemm (``F.linear``). On an AVX-512 AMD EPYC oneDNN
  ran it 2.0x faster (MKL runs its AVX2 code on CPUs other than Intel's); on an AVX2-only
  EPYC MKL was 3-8% faster; on an Intel Xeon MKL's sgemm is strong.
* ``recurrent``: the recurrent product ``h @ W_hhᵀ`` of the custom cells, through oneDNN with
  the weight packed once per sequence (``packed_linear``) or MKL's sgemm. On the AVX-512
  EPYC packing was 25% faster at 2x650, B=20; on the AVX2-only EPYC (one thread) 4% faster
  at 650 units but 20% slower at 200 and 10% slower at 1150 units, B=80.

So ``choose`` times both on the product's own shape, alternating, a few rounds within
about ``BUDGET_S`` seconds, and keeps the faster: in memory for the process and, where
the timings were steady (a busy machine scatters them, and a choice timed then could be
the wrong one for good), in ``<cache>/kernels.json`` (``$LSTMLM_CACHE``, else ``~/.cache/lstmlm``) for later
processes on the same machine (the same CPU model and flags, PyTorch version and
instruction-set limits; a file from another machine is ignored). Both compute the same
fp32 product; only the order of the sums differs (about 1e-6 relative per product), so
a run is repeatable bit for bit where the choice is: pin it with ``$LSTMLM_KERNELS``:

    LSTMLM_KERNELS=mkl                       every product through MKL
    LSTMLM_KERNELS=decoder=onednn,recurrent=mkl
    LSTMLM_KERNELS=measure                   time again, ignoring the cached choices
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

from lstmlm.errors import BadArgument
from lstmlm.files import cache_dir, write_atomic

KERNELS_VARIABLE = "LSTMLM_KERNELS"
KERNELS = ("onednn", "mkl")
PRODUCTS = ("decoder", "recurrent")
BUDGET_S = 1.0  # timing stops after the round that passes this (at least one round each)
ROUNDS = 3  # at most, alternating which kernel goes first
STEADY = 1.25  # timings steady enough to keep on disk: second best / best below this

Timer = Callable[[str], float]  # seconds one run of the product takes with the named kernel

_chosen: dict[str, str] = {}  # this process's choices, by ``_key``


def choose(product: str, shape: tuple[int, ...], timer: Timer, *, cache: Path | None = None) -> str:
    """The kernel ("onednn" or "mkl") for ``product`` at ``shape``: the override, else the
    choice made before on this machine, else the faster of the two by ``timer``."""
    override = pinned(product)
    if override is not None:
        return override
    key = _key(product, shape)
    if key in _chosen:
        return _chosen[key]
    file = (cache or cache_dir()) / "kernels.json"
    remeasure = os.environ.get(KERNELS_VARIABLE, "").strip() == "measure"
    known = {} if remeasure else _read_choices(file)
    if key in known:
        _chosen[key] = known[key]
    else:
        _chosen[key], steady = fastest(timer)
        if steady:  # a choice timed while the machine was busy holds for this process only
            _write_choices(file, {**_read_choices(file), key: _chosen[key]})
    return _chosen[key]


def fastest(timer: Timer, budget_s: float = BUDGET_S, rounds: int = ROUNDS) -> tuple[str, bool]:
    """The kernel with the lowest time over alternating rounds, stopping after ``budget_s``;
    and whether the timings were steady (each kernel's second best within ``STEADY`` of its
    best: a busy machine scatters them)."""
    times: dict[str, list[float]] = {kernel: [] for kernel in KERNELS}
    started = time.perf_counter()
    for round_ in range(rounds):
        for kernel in KERNELS if round_ % 2 == 0 else KERNELS[::-1]:
            times[kernel].append(timer(kernel))
        if time.perf_counter() - started > budget_s:
            break
    ranked = {kernel: sorted(seconds) for kernel, seconds in times.items()}
    steady = all(len(t) > 1 and t[1] <= STEADY * t[0] for t in ranked.values())
    return min(KERNELS, key=lambda kernel: ranked[kernel][0]), steady


def pinned(product: str) -> str | None:
    """The kernel ``$LSTMLM_KERNELS`` pins for ``product``, if any."""
    text = os.environ.get(KERNELS_VARIABLE, "").strip()
    if text in ("", "measure"):
        return None
    if text in KERNELS:
        return text
    pins = {}
    for item in text.split(","):
        name, _, kernel = item.partition("=")
        if name.strip() not in PRODUCTS or kernel.strip() not in KERNELS:
            raise BadArgument(
                f"${KERNELS_VARIABLE}: expected onednn, mkl, measure or PRODUCT=KERNEL pairs "
                f"(products: {', '.join(PRODUCTS)}), got {text!r}"
            )
        pins[name.strip()] = kernel.strip()
    return pins.get(product)


def forget_choices() -> None:
    """Drop this process's choices (tests; a changed thread count keys new ones anyway)."""
    _chosen.clear()


def _key(product: str, shape: tuple[int, ...]) -> str:
    return f"{product} {'x'.join(map(str, shape))} threads={torch.get_num_threads()}"


def machine() -> str:
    """What a cached choice holds for: the CPU, PyTorch and the instruction-set limits."""
    parts = [_cpu_description(), torch.__version__, platform.machine()]
    parts += [os.environ.get(name, "") for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _cpu_description() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    wanted = ("model name", "flags")
    return "|".join(sorted({line for line in lines if line.split(":")[0].strip() in wanted}))


def _read_choices(file: Path) -> dict[str, str]:
    try:
        saved = json.loads(file.read_text())
    except (OSError, ValueError):
        return {}  # none yet, or damaged: measured again and rewritten
    if not isinstance(saved, dict) or saved.get("machine") != machine():
        return {}
    choices = saved.get("choices")
    if not isinstance(choices, dict):
        return {}
    return {k: v for k, v in choices.items() if isinstance(k, str) and v in KERNELS}


def _write_choices(file: Path, choices: dict[str, str]) -> None:
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(file, json.dumps({"machine": machine(), "choices": choices}, indent=1).encode())
    except OSError:
        pass  # a read-only cache: the choice holds for this process
