"""The training loop: truncated BPTT with carried state, clipping, schedule, eval, checkpoints.

Plain functions around a small ``TrainState``. The loop never prints: it calls
``on_event(kind, metrics)`` and appends the same events to ``metrics.jsonl``.

Exact resume: a checkpoint is taken only between two windows, and holds everything the
next window depends on (weights, optimizer, schedule, data position, carried hidden
state, RNG states). Resuming from it replays the same arithmetic, so on CPU a run
killed and resumed ends bit-identical to the uninterrupted run.
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

from lstmlm import checkpoint as ckpt
from lstmlm.config import DEVICES, RunConfig
from lstmlm.data.tokens import get_window, num_windows
from lstmlm.errors import LstmlmError
from lstmlm.evaluate import evaluate_loss
from lstmlm.metrics import MetricsLog
from lstmlm.model.lm import LanguageModel, detach_state
from lstmlm.model.recurrent import State

EventCallback = Callable[[str, dict[str, Any]], None]

EXIT_SIGNALS = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(Exception):
    """Training stopped by a signal after saving; ``exit_code`` is 130 (SIGINT) or 143 (SIGTERM)."""

    def __init__(self, exit_code: int, step: int) -> None:
        super().__init__(f"interrupted at step {step}; checkpoint saved")
        self.exit_code = exit_code


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


def rng_states() -> dict[str, Any]:
    """All RNG states as tensors and plain types (loadable with ``weights_only=True``)."""
    version, internal, gauss = random.getstate()
    numpy_state = np.random.get_state()
    states: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def resume_payload(state: TrainState, optimizer: torch.optim.Optimizer, hidden: State) -> dict[str, Any]:
    return {
        "train_state": asdict(state),
        "optimizer": optimizer.state_dict(),
        "hidden": [h.detach().cpu() for h in hidden],
        "rng": rng_states(),
    }


def restore(
    checkpoint: ckpt.Checkpoint,
    model: LanguageModel,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
) -> tuple[TrainState, State]:
    ckpt.load_weights_into(model, checkpoint.weights, checkpoint.weights_path)
    payload = checkpoint.state
    try:
        optimizer.load_state_dict(payload["optimizer"])
        state = TrainState(**payload["train_state"])
        hidden = tuple(h.to(device) for h in payload["hidden"])
        set_rng_states(payload["rng"])
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


def windows(source: Tensor, bptt: int, start: int) -> Iterator[tuple[int, Tensor, Tensor]]:
    """(index, x, y) for the BPTT windows of one epoch, from window ``start`` on."""
    for index in range(start, num_windows(source, bptt)):
        x, y = get_window(source, index * bptt, bptt)
        yield index, x, y


def train_step(
    model: LanguageModel,
    optimizer: torch.optim.Optimizer,
    x: Tensor,
    y: Tensor,
    hidden: State,
    clip: float,
) -> tuple[Tensor, Tensor, State]:
    """One truncated-BPTT window: forward, loss, backward, clip. Returns (loss, grad norm, state).

    The optimizer step is left to the caller, which skips it if loss or norm is not finite.
    """
    optimizer.zero_grad(set_to_none=True)
    logits, hidden = model(x, hidden)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1))
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip if clip > 0 else math.inf)
    return loss.detach(), norm, detach_state(hidden)


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
    """Train ``model`` and checkpoint into ``run_dir``; returns the final ``TrainState``."""
    tc = config.train
    device = device or torch.device("cpu")
    model.to(device)
    optimizer = make_optimizer(model, config)
    train_data, valid_data = splits.train.to(device), splits.valid.to(device)
    per_epoch = num_windows(train_data, tc.bptt)
    steps = total_steps(config, per_epoch)
    metrics = MetricsLog(run_dir / ckpt.METRICS)

    if resume_from is not None:
        state, hidden = restore(resume_from, model, optimizer, device)
        metrics.truncate_after(state.step)
        on_event(
            "resume", {"step": state.step, "epoch": state.epoch + 1, "lr": scheduled_lr(config, state, steps)}
        )
    else:
        state, hidden = TrainState(lr=tc.lr), model.init_state(tc.batch_size, device)
        metrics.truncate_after(-1)

    def emit(kind: str, values: dict[str, Any]) -> None:
        record = {"event": kind, "step": state.step, "epoch": state.epoch + 1, **values}
        metrics.write(record)
        on_event(kind, record)

    def save() -> None:
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            emit("unsaved", {"reason": "non-finite weights; the previous checkpoint is kept"})
            return
        payload = resume_payload(state, optimizer, hidden)
        ckpt.save_checkpoint(run_dir, model, payload, state.step)
        last_save[0] = time.monotonic()
        on_event("save", {"step": state.step})

    def evaluate_and_anneal() -> None:
        valid_loss = evaluate_loss(model, valid_data, tc.bptt)
        model.train()
        improved = valid_loss < state.best_valid_loss
        annealed = not improved and tc.schedule == "plateau"
        state.last_valid_loss = valid_loss
        if improved:
            state.best_valid_loss = valid_loss
            ckpt.write_atomic(run_dir / ckpt.BEST, ckpt.weights_bytes(model, state.step))
        elif annealed:
            state.lr /= tc.anneal_factor
        emit(
            "eval",
            {
                "valid_loss": valid_loss,
                "valid_ppl": _ppl(valid_loss),
                "best_valid_ppl": _ppl(state.best_valid_loss),
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
        },
    )
    last_save = [time.monotonic()]
    interval_loss, interval_tokens, interval_start = torch.zeros((), device=device), 0, time.perf_counter()
    model.train()
    with StopRequest() as stop:
        while state.epoch < tc.epochs and state.step < steps:
            if state.window == 0:
                hidden = model.init_state(tc.batch_size, device)
            for index, x, y in windows(train_data, tc.bptt, state.window):
                lr = scheduled_lr(config, state, steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                loss, norm, new_hidden = train_step(model, optimizer, x, y, hidden, tc.clip)
                state.step += 1
                state.window = index + 1
                if torch.isfinite(loss) and torch.isfinite(norm):
                    optimizer.step()
                    hidden = new_hidden
                    state.bad_steps_in_a_row = 0
                    interval_loss += loss * y.numel()
                    interval_tokens += y.numel()
                    state.tokens += y.numel()
                else:
                    state.bad_steps_in_a_row += 1
                    emit("nonfinite", {"loss": float(loss), "grad_norm": float(norm), "lr": lr})
                    if state.bad_steps_in_a_row >= tc.max_bad_steps:
                        raise LstmlmError(
                            f"training diverged: {state.bad_steps_in_a_row} non-finite steps in a row "
                            f"at step {state.step} (lr {lr:g}); the last good checkpoint is kept. "
                            "Try a lower --lr or a smaller --clip"
                        )

                end_of_epoch = state.window == per_epoch
                if state.step % tc.log_every == 0 or end_of_epoch or state.step == steps:
                    now = time.perf_counter()
                    state.elapsed += now - interval_start
                    if interval_tokens:
                        mean = float(interval_loss) / interval_tokens
                        emit(
                            "log",
                            {
                                "loss": mean,
                                "ppl": _ppl(mean),
                                "lr": lr,
                                "tokens_per_s": interval_tokens / max(now - interval_start, 1e-9),
                                "total_steps": steps,
                                "elapsed": state.elapsed,
                            },
                        )
                    interval_loss.zero_()
                    interval_tokens, interval_start = 0, now
                if end_of_epoch:
                    state.epoch, state.window = state.epoch + 1, 0
                evaluate_now = (
                    end_of_epoch or state.step == steps or (tc.eval_every and state.step % tc.eval_every == 0)
                )
                if evaluate_now:
                    evaluate_and_anneal()
                minutes = (time.monotonic() - last_save[0]) / 60
                if (
                    evaluate_now
                    or (tc.save_every and state.step % tc.save_every == 0)
                    or (tc.save_every_minutes and minutes >= tc.save_every_minutes)
                    or stop.signal is not None
                ):
                    save()
                if stop.signal is not None:
                    raise Interrupted(EXIT_SIGNALS[stop.signal], state.step)
                if end_of_epoch or state.step >= steps:
                    break
    emit(
        "end",
        {"best_valid_ppl": _ppl(state.best_valid_loss), "tokens": state.tokens, "elapsed": state.elapsed},
    )
    return state


def _ppl(loss: float) -> float:
    return math.exp(min(loss, 700.0))
