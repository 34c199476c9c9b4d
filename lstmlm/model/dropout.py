"""Dropout whose masks depend on (seed, step, site, stream), not on how the run is laid out.

``nn.Dropout`` draws from each process's own generator, so two processes that share a
batch drop other units than one process training the whole batch would, and a run
resumed with another number of processes cannot continue the same masks. Here the
training loop names each step (``masks_for_step``); every dropout site of the model then
draws the mask of the *global* batch from a generator seeded by (seed, step, site) and
keeps the rows of this process's streams. One process and W processes with the same
global batch therefore drop the same units, and a resumed run, with any world size,
continues the same masks without restoring any generator state.

Outside such a step (tests, a user's own loop) ``StreamDropout`` is plain dropout from
torch's global generator. Every site's input is (T, B, features): streams along dim 1.

A *locked* site (variational dropout, Gal & Ghahramani 2016, as in AWD-LSTM) draws one
(1, B, features) mask per step and applies it at every time step of the window. The
other mask sites of ``model/regularize.py`` (embedding dropout, weight drop) draw from
the same per-site generators; they are ``MaskSite`` modules too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

_MASK64 = (1 << 64) - 1


@dataclass
class StepMasks:
    """The masks of one training step: this process holds streams [first, first + B_local) of ``total``."""

    seed: int
    step: int
    first: int
    total: int
    sites_drawn: int = field(default=0)

    def key(self) -> int:
        """A seed for the next site's generator; sites are numbered in call order."""
        site, self.sites_drawn = self.sites_drawn, self.sites_drawn + 1
        return _mix(_mix(_mix(self.seed) ^ self.step) ^ site)


_current: ContextVar[StepMasks | None] = ContextVar("lstmlm_step_masks", default=None)


def current_masks() -> StepMasks | None:
    """The ``masks_for_step`` in force, or None outside a training step."""
    return _current.get()


def site_generator(masks: StepMasks, device: torch.device) -> torch.Generator:
    """A generator on ``device`` for the step's next mask site."""
    return torch.Generator(device=device).manual_seed(masks.key())


@contextlib.contextmanager
def masks_for_step(seed: int, step: int, first: int, total: int) -> Iterator[StepMasks]:
    """Within: dropout draws the masks of step ``step`` for streams ``first..`` of ``total``."""
    masks = StepMasks(seed, step, first, total)
    token = _current.set(masks)
    try:
        yield masks
    finally:
        _current.reset(token)


def keep_mask(shape: tuple[int, ...], p: float, device: torch.device) -> Tensor:
    """A boolean keep-mask of ``shape`` from the step's next site (else torch's generator)."""
    masks = current_masks()
    if masks is None:
        return torch.rand(shape, device=device) >= p
    return torch.rand(shape, generator=site_generator(masks, device), device=device) >= p


class MaskSite(nn.Module):
    """A module whose ``forward`` draws masks while training; ``keep_out_of_graphs`` runs it eagerly."""


class StreamDropout(MaskSite):
    """Inverted dropout with probability ``p``; masks from the current ``masks_for_step``.

    ``locked``: one mask per stream and feature, the same at every time step of ``x``.
    """

    def __init__(self, p: float, *, locked: bool = False) -> None:
        super().__init__()
        self.p, self.locked = p, locked

    def extra_repr(self) -> str:
        return f"p={self.p}, locked=True" if self.locked else f"p={self.p}"

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        masks = _current.get()
        if masks is None:
            if not self.locked:
                return nn.functional.dropout(x, self.p, training=True)
            keep = keep_mask((1, *x.shape[1:]), self.p, x.device)
            return x * (keep.to(x.dtype) / (1.0 - self.p))
        return x * _stream_mask(x, self.p, masks, self.locked)


def keep_out_of_graphs(model: nn.Module) -> None:
    """Before ``torch.compile(model)``: run its dropout sites eagerly (a graph break each).

    A context variable and a generator seeded per call are not for graphs. Marking the
    sites here rather than decorating ``forward`` keeps ``torch._dynamo`` (a second of
    import time) out of every command that does not compile.
    """
    for module in model.modules():
        if isinstance(module, MaskSite):
            module.forward = torch.compiler.disable(module.forward)


def _stream_mask(x: Tensor, p: float, masks: StepMasks, locked: bool = False) -> Tensor:
    """The scaled keep-mask for ``x`` (T, B_local, F) at the step's next site: the global
    batch's (T, B, F) draw, or (1, B, F) if ``locked``, cut to this process's streams."""
    steps, local, features = x.shape
    generator = site_generator(masks, x.device)
    noise = torch.rand(1 if locked else steps, masks.total, features, generator=generator, device=x.device)
    keep = noise[:, masks.first : masks.first + local] >= p
    return keep.to(x.dtype) / (1.0 - p)


def _mix(value: int) -> int:
    """splitmix64's finaliser: nearby inputs give unrelated 64-bit outputs."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)
