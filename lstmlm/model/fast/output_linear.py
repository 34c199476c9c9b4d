"""The output layer's product ``x @ Wᵀ + b``, in fp32 on CPU through oneDNN's inner product
or MKL's sgemm, whichever ``kernel_choice`` measured faster here."""

from __future__ import annotations

import functools
import time

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmlm.model.fast.kernel_choice import choose


def fast_linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.linear(x, weight, bias)``: in fp32 on CPU through oneDNN's inner product or MKL's
    sgemm, whichever ``decoder_kernel`` found faster on this machine.

    ``nn.Linear`` multiplies fp32 on CPU with MKL's sgemm, which runs its AVX2 code on
    x86 CPUs other than Intel's even where they have AVX-512; oneDNN picks its kernels
    by instruction set. At a word vocabulary the decoder's forward and backward
    (``aten::mkldnn_linear`` has a oneDNN backward too) are most of a step's work: on an
    AVX-512 AMD EPYC oneDNN ran them 2.0x faster (1.2x with oneDNN held to AVX2), a 2x650
    step at vocab 11.8k 1.5x (1.1x); on an AVX2-only EPYC MKL was 3-8% faster. Both are
    fp32 (oneDNN's default strict fp32 math); only the sums are taken in another order
    (relative differences about 1e-6 per product), and deterministically. Under autocast,
    off the CPU and in ``torch.compile`` graphs: plain ``F.linear``.
    """
    if not _onednn_linear(x, weight) or decoder_kernel(weight) == "mkl":
        return F.linear(x, weight, bias)
    flat = x.reshape(-1, x.size(-1)).to_mkldnn()
    logits = torch._C._nn.mkldnn_linear(flat, weight.contiguous(), bias)
    return logits.to_dense().view(*x.shape[:-1], -1)


PROBE_ROWS = 1024  # the rows of the timed product: about a training window's (35 x 20 ... 70 x 80)


def decoder_kernel(weight: Tensor) -> str:
    """``kernel_choice.choose`` for the decoder of ``weight``, timed at ``PROBE_ROWS`` rows.

    One choice per weight shape, whatever the rows of a call: a window scored whole and
    the same window in segments (dynamic evaluation, the cache, ``score``) then take the
    same sums in the same order.
    """
    shape = (PROBE_ROWS, weight.size(1), weight.size(0))
    return choose("decoder", shape, lambda kernel: _time_decoder(kernel, shape))


def _time_decoder(kernel: str, shape: tuple[int, int, int]) -> float:
    """Seconds of one forward and backward of the product at ``shape`` (rows, in, out) by ``kernel``."""
    rows, inputs, outputs = shape
    generator = torch.Generator().manual_seed(0)  # not the global one: dropout masks stay put
    with torch.inference_mode(False), torch.enable_grad():
        x = torch.rand(rows, inputs, generator=generator).requires_grad_()
        w = torch.rand(outputs, inputs, generator=generator).requires_grad_()
        b = torch.zeros(outputs, requires_grad=True)
        started = time.perf_counter()
        if kernel == "mkl":
            y = F.linear(x, w, b)
        else:
            y = torch._C._nn.mkldnn_linear(x.to_mkldnn(), w, b).to_dense()
        torch.autograd.grad(y, (x, w, b), torch.ones_like(y))
        return time.perf_counter() - started


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
