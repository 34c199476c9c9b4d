"""The output layer's product ``x @ Wᵀ + b``, in fp32 on CPU through oneDNN's inner product."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor


def fast_linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.linear(x, weight, bias)``: in fp32 on CPU through oneDNN's inner product instead of MKL's sgemm.

    ``nn.Linear`` multiplies fp32 on CPU with MKL's sgemm, which runs its AVX2 code on
    x86 CPUs other than Intel's even where they have AVX-512; oneDNN picks its kernels
    by instruction set. At a word vocabulary the decoder's forward and backward
    (``aten::mkldnn_linear`` has a oneDNN backward too) are most of a step's work: on an
    AVX-512 AMD EPYC they ran 2.0x faster (1.2x with oneDNN held to AVX2), a 2x650 step
    at vocab 11.8k 1.5x (1.1x). Still fp32 (oneDNN's default strict fp32 math); only the
    sums are taken in another order (relative differences about 1e-6 per product), and
    deterministically. Under autocast, off the CPU and in ``torch.compile`` graphs:
    plain ``F.linear``.
    """
    if not _onednn_linear(x, weight):
        return F.linear(x, weight, bias)
    flat = x.reshape(-1, x.size(-1)).to_mkldnn()
    logits = torch._C._nn.mkldnn_linear(flat, weight.contiguous(), bias)
    return logits.to_dense().view(*x.shape[:-1], -1)


_is_compiling = getattr(torch.compiler, "is_compiling", None)


def _onednn_linear(x: Tensor, weight: Tensor) -> bool:
    return (
        x.device.type == "cpu"
        and x.dtype == weight.dtype == torch.float32
        and x.numel() > 0
        and not torch.is_autocast_enabled("cpu")
        and _is_compiling is not None  # torch < 2.3 cannot tell: plain F.linear
        and not _is_compiling()
        and bool(torch.backends.mkldnn.enabled)  # a bool at run time, a ContextProp to type checkers
        and _mkldnn_linear_works()
    )


@functools.cache
def _mkldnn_linear_works() -> bool:
    """Whether this PyTorch build has ``mkldnn_linear`` (a private op), and it agrees with ``linear``."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        # fixed values, not torch.randn: drawing from the global generator here would
        # shift every later dropout mask of a run outside ``masks_for_step``
        w = torch.linspace(-1.0, 1.0, 12).reshape(3, 4)
        x = torch.linspace(-0.5, 0.7, 8).reshape(2, 4)
        y = torch._C._nn.mkldnn_linear(x.to_mkldnn(), w, None).to_dense()
        return torch.allclose(y, x @ w.t(), atol=1e-5)
    except (AttributeError, RuntimeError):
        return False
