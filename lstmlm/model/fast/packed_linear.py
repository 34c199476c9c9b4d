"""The recurrent product ``h @ Wᵀ`` on CPU, through oneDNN with the weight packed once.

On CPU in float32 the product (B × H) @ (H × 4H) with B ≈ 20 can be 25% faster through
oneDNN with the weight packed once per sequence than through MKL's sgemm, which repacks
it on every call, or 20% slower (``kernel_choice``: which one wins depends on the CPU and
the shape, so it is measured). ``pack`` decides whether packing pays and ``linear`` uses
the packing when there is one. The two oneDNN ops (``mkldnn._reorder_linear_weight`` and
``mkldnn._linear_pointwise``, the kernels behind ``torch.compile``'s CPU linear) are
private, so ``onednn_works`` checks them against ``mm`` once before any use.
"""

import functools
import time
import weakref
from typing import NamedTuple

import torch
from torch import Tensor

from lstmlm.model.fast.kernel_choice import choose


def linear(h: Tensor, packed: Tensor | None, weight: Tensor) -> Tensor:
    """``h @ weightᵀ``: with oneDNN when ``packed`` is ``pack(weight)``, else a plain matmul."""
    if packed is not None:
        scalars: list[int | float | complex | None] = []  # typed for TorchScript (scan.torchscript_loops)
        return torch.ops.mkldnn._linear_pointwise(h.contiguous(), packed, None, "none", scalars, "")
    return h.mm(weight.t())


def pack(weight: Tensor, batch: int, steps: int, *, keep: bool = False) -> Tensor | None:
    """``weight`` packed for ``linear`` on ``batch`` rows over ``steps`` products, or None where
    plain matmuls are the better deal.

    Which is, is measured (``recurrent_kernel``): packing costs about one product (several
    for a transposed weight) and pays over a long enough sequence where oneDNN's product is
    the faster one. ``keep=True`` (inference, weights frozen) keeps one packing per weight,
    dropped when the weight is modified in place, replaced or freed; later calls reuse it,
    so there only the products are compared.
    """
    if weight.device.type != "cpu" or weight.dtype != torch.float32 or not onednn_works():
        return None
    stamp = (weight.data_ptr(), weight.stride(), weight._version, batch)
    kept = _KEPT.get(id(weight))
    if kept is not None and kept.weight() is weight and kept.stamp == stamp:
        return kept.packed
    if recurrent_kernel(weight, batch, None if keep else steps) == "mkl":
        return None
    packed = torch.ops.mkldnn._reorder_linear_weight(weight, batch)
    if keep:
        key = id(weight)
        _KEPT[key] = _Kept(weakref.ref(weight, lambda _: _KEPT.pop(key, None)), stamp, packed)
    return packed


class _Kept(NamedTuple):
    """A packing kept for inference: valid while ``weight()`` is alive and still has ``stamp``."""

    weight: weakref.ref
    stamp: tuple
    packed: Tensor


_KEPT: dict[int, _Kept] = {}  # id(weight) -> its kept packing


KEPT_PROBE_STEPS = 16  # products timed for a kept packing (its packing not counted)
MAX_PROBE_STEPS = 64  # longer sequences are timed at 64 steps (packing is paid for by then)


def recurrent_kernel(weight: Tensor, batch: int, steps: int | None) -> str:
    """``kernel_choice.choose`` for ``steps`` products with ``weight`` on ``batch`` rows, the
    packing included (None: a kept packing, the products alone). Sequences are timed at a
    power of two of steps at most their length."""
    outputs, inputs = weight.shape
    probe_steps = 0 if steps is None else min(MAX_PROBE_STEPS, 1 << (max(1, steps).bit_length() - 1))
    shape = (batch, inputs, outputs, int(weight.is_contiguous()), probe_steps)
    return choose("recurrent", shape, lambda kernel: _time_sequence(kernel, shape))


def _time_sequence(kernel: str, shape: tuple[int, int, int, int, int]) -> float:
    """Seconds of a sequence on ``shape`` (batch, in, out, contiguous weight, steps; 0 steps:
    ``KEPT_PROBE_STEPS`` products without the packing) by ``kernel``."""
    batch, inputs, outputs, contiguous, steps = shape
    generator = torch.Generator().manual_seed(0)  # not the global one: dropout masks stay put
    weight = torch.rand(outputs, inputs, generator=generator)
    weight = weight if contiguous else weight.t().contiguous().t()
    h = torch.rand(batch, inputs, generator=generator)
    onednn = kernel == "onednn"
    with torch.no_grad():
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, batch) if onednn and not steps else None
        started = time.perf_counter()
        if onednn and steps:
            packed = torch.ops.mkldnn._reorder_linear_weight(weight, batch)
        for _ in range(steps or KEPT_PROBE_STEPS):
            linear(h, packed, weight)
        return time.perf_counter() - started


@functools.cache
def onednn_works() -> bool:
    """Whether this PyTorch build has the packed oneDNN linear ops, and they agree with mm."""
    if not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        return False
    try:
        # fixed values, not torch.randn: this runs inside the first training step, and
        # drawing from the global generator there would shift every later dropout mask
        w = torch.linspace(-1.0, 1.0, 32).reshape(4, 8)  # used transposed, as in backward
        h = torch.linspace(-0.5, 0.7, 12).reshape(3, 4)
        y = linear(h, torch.ops.mkldnn._reorder_linear_weight(w.t(), 3), w.t())
        return torch.allclose(y, h @ w, atol=1e-5)
    except (AttributeError, RuntimeError):
        return False
