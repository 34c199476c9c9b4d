"""The training loop: truncated BPTT with carried state, clipping, schedule, eval, checkpoints.

``train`` sets up a ``Loop`` (the session's model, optimizer, data, state and running
totals) and drives it window by window: step, log, evaluate, save, stop. The loop never
prints: every event goes through ``Loop.emit``, which appends it to ``metrics.jsonl`` and
hands it to ``on_event`` as a typed ``lstmlm.events.Event``.

Exact resume: a checkpoint is taken only between two windows and holds everything the
next window depends on (``lstmlm.resume_state``), so on CPU a run killed and resumed ends
bit-identical to the uninterrupted run. Signals stop the loop after a checkpoint
(``lstmlm.stopping``).

Speed: ``--precision`` autocasts forward passes (``lstmlm.precision``), ``--compile``
runs them through ``torch.compile``, and under torchrun the model is wrapped in
``DistributedDataParallel`` with each rank on its share of the streams
(``lstmlm.distributed``). On CUDA the train ids stay in pinned host memory and each
window is copied to the GPU without blocking; the host waits for the GPU once per step,
for the non-finite guard (``lstmlm.step.step_verdict``), and at log intervals.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from lstmlm import checkpoint as ckpt
from lstmlm import distributed, events, run_folder
from lstmlm.config import RunConfig
from lstmlm.data.tokens import num_windows
from lstmlm.errors import LstmlmError
from lstmlm.evaluate import evaluate_loss, perplexity
from lstmlm.files import write_atomic
from lstmlm.metrics import MetricsLog
from lstmlm.model.dropout import keep_out_of_graphs, masks_for_step
from lstmlm.model.lm import LanguageModel
from lstmlm.model.recurrent import State
from lstmlm.precision import Precision, resolve_precision
from lstmlm.resume_state import TrainState, resume, resume_payload
from lstmlm.step import Forward, Verdict, host_or_device, step_verdict, train_step, windows
from lstmlm.stopping import EXIT_SIGNALS, Interrupted, StopRequest


@dataclass
class Splits:
    train: Tensor  # (T, B) batchified train ids
    valid: Tensor  # (T, B_eval)


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


# ---------------------------------------------------------------- the loop


@dataclass
class Interval:
    """Totals since the last log: token-weighted loss (on the device), tokens, fp16 overflow skips."""

    loss: Tensor
    tokens: int = 0
    overflows: int = 0
    start: float = field(default_factory=time.perf_counter)


@dataclass
class Loop:
    """One training session: its parts, where the run is, and the running totals.

    Built by ``_set_up``; ``train`` drives it. Rank 0 alone has ``metrics``; the other
    ranks' ``on_event`` ignores events.
    """

    config: RunConfig
    model: LanguageModel
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    precision: Precision
    train_forward: Forward  # DDP-wrapped and/or compiled ``model``
    eval_forward: Forward
    train_data: Tensor  # this rank's streams
    valid_data: Tensor
    run_dir: Path
    device: torch.device
    group: distributed.Group
    state: TrainState
    hidden: State  # carried over this rank's streams
    steps: int  # the run's last step
    per_epoch: int  # windows in an epoch
    metrics: MetricsLog | None
    on_event: events.EventCallback
    lr: float = 0.0  # of the last step
    interval: Interval = field(init=False)
    last_save: float = field(init=False)  # ``time.monotonic()`` of the session's start or last save

    @property
    def streams(self) -> int:
        """How many of the streams this rank trains on."""
        return self.config.train.batch_size // self.group.world_size

    def emit(self, kind: type[events.Event], **fields: Any) -> None:
        """The one way out for events: to ``metrics.jsonl`` (rank 0), then to ``on_event``."""
        event = kind(step=self.state.step, epoch=self.state.epoch + 1, **fields)
        if self.metrics is not None:
            self.metrics.write(event)
        self.on_event(event)

    def begin(self, resumed: bool) -> None:
        """Drop the metrics of steps after this start, announce the session, start the clocks."""
        if self.metrics is not None:
            self.metrics.truncate_after(self.state.step if resumed else -1)
        if resumed:
            self.emit(events.Resume, lr=scheduled_lr(self.config, self.state, self.steps))
        self.emit(
            events.Start,
            total_steps=self.steps,
            windows_per_epoch=self.per_epoch,
            parameters=self.model.num_parameters(),
            device=str(self.device),
            precision=self.precision.name,
            compile=self.config.train.compile,
            world_size=self.group.world_size,
        )
        self.last_save = time.monotonic()
        self.interval = Interval(torch.zeros((), device=self.device))

    def step(self, index: int, x: Tensor, y: Tensor, stop_signal: int | None) -> Verdict:
        """Train on window ``index`` of the epoch, then take or skip the update as all ranks agree."""
        tc, state = self.config.train, self.state
        self.lr = scheduled_lr(self.config, state, self.steps)
        for param_group in self.optimizer.param_groups:
            param_group["lr"] = self.lr
        first_stream = self.group.rank * self.streams  # this rank's streams in dropout masks
        with masks_for_step(tc.seed, state.step, first_stream, tc.batch_size):
            loss, norm, hidden = train_step(
                self.model,
                self.optimizer,
                x,
                y,
                self.hidden,
                tc.clip,
                forward=self.train_forward,
                precision=self.precision,
                scaler=self.scaler,
            )
        minutes = (time.monotonic() - self.last_save) / 60
        timed_save = bool(tc.save_every_minutes and minutes >= tc.save_every_minutes)
        verdict = step_verdict(
            loss, norm, scaler=self.scaler, signal_received=stop_signal, timed_save=timed_save
        )
        state.step += 1
        state.window = index + 1
        self.account(verdict, norm, hidden, tokens=y.numel() * self.group.world_size)
        self.scaler.update()
        return verdict

    def account(self, verdict: Verdict, norm: Tensor, hidden: State, tokens: int) -> None:
        """Take the update (or count the skip); too many non-finite steps in a row stop the run."""
        state, interval = self.state, self.interval
        if verdict.step:
            self.optimizer.step()  # not scaler.step(): the verdict already knows the gradients are finite
            self.hidden = hidden
            state.bad_steps_in_a_row = 0
            interval.loss += verdict.loss * tokens
            interval.tokens += tokens
            state.tokens += tokens
        elif verdict.overflow:
            self.hidden = hidden  # the forward pass was fine; only the update is skipped
            interval.overflows += 1
        else:
            state.bad_steps_in_a_row += 1
            self.emit(events.NonFinite, loss=float(verdict.loss), grad_norm=float(norm), lr=self.lr)
            if state.bad_steps_in_a_row >= self.config.train.max_bad_steps:
                raise LstmlmError(
                    f"training diverged: {state.bad_steps_in_a_row} non-finite steps in a row "
                    f"at step {state.step} (lr {self.lr:g}); the last good checkpoint is kept. "
                    "Try a lower --lr or a smaller --clip"
                )

    def log(self) -> None:
        """Emit the interval's mean loss and speed (if it trained anything) and start the next one."""
        interval = self.interval
        mean = float(interval.loss) / interval.tokens if interval.tokens else math.nan  # waits for the device
        now = time.perf_counter()
        self.state.elapsed += now - interval.start
        if interval.tokens:
            scaled = self.scaler.is_enabled()
            self.emit(
                events.Log,
                loss=mean,
                ppl=perplexity(mean),
                lr=self.lr,
                tokens_per_s=interval.tokens / max(now - interval.start, 1e-9),
                total_steps=self.steps,
                elapsed=self.state.elapsed,
                loss_scale=self.scaler.get_scale() if scaled else None,
                overflow_skips=interval.overflows if scaled else None,
            )
            interval.overflows = 0
        interval.loss.zero_()
        interval.tokens, interval.start = 0, now

    def evaluate(self) -> None:
        """Score the valid split; keep the best weights, or anneal the plateau schedule's lr."""
        tc, state = self.config.train, self.state
        valid_loss = evaluate_loss(
            self.model, self.valid_data, tc.bptt, precision=self.precision, forward=self.eval_forward
        )
        self.model.train()
        improved = valid_loss < state.best_valid_loss
        annealed = not improved and tc.schedule == "plateau"
        state.last_valid_loss = valid_loss
        if improved:
            state.best_valid_loss = valid_loss
            if self.group.is_main:
                write_atomic(self.run_dir / run_folder.BEST, ckpt.weights_bytes(self.model, state.step))
        elif annealed:
            state.lr /= tc.anneal_factor
        self.emit(
            events.Eval,
            valid_loss=valid_loss,
            valid_ppl=perplexity(valid_loss),
            best_valid_ppl=perplexity(state.best_valid_loss),
            lr=scheduled_lr(self.config, state, self.steps),  # for the next step
            improved=improved,
            annealed=annealed,
        )

    def save(self) -> None:
        """Checkpoint between two windows (rank 0 writes it), unless the weights are not finite."""
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            self.emit(events.Unsaved, reason="non-finite weights; the previous checkpoint is kept")
            return
        every_stream = distributed.all_streams(self.hidden)
        if self.group.is_main:
            payload = resume_payload(self.state, self.optimizer, every_stream, self.scaler, self.device)
            ckpt.save_checkpoint(self.run_dir, self.model, payload, self.state.step)
        self.last_save = time.monotonic()
        self.emit(events.Save)

    def every(self, steps: int) -> bool:
        """Whether a cadence of ``steps`` (0: never) falls on the step just taken."""
        return bool(steps) and self.state.step % steps == 0


def train(
    config: RunConfig,
    model: LanguageModel,
    splits: Splits,
    run_dir: Path,
    *,
    on_event: events.EventCallback = events.ignore,
    resume_from: ckpt.Checkpoint | None = None,
    device: torch.device | None = None,
) -> TrainState:
    """Train ``model`` and checkpoint into ``run_dir``; returns the final ``TrainState``.

    Under torchrun every rank calls this with the same arguments (see ``lstmlm.distributed``);
    rank 0 alone writes ``run_dir`` and calls ``on_event``.
    """
    tc = config.train
    loop = _set_up(config, model, splits, run_dir, on_event, resume_from, device or torch.device("cpu"))
    state = loop.state
    model.train()
    with StopRequest() as stop:
        while state.epoch < tc.epochs and state.step < loop.steps:
            if state.window == 0:
                loop.hidden = model.init_state(loop.streams, loop.device)
            for index, x, y in windows(loop.train_data, tc.bptt, state.window, loop.device):
                verdict = loop.step(index, x, y, stop.signal)
                end_of_epoch = state.window == loop.per_epoch
                last_step = state.step == loop.steps
                if state.step % tc.log_every == 0 or end_of_epoch or last_step:
                    loop.log()
                if end_of_epoch:
                    state.epoch, state.window = state.epoch + 1, 0
                evaluate_now = end_of_epoch or last_step or loop.every(tc.eval_every)
                if evaluate_now:
                    loop.evaluate()
                # One process acts on a signal that arrived during this step's logging or
                # evaluation at once; ranks act on the signal they agreed about above.
                signal_received = verdict.signal if loop.group.distributed else stop.signal
                stop_now = signal_received is not None
                if evaluate_now or loop.every(tc.save_every) or verdict.timed_save or stop_now:
                    loop.save()
                if stop_now:
                    raise Interrupted(EXIT_SIGNALS[signal_received], state.step, run_dir)
                if end_of_epoch or state.step >= loop.steps:
                    break
    in_sync = distributed.in_sync(model.parameters())  # every rank takes part
    best_valid_ppl = perplexity(state.best_valid_loss)
    loop.emit(
        events.End,
        best_valid_ppl=best_valid_ppl,
        tokens=state.tokens,
        elapsed=state.elapsed,
        ranks_in_sync=in_sync,
    )
    return state


# ---------------------------------------------------------------- set-up


def _set_up(
    config: RunConfig,
    model: LanguageModel,
    splits: Splits,
    run_dir: Path,
    on_event: events.EventCallback,
    resume_from: ckpt.Checkpoint | None,
    device: torch.device,
) -> Loop:
    """The session's parts on ``device``, the run's state (fresh or restored), and the first events."""
    tc = config.train
    group = distributed.current()
    distributed.check_batch_size(tc.batch_size, group)
    precision = resolve_precision(tc.precision, device)
    model.to(device)
    optimizer = make_optimizer(model, config)
    scaler = precision.scaler()
    train_data = host_or_device(distributed.my_streams(splits.train), device)
    per_epoch = num_windows(train_data, tc.bptt)
    if resume_from is not None:  # before DDP wraps the model: it broadcasts rank 0's weights
        state, hidden = resume(
            resume_from,
            model,
            optimizer,
            device,
            scaler,
            run_dir=run_dir,
            batch_size=tc.batch_size,
            windows_per_epoch=per_epoch,
        )
    else:
        state = TrainState(lr=tc.lr)
        hidden = model.init_state(tc.batch_size // group.world_size, device)
    train_forward, eval_forward = _forwards(model, tc.compile, group, device)
    loop = Loop(
        config=config,
        model=model,
        optimizer=optimizer,
        scaler=scaler,
        precision=precision,
        train_forward=train_forward,
        eval_forward=eval_forward,
        train_data=train_data,
        valid_data=splits.valid.to(device),
        run_dir=run_dir,
        device=device,
        group=group,
        state=state,
        hidden=hidden,
        steps=total_steps(config, per_epoch),
        per_epoch=per_epoch,
        metrics=MetricsLog(run_dir / run_folder.METRICS) if group.is_main else None,
        on_event=on_event if group.is_main else events.ignore,
    )
    loop.begin(resumed=resume_from is not None)
    return loop


def _forwards(
    model: LanguageModel, compile_: bool, group: distributed.Group, device: torch.device
) -> tuple[Forward, Forward]:
    """The train forward (DDP under torchrun, compiled with ``--compile``) and the eval forward."""
    train_forward: Any = model
    if group.distributed:
        train_forward = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    eval_forward: Any = model
    if compile_:
        keep_out_of_graphs(model)
        train_forward = torch.compile(train_forward)
        eval_forward = torch.compile(model) if group.distributed else train_forward
    return train_forward, eval_forward
