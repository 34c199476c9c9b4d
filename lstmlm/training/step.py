"""One training step: a BPTT window on the device, forward/backward/clip, and the verdict.

The verdict (``step_verdict``) is the one point per step where the host waits for the
device: whether the loss and gradient norm are finite decides whether the optimizer step
is taken. Under torchrun it also agrees the stop and save requests across the ranks.
"""

from __future__ import annotations

import contextlib
import math
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lstmlm.data.tokens import get_window
from lstmlm.model.recurrent import State
from lstmlm.runtime import distributed
from lstmlm.runtime.precision import FP32_CPU, Precision

Forward = Callable[..., tuple[Any, ...]]  # the model, maybe DDP-wrapped, compiled: (loss, state[, penalty])
MaskContext = Callable[[int], contextlib.AbstractContextManager[Any]]


def windows(
    source: Tensor, plan: Sequence[tuple[int, int]], start: int, device: torch.device | None = None
) -> Iterator[tuple[int, Tensor, Tensor]]:
    """(index, x, y) for the windows of an epoch's ``plan`` (first row, length), from window ``start`` on.

    Each window's rows travel to ``device`` once (x and y overlap); from pinned memory
    without blocking.
    """
    for index in range(start, len(plan)):
        first, length = plan[index]
        rows = source[first : first + length + 1]
        if device is not None:
            rows = rows.to(device, non_blocking=True)
        x, y = get_window(rows, 0, length)
        yield index, x, y


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: Tensor,
    y: Tensor,
    hidden: State,
    clip: float,
    *,
    forward: Forward | None = None,
    precision: Precision = FP32_CPU,
    scaler: torch.amp.GradScaler | None = None,
    micro_batches: int = 1,
    dropout_masks: MaskContext = lambda first: contextlib.nullcontext(),
    penalty: bool = False,
) -> tuple[Tensor, Tensor, State]:
    """One truncated-BPTT window: forward, loss, backward, clip. Returns (loss, grad norm, state).

    ``forward`` (default ``model``) may be the compiled and/or DDP-wrapped model; its
    parameters are ``model``'s. ``micro_batches`` > 1 runs the streams in that many equal
    groups, one after the other, each loss weighted by its share, so the gradients add up
    to the whole batch's (gradient accumulation: less memory, the same update up to
    rounding). ``dropout_masks(first)`` is entered around the forward pass of the group
    starting at stream ``first`` of ``x``, so that every group draws the masks the whole
    batch would (``lstmlm.model.dropout.masks_for_step``). With a loss scaler the
    gradients are unscaled before clipping, so the norm is the true one. The returned state
    is fp32 whatever the precision. The optimizer step is left to the caller, which skips
    it on a non-finite loss or norm. ``penalty`` adds the model's AR/TAR term to the
    loss that is minimised (``LanguageModel.forward(..., with_penalty=True)``); the loss
    returned is the cross-entropy alone, as perplexity needs.
    """
    optimizer.zero_grad(set_to_none=True)
    run = model if forward is None else forward
    losses, states = [], []
    for first, xs, ys, hs in _micro_batches(x, y, hidden, micro_batches):
        with dropout_masks(first), precision.autocast():
            token_loss, new_hidden, *extra = run(xs, hs, targets=ys, with_penalty=penalty)
        loss = token_loss.mean()
        share = (loss + extra[0] if penalty else loss) / micro_batches
        (scaler.scale(share) if scaler is not None else share).backward()
        losses.append(loss.detach())
        states.append(tuple(h.detach().float() for h in new_hidden))
    if scaler is not None:
        scaler.unscale_(optimizer)
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip if clip > 0 else math.inf)
    if micro_batches == 1:
        return losses[0], norm, states[0]
    return (
        torch.stack(losses).mean(),
        norm,
        tuple(torch.cat(parts, dim=1) for parts in zip(*states, strict=True)),
    )


def _micro_batches(
    x: Tensor, y: Tensor, hidden: State, n: int
) -> Iterator[tuple[int, Tensor, Tensor, State]]:
    """The window's streams (dim 1) in ``n`` equal groups: (first stream, x, y, carried state)."""
    if n == 1:
        yield 0, x, y, hidden
        return
    size = x.size(1) // n
    for first in range(0, x.size(1), size):
        part = slice(first, first + size)
        yield first, x[:, part], y[:, part], tuple(h[:, part] for h in hidden)


@dataclass
class Verdict:
    """What all ranks agree about a step that has run forward and backward."""

    loss: Tensor  # mean loss over all ranks' streams, on the device
    step: bool  # loss and gradient norm are finite: take the optimizer step
    overflow: bool  # fp16 only: the loss is finite, the scaled gradients overflowed
    signal: int | None  # a stop signal some rank received
    timed_save: bool  # some rank's save-every-minutes clock ran out


def step_verdict(
    loss: Tensor,
    norm: Tensor,
    *,
    scaler: torch.amp.GradScaler,
    signal_received: int | None,
    timed_save: bool,
) -> Verdict:
    """Decide whether to take the step: the one point per step where the host waits for the device.

    The optimizer step must be skipped when the loss or the gradient norm is not finite,
    and skipping needs the answer before stepping, so it cannot stay on the device. Under
    torchrun the same wait all-reduces the loss, the norm's finiteness and the stop and
    save requests, so every rank takes the same decisions at the same step.

    The non-finite rule with fp16: a finite loss whose scaled gradients overflow is the
    loss scaler's business (it skips the step and halves its scale) and is not a
    non-finite step of the guard, unless the scale was already below 1: then scaling is
    not what overflowed, and the step counts. A non-finite loss always counts.
    """
    group = distributed.current()
    if group.distributed:
        flags = [signal_received == signal.SIGINT, signal_received == signal.SIGTERM, timed_save]
        requests = loss.new_tensor([float(f) for f in flags], dtype=torch.float32)
        values = torch.cat([loss.float().view(1), (~torch.isfinite(norm)).float().view(1), requests])
        loss_sum, bad_norm, sigint, sigterm, timed = distributed.sum_over_ranks(values).tolist()
        loss = values[0] / group.world_size
        finite_loss, finite_norm = math.isfinite(loss_sum), not bad_norm
        signal_received = signal.SIGTERM if sigterm else signal.SIGINT if sigint else None
        timed_save = bool(timed)
    else:
        finite_loss = finite_norm = bool(torch.isfinite(loss) & torch.isfinite(norm))
        if not finite_loss:  # a bad step: the extra waits are rare
            finite_loss, finite_norm = bool(torch.isfinite(loss)), bool(torch.isfinite(norm))
    overflow = finite_loss and not finite_norm and scaler.is_enabled() and scaler.get_scale() >= 1.0
    return Verdict(loss, finite_loss and finite_norm, overflow, signal_received, timed_save)


def host_or_device(source: Tensor, device: torch.device) -> Tensor:
    """Where the train ids live: pinned host memory for a CUDA run (windows are copied
    without blocking), the device itself otherwise."""
    if device.type != "cuda":
        return source.to(device)
    try:
        return source.pin_memory()
    except RuntimeError:  # pinning can fail for a huge split; pageable memory still works
        return source
