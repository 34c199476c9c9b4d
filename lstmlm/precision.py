"""Mixed precision: which dtype forward passes run in, and the fp16 loss scaler.

``auto`` is bf16 on a CUDA GPU that supports it and fp32 anywhere else. bf16 also runs
on CPU (autocast); fp16 needs a CUDA GPU (on CPU, oneDNN has no fp16 LSTM). The
equation cells' recurrence always runs in fp32 (its hand-written backward is fp32;
``CellStack`` leaves autocast for it), their embedding and decoder in the 16-bit
dtype. Weights, optimizer state,
gradients and the carried hidden state stay fp32 in every mode: only the work inside
``autocast`` (matmuls, the recurrent kernels) drops to 16 bits, and the loss is taken in
fp32. So a run may change precision when it is resumed.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from lstmlm.config import PRECISIONS
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
    if name == "fp16" and not cuda:
        raise LstmlmError(
            f"--precision fp16 needs a CUDA GPU (here: {device.type}); use bf16 or fp32 on this device"
        )
    return Precision(name, device.type)
