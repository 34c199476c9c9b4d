"""Mixed precision: which dtype forward passes run in, and the fp16 loss scaler.

``auto`` is bf16 on a CUDA GPU that supports it and fp32 anywhere else. fp16 needs a
CUDA GPU (on CPU, oneDNN has no fp16 LSTM). bf16 runs on a CPU with native bf16 kernels
(AVX-512 BF16 or AMX), found once per process by running oneDNN's bf16 LSTM on a tiny
layer (``native_bf16_rnn``). Elsewhere (an AVX2-only CPU, or ``ONEDNN_MAX_CPU_ISA=AVX2``)
bf16 is refused in one line: there the LSTM kernel is missing and emulated bf16 matmuls
trained a 2x650 LSTM 12x slower than fp32 (``scripts.bench.bench_train`` under AVX2
emulation). The equation cells' recurrence runs in fp32 under bf16 (their hand-written
backward is fp32), their embedding and decoder in bf16; training says so in one notice
line (``fp32_recurrence_notice``). A fused cell under a user's own CPU autocast on such
a CPU leaves it for the recurrence (``recurrence_in_fp32``) rather than crash.

Weights, optimizer state, gradients and the carried hidden state stay fp32 in every
mode: only the work inside
``autocast`` (matmuls, the recurrent kernels) drops to 16 bits, and the loss is taken in
fp32. So a run may change precision when it is resumed.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from lstmlm.config import CUSTOM_CELLS, PRECISIONS
from lstmlm.errors import LstmlmError

_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Precision:
    """A resolved ``--precision``: ``name`` is fp32, bf16 or fp16, never auto."""

    name: str
    device_type: str

    @property
    def dtype(self) -> torch.dtype | None:
        return _DTYPES[self.name]

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        """Run the enclosed forward pass in this precision (a no-op for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def scaler(self) -> torch.amp.GradScaler:
        """A loss scaler, enabled for fp16 only (disabled, its methods pass straight through)."""
        return torch.amp.GradScaler(self.device_type, enabled=self.name == "fp16")


FP32_CPU = Precision("fp32", "cpu")
_NATIVE_BF16_RNN: dict[str, bool] = {}  # fused cell -> whether this CPU runs it in bf16


def native_bf16_rnn(cell: str) -> bool:
    """Whether this CPU runs the fused ``cell`` (lstm, gru, rnn-*) forward and backward in bf16.

    Found by trying it once on a tiny layer (oneDNN raises where it has no such kernel);
    the global RNG is left as it was.
    """
    if cell not in _NATIVE_BF16_RNN:
        with torch.random.fork_rng(devices=[]):
            layer = _probe_layer(cell)
            x = torch.ones(2, 1, 4, requires_grad=True)
            try:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    y = layer(x)[0]
                y.float().sum().backward()
                _NATIVE_BF16_RNN[cell] = True
            except RuntimeError:
                _NATIVE_BF16_RNN[cell] = False
    return _NATIVE_BF16_RNN[cell]


def _probe_layer(cell: str) -> torch.nn.RNNBase:
    """A 4-unit layer of the fused ``cell``: torch's own module, as ``model.recurrent`` builds it."""
    if cell == "lstm":
        return torch.nn.LSTM(4, 4)
    if cell == "gru":
        return torch.nn.GRU(4, 4)
    return torch.nn.RNN(4, 4, nonlinearity=cell.removeprefix("rnn-"))


def recurrence_in_fp32(cell: str, device_type: str) -> bool:
    """Whether the fused ``cell`` must leave autocast to run here (bf16 on a CPU without its kernel)."""
    return (
        device_type == "cpu"
        and torch.is_autocast_enabled("cpu")
        and torch.get_autocast_dtype("cpu") == torch.bfloat16
        and not native_bf16_rnn(cell)
    )


def fp32_recurrence_notice(precision: Precision, cell: str) -> str | None:
    """One line for the user when bf16 training keeps the recurrence in fp32, else None."""
    if precision.name != "bf16" or cell not in CUSTOM_CELLS:
        return None
    return (
        f"--precision bf16: the {cell} cell's hand-written backward is fp32, so its recurrence "
        "runs in fp32 and the embedding and decoder in bf16"
    )


def resolve_precision(name: str, device: torch.device) -> Precision:
    """The precision ``name`` means on ``device``; one that cannot run there is an error."""
    if name not in PRECISIONS:
        raise LstmlmError(f"--precision must be one of {', '.join(PRECISIONS)} (got {name!r})")
    cuda = device.type == "cuda"
    bf16_ok = cuda and torch.cuda.is_bf16_supported(including_emulation=False)  # emulated bf16 is slow
    if name == "auto":
        return Precision("bf16" if bf16_ok else "fp32", device.type)
    if name == "bf16" and cuda and not bf16_ok:
        raise LstmlmError("--precision bf16: this GPU does not support bfloat16; use fp16 or fp32")
    if name == "bf16" and device.type not in ("cuda", "cpu"):
        raise LstmlmError(f"--precision bf16 runs on cuda or cpu, not {device.type}; use fp32")
    if name == "bf16" and device.type == "cpu" and not native_bf16_rnn("lstm"):
        raise LstmlmError(
            "--precision bf16: this CPU has no native bf16 kernels (oneDNN needs AVX-512 BF16 or AMX), "
            "and emulated bf16 trains about 12x slower than fp32; use --precision fp32"
        )
    if name == "fp16" and not cuda:
        other = "bf16 or fp32" if device.type == "cpu" and native_bf16_rnn("lstm") else "fp32"
        raise LstmlmError(
            f"--precision fp16 needs a CUDA GPU (here: {device.type}); use {other} on this device"
        )
    return Precision(name, device.type)
