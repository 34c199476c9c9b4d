"""The training loop: truncated BPTT with carried state, clipping, schedule, eval, checkpoints.

Plain functions around a small ``TrainState``. The loop never prints: it calls
``on_event(kind, metrics)`` and appends the same events to ``metrics.jsonl``.

Exact resume: a checkpoint is taken only between two windows, and holds everything the
next window depends on (weights, optimizer, loss scaler, schedule, data position, carried
hidden state, RNG states). Resuming from it replays the same arithmetic, so on CPU a run
killed and resumed ends bit-identical to the uninterrupted run.

Speed: ``--precision`` autocasts forward passes (``lstmlm.precision``), ``--compile``
runs them through ``torch.compile``, and under torchrun the model is wrapped in
``DistributedDataParallel`` with each rank on its share of the streams
(``lstmlm.distributed``). On CUDA the train ids stay in pinned host memory and each
window is copied to the GPU without blocking; the host waits for the GPU once per step,
for the non-finite guard (see ``step_verdict``), and at log intervals.
"""

from __future__ import annotations

import contextlib
import math
import random
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from lstmlm import checkpoint as ckpt
from lstmlm import distributed
from lstmlm.config import DEVICES, RunConfig
from lstmlm.data.tokens import get_window, num_windows
from lstmlm.errors import LstmlmError
from lstmlm.evaluate import evaluate_loss, perplexity
from lstmlm.metrics import MetricsLog
from lstmlm.model.dropout import masks_for_step
from lstmlm.model.lm import LanguageModel
from lstmlm.model.recurrent import State
from lstmlm.precision import FP32_CPU, Precision, resolve_precision

EventCallback = Callable[[str, dict[str, Any]], None]
Forward = Callable[[Tensor, State], tuple[Tensor, State]]

EXIT_SIGNALS = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(Exception):
    """Training stopped by a signal after saving; ``exit_code`` is 130 (SIGINT) or 143 (SIGTERM)."""

    def __init__(self, exit_code: int, step: int, run_dir: Path) -> None:
        super().__init__(f"interrupted at step {step}; checkpoint saved in {run_dir} (--resume continues)")
        self.exit_code = exit_code


class SignalExit(BaseException):
    """SIGINT or SIGTERM outside the training loop (data preparation, the final test): stop now.

    A ``BaseException``, like ``KeyboardInterrupt``, so that no ``except Exception`` on the
    way (data loading, tokenizer training, encoding) can swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.exit_code = EXIT_SIGNALS[signum]


@contextlib.contextmanager
def signals_stop_at_once() -> Iterator[None]:
    """Within: SIGINT and SIGTERM raise ``SignalExit`` (``StopRequest`` takes over in the loop)."""

    def stop(signum: int, frame: Any) -> None:
        raise SignalExit(signum)

    previous: dict[int, Any] = {}
    for sig in EXIT_SIGNALS:
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            previous[sig] = signal.signal(sig, stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass
class TrainState:
    """Where the run is. ``window`` is the next window of ``epoch`` to train on."""

    step: int = 0
    epoch: int = 0
    window: int = 0
    lr: float = 0.0
    best_valid_loss: float = math.inf
    last_valid_loss: float = math.inf
    bad_steps_in_a_row: int = 0
    tokens: int = 0
    elapsed: float = 0.0  # training seconds over all sessions of this run


@dataclass
class Splits:
    train: Tensor  # (T, B) batchified train ids
    valid: Tensor  # (T, B_eval)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an explicit device must exist."""
    if name not in DEVICES:
        raise LstmlmError(f"--device must be one of {', '.join(DEVICES)} (got {name!r})")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise LstmlmError("--device cuda: no CUDA GPU is available here")
    if name == "mps" and not torch.backends.mps.is_available():
        raise LstmlmError("--device mps: Apple MPS is not available here")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(model: LanguageModel, config: RunConfig) -> torch.optim.Optimizer:
    tc = config.train
    if tc.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)


def total_steps(config: RunConfig, windows_per_epoch: int) -> int:
    planned = config.train.epochs * windows_per_epoch
    return min(planned, config.train.max_steps) if config.train.max_steps else planned


def scheduled_lr(config: RunConfig, state: TrainState, steps: int) -> float:
    """The learning rate for the next step. Plateau annealing changes ``state.lr`` at evals."""
    if config.train.schedule == "cosine":
        progress = min(state.step / max(steps, 1), 1.0)
        return config.train.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    return state.lr


# ---------------------------------------------------------------- RNG and resume state


def rng_states(device: torch.device | None = None) -> dict[str, Any]:
    """All RNG states as tensors and plain types (loadable with ``weights_only=True``).

    On CUDA, the generator of ``device`` only: the run's one GPU (per rank).
    """
    version, internal, gauss = random.getstate()
    numpy_state = np.random.get_state()
    states: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if device is not None and device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def set_rng_states(states: dict[str, Any], device: torch.device | None = None) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(states["torch"])
    cuda = states.get("cuda")
    if cuda is not None and device is not None and device.type == "cuda":
        if isinstance(cuda, list):  # older checkpoints: every visible GPU's state
            index = device.index or 0
            cuda = cuda[index] if index < len(cuda) else None
        if cuda is not None:
            torch.cuda.set_rng_state(cuda, device)


def resume_payload(
    state: TrainState,
    optimizer: torch.optim.Optimizer,
    hidden: State,
    scaler: torch.amp.GradScaler | None = None,
    device: torch.device | None = None,
) -> dict[str, Any]:
    """What a checkpoint holds besides the weights; ``hidden`` covers all B streams."""
    return {
        "train_state": asdict(state),
        "optimizer": optimizer.state_dict(),
        "hidden": [h.detach().cpu() for h in hidden],
        "rng": rng_states(device),
        "scaler": scaler.state_dict() if scaler is not None else {},
    }


def restore(
    checkpoint: ckpt.Checkpoint,
    model: LanguageModel,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[TrainState, State]:
    """Load a checkpoint into model, optimizer and scaler; returns the state and the hidden of all streams.

    The scaler state is used when both runs scale (fp16); a run that changed precision
    starts a fresh scaler or drops the old one.
    """
    ckpt.load_weights_into(model, checkpoint.weights, checkpoint.weights_path)
    payload = checkpoint.state
    try:
        optimizer.load_state_dict(payload["optimizer"])
        state = TrainState(**payload["train_state"])
        hidden = tuple(h.to(device) for h in payload["hidden"])
        set_rng_states(payload["rng"], device)
        if scaler is not None and scaler.is_enabled() and payload.get("scaler"):
            scaler.load_state_dict(payload["scaler"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise LstmlmError(f"{checkpoint.weights_path.parent / ckpt.STATE}: incompatible ({e})") from None
    return state, hidden


# ---------------------------------------------------------------- signals


class StopRequest:
    """SIGINT/SIGTERM set a flag checked between windows; a second SIGINT aborts at once."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum

    def __enter__(self) -> StopRequest:
        for sig in EXIT_SIGNALS:
            with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# ---------------------------------------------------------------- the loop


def windows(
    source: Tensor, bptt: int, start: int, device: torch.device | None = None
) -> Iterator[tuple[int, Tensor, Tensor]]:
    """(index, x, y) for the BPTT windows of one epoch, from window ``start`` on, on ``device``.

    Each window's rows travel once (x and y overlap); from pinned memory without blocking.
    """
    for index in range(start, num_windows(source, bptt)):
        first = index * bptt
        rows = source[first : first + bptt + 1]
        if device is not None:
            rows = rows.to(device, non_blocking=True)
        x, y = get_window(rows, 0, bptt)
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
) -> tuple[Tensor, Tensor, State]:
    """One truncated-BPTT window: forward, loss, backward, clip. Returns (loss, grad norm, state).

    ``forward`` (default ``model``) may be the compiled and/or DDP-wrapped model; its
    parameters are ``model``'s. With a loss scaler the gradients are unscaled before
    clipping, so the norm is the true one. The returned state is fp32 whatever the
    precision. The optimizer step is left to the caller, which skips it on a non-finite
    loss or norm.
    """
    optimizer.zero_grad(set_to_none=True)
    with precision.autocast():
        logits, hidden = (model if forward is None else forward)(x, hidden)
    loss = F.cross_entropy(logits.flatten(0, 1).float(), y.reshape(-1))
    (scaler.scale(loss) if scaler is not None else loss).backward()
    if scaler is not None:
        scaler.unscale_(optimizer)
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip if clip > 0 else math.inf)
    return loss.detach(), norm, tuple(h.detach().float() for h in hidden)


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


def train(
    config: RunConfig,
    model: LanguageModel,
    splits: Splits,
    run_dir: Path,
    *,
    on_event: EventCallback = lambda kind, metrics: None,
    resume_from: ckpt.Checkpoint | None = None,
    device: torch.device | None = None,
) -> TrainState:
    """Train ``model`` and checkpoint into ``run_dir``; returns the final ``TrainState``.

    Under torchrun every rank calls this with the same arguments (see ``lstmlm.distributed``);
    rank 0 alone writes ``run_dir`` and calls ``on_event``.
    """
    tc = config.train
    device = device or torch.device("cpu")
    group = distributed.current()
    distributed.check_batch_size(tc.batch_size, group)
    precision = resolve_precision(tc.precision, device)
    model.to(device)
    optimizer = make_optimizer(model, config)
    scaler = precision.scaler()
    train_data = _host_or_device(distributed.my_streams(splits.train), device)
    valid_data = splits.valid.to(device)
    per_epoch = num_windows(train_data, tc.bptt)
    steps = total_steps(config, per_epoch)
    metrics = MetricsLog(run_dir / ckpt.METRICS) if group.is_main else None
    if not group.is_main:
        on_event = _ignore_event

    if resume_from is not None:
        state, all_hidden = restore(resume_from, model, optimizer, device, scaler)
        if any(h.size(1) != tc.batch_size for h in all_hidden):
            raise LstmlmError(
                f"{run_dir / ckpt.STATE}: incompatible (carried state for {all_hidden[0].size(1)} streams, "
                f"batch size {tc.batch_size})"
            )
        if state.window >= per_epoch:  # a loop over no windows would never end
            raise LstmlmError(
                f"{run_dir / ckpt.STATE}: saved at window {state.window + 1} of epoch {state.epoch + 1}, "
                f"but an epoch of the train split has {per_epoch} windows: the data changed since"
            )
        hidden = tuple(distributed.my_streams(h) for h in all_hidden)
        if metrics is not None:
            metrics.truncate_after(state.step)
        on_event(
            "resume", {"step": state.step, "epoch": state.epoch + 1, "lr": scheduled_lr(config, state, steps)}
        )
    else:
        state = TrainState(lr=tc.lr)
        hidden = model.init_state(tc.batch_size // group.world_size, device)
        if metrics is not None:
            metrics.truncate_after(-1)

    train_forward: Any = model
    if group.distributed:
        train_forward = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    eval_forward: Any = model
    if tc.compile:
        train_forward = torch.compile(train_forward)
        eval_forward = torch.compile(model) if group.distributed else train_forward

    def emit(kind: str, values: dict[str, Any]) -> None:
        record = {"event": kind, "step": state.step, "epoch": state.epoch + 1, **values}
        if metrics is not None:
            metrics.write(record)
        on_event(kind, record)

    def save() -> None:
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            emit("unsaved", {"reason": "non-finite weights; the previous checkpoint is kept"})
            return
        every_stream = distributed.all_streams(hidden)
        if group.is_main:
            payload = resume_payload(state, optimizer, every_stream, scaler, device)
            ckpt.save_checkpoint(run_dir, model, payload, state.step)
        last_save[0] = time.monotonic()
        on_event("save", {"step": state.step})

    def evaluate_and_anneal() -> None:
        valid_loss = evaluate_loss(model, valid_data, tc.bptt, precision=precision, forward=eval_forward)
        model.train()
        improved = valid_loss < state.best_valid_loss
        annealed = not improved and tc.schedule == "plateau"
        state.last_valid_loss = valid_loss
        if improved:
            state.best_valid_loss = valid_loss
            if group.is_main:
                ckpt.write_atomic(run_dir / ckpt.BEST, ckpt.weights_bytes(model, state.step))
        elif annealed:
            state.lr /= tc.anneal_factor
        emit(
            "eval",
            {
                "valid_loss": valid_loss,
                "valid_ppl": perplexity(valid_loss),
                "best_valid_ppl": perplexity(state.best_valid_loss),
                "lr": scheduled_lr(config, state, steps),  # for the next step
                "improved": improved,
                "annealed": annealed,
            },
        )

    emit(
        "start",
        {
            "total_steps": steps,
            "windows_per_epoch": per_epoch,
            "parameters": model.num_parameters(),
            "device": str(device),
            "precision": precision.name,
            "compile": tc.compile,
            "world_size": group.world_size,
        },
    )
    last_save = [time.monotonic()]
    interval_loss, interval_tokens, interval_start = torch.zeros((), device=device), 0, time.perf_counter()
    overflows = 0
    first_stream = group.rank * (tc.batch_size // group.world_size)  # this rank's streams in dropout masks
    model.train()
    with StopRequest() as stop:
        while state.epoch < tc.epochs and state.step < steps:
            if state.window == 0:
                hidden = model.init_state(tc.batch_size // group.world_size, device)
            for index, x, y in windows(train_data, tc.bptt, state.window, device):
                lr = scheduled_lr(config, state, steps)
                for param_group in optimizer.param_groups:
                    param_group["lr"] = lr
                with masks_for_step(tc.seed, state.step, first_stream, tc.batch_size):
                    loss, norm, new_hidden = train_step(
                        model,
                        optimizer,
                        x,
                        y,
                        hidden,
                        tc.clip,
                        forward=train_forward,
                        precision=precision,
                        scaler=scaler,
                    )
                minutes = (time.monotonic() - last_save[0]) / 60
                verdict = step_verdict(
                    loss,
                    norm,
                    scaler=scaler,
                    signal_received=stop.signal,
                    timed_save=bool(tc.save_every_minutes and minutes >= tc.save_every_minutes),
                )
                state.step += 1
                state.window = index + 1
                tokens = y.numel() * group.world_size
                if verdict.step:
                    optimizer.step()  # not scaler.step(): the verdict already knows the gradients are finite
                    hidden = new_hidden
                    state.bad_steps_in_a_row = 0
                    interval_loss += verdict.loss * tokens
                    interval_tokens += tokens
                    state.tokens += tokens
                elif verdict.overflow:
                    hidden = new_hidden  # the forward pass was fine; only the update is skipped
                    overflows += 1
                else:
                    state.bad_steps_in_a_row += 1
                    emit("nonfinite", {"loss": float(verdict.loss), "grad_norm": float(norm), "lr": lr})
                    if state.bad_steps_in_a_row >= tc.max_bad_steps:
                        raise LstmlmError(
                            f"training diverged: {state.bad_steps_in_a_row} non-finite steps in a row "
                            f"at step {state.step} (lr {lr:g}); the last good checkpoint is kept. "
                            "Try a lower --lr or a smaller --clip"
                        )
                scaler.update()

                end_of_epoch = state.window == per_epoch
                if state.step % tc.log_every == 0 or end_of_epoch or state.step == steps:
                    mean = float(interval_loss) / interval_tokens if interval_tokens else math.nan
                    now = time.perf_counter()
                    state.elapsed += now - interval_start
                    if interval_tokens:
                        record = {
                            "loss": mean,
                            "ppl": perplexity(mean),
                            "lr": lr,
                            "tokens_per_s": interval_tokens / max(now - interval_start, 1e-9),
                            "total_steps": steps,
                            "elapsed": state.elapsed,
                        }
                        if scaler.is_enabled():
                            record.update(loss_scale=scaler.get_scale(), overflow_skips=overflows)
                        emit("log", record)
                        overflows = 0
                    interval_loss.zero_()
                    interval_tokens, interval_start = 0, now
                if end_of_epoch:
                    state.epoch, state.window = state.epoch + 1, 0
                evaluate_now = (
                    end_of_epoch or state.step == steps or (tc.eval_every and state.step % tc.eval_every == 0)
                )
                if evaluate_now:
                    evaluate_and_anneal()
                # One process acts on a signal that arrived during this step's logging or
                # evaluation at once; ranks act on the signal they agreed about above.
                signal_received = verdict.signal if group.distributed else stop.signal
                if (
                    evaluate_now
                    or (tc.save_every and state.step % tc.save_every == 0)
                    or verdict.timed_save
                    or signal_received is not None
                ):
                    save()
                if signal_received is not None:
                    raise Interrupted(EXIT_SIGNALS[signal_received], state.step, run_dir)
                if end_of_epoch or state.step >= steps:
                    break
    in_sync = distributed.in_sync(model.parameters())
    emit(
        "end",
        {
            "best_valid_ppl": perplexity(state.best_valid_loss),
            "tokens": state.tokens,
            "elapsed": state.elapsed,
            "ranks_in_sync": in_sync,
        },
    )
    return state


def _host_or_device(source: Tensor, device: torch.device) -> Tensor:
    """Where the train ids live: pinned host memory for a CUDA run (windows are copied
    without blocking), the device itself otherwise."""
    if device.type != "cuda":
        return source.to(device)
    try:
        return source.pin_memory()
    except RuntimeError:  # pinning can fail for a huge split; pageable memory still works
        return source


def _ignore_event(kind: str, metrics: dict[str, Any]) -> None:
    pass
