"""The training loop: truncated BPTT with carried state, clipping, schedule, eval, checkpoints.

``train`` sets up a ``Loop`` (the session's model, optimizer, data, state and running
totals) and drives it window by window: step, log, evaluate, save, stop. The loop never
prints: every event goes through ``Loop.emit``, which appends it to ``metrics.jsonl`` and
hands it to ``on_event`` as a typed ``lstmlm.runs.events.Event``.

Exact resume: a checkpoint is taken only between two windows and holds everything the
next window depends on (``lstmlm.training.resume_state``), so on CPU a run killed and resumed ends
bit-identical to the uninterrupted run. Signals stop the loop after a checkpoint
(``lstmlm.runtime.signals``).

Speed: ``--precision`` autocasts forward passes (``lstmlm.runtime.precision``), ``--compile``
runs them through ``torch.compile``, and under torchrun the model is wrapped in
``DistributedDataParallel`` with each rank on its share of the streams
(``lstmlm.runtime.distributed``). On CUDA the train ids stay in pinned host memory and each
window is copied to the GPU without blocking; the host waits for the GPU once per step,
for the non-finite guard (``lstmlm.training.step.step_verdict``), and at log intervals.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from lstmlm.config import RunConfig
from lstmlm.errors import LstmlmError
from lstmlm.model.dropout import keep_out_of_graphs
from lstmlm.model.lm import LanguageModel
from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs import events
from lstmlm.runs import folder as run_folder
from lstmlm.runs.metrics import MetricsLog
from lstmlm.runtime import distributed
from lstmlm.runtime.precision import resolve_precision
from lstmlm.runtime.signals import EXIT_SIGNALS, Interrupted, StopRequest
from lstmlm.training.layer_groups import Freezing, check_distributed
from lstmlm.training.loop import Loop, Splits
from lstmlm.training.optim import WeightAverage, make_optimizer
from lstmlm.training.resume_state import TrainState, resume
from lstmlm.training.schedule import epoch_windows, total_steps
from lstmlm.training.step import Forward, host_or_device, windows


def train(
    config: RunConfig,
    model: LanguageModel,
    splits: Splits,
    run_dir: Path,
    *,
    on_event: events.EventCallback = events.ignore,
    resume_from: ckpt.Checkpoint | None = None,
    device: torch.device | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> TrainState:
    """Train ``model`` and checkpoint into ``run_dir``; returns the final ``TrainState``.

    Training ends at the last step, at the ``--max-time`` deadline of ``clock`` (seconds),
    after ``--patience`` evaluations without improvement or when the loss runs away (the
    rule: ``lstmlm.training.loop``), each time with an evaluation and a checkpoint;
    ``End.reason`` says which, and ``End.diverged`` (``TrainState.diverged``) whether the
    run diverged, there or at its last evaluation. Under torchrun every rank calls this with
    the same arguments (see ``lstmlm.runtime.distributed``); rank 0 alone writes ``run_dir`` and
    calls ``on_event``.
    """
    tc = config.train
    loop = _set_up(
        config, model, splits, run_dir, on_event, resume_from, device or torch.device("cpu"), clock
    )
    state = loop.state
    model.train()
    reason = "steps"
    with StopRequest() as stop:
        while state.epoch < tc.epochs and state.step < loop.steps and reason == "steps":
            if state.window == 0:
                loop.hidden = model.init_state(loop.streams, loop.device)
            plan = loop.plan
            for index, x, y in windows(loop.train_data, plan, state.window, loop.device):
                verdict = loop.step(index, x, y, stop.signal)
                end_of_epoch = state.window == len(plan)
                reason = "time" if loop.out_of_time() else reason
                last_step = state.step == loop.steps or reason != "steps"
                if state.step % tc.log_every == 0 or end_of_epoch or last_step:
                    loop.log()
                if state.diverged is not None:  # found by that log: stop here, as at a deadline
                    reason, last_step = "diverged", True
                if end_of_epoch:
                    state.epoch, state.window = state.epoch + 1, 0
                evaluate_now = last_step or (loop.every(tc.eval_every) if tc.eval_every else end_of_epoch)
                if evaluate_now:
                    loop.evaluate()
                    if tc.patience and state.evals_without_improvement >= tc.patience:
                        reason = "patience"
                # One process acts on a signal that arrived during this step's logging or
                # evaluation at once; ranks act on the signal they agreed about above.
                signal_received = verdict.signal if loop.group.distributed else stop.signal
                stop_now = signal_received is not None
                if evaluate_now or loop.every(tc.save_every) or verdict.timed_save or stop_now:
                    loop.save()
                if signal_received is not None:  # = stop_now, spelled so that the type narrows
                    raise Interrupted(EXIT_SIGNALS[signal_received], state.step, run_dir)
                if end_of_epoch or state.step >= loop.steps or reason != "steps":
                    break
    loop.finish(reason)
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
    clock: Callable[[], float],
) -> Loop:
    """The session's parts on ``device``, the run's state (fresh or restored), and the first events."""
    tc = config.train
    group = distributed.current()
    distributed.check_batch_size(tc.batch_size, group)
    check_distributed(tc, group.distributed)
    precision = resolve_precision(tc.precision, device)
    model.to(device)
    optimizer = make_optimizer(model, config)
    scaler = precision.scaler()
    streams = tc.batch_size // group.world_size
    if streams % tc.grad_accum:
        raise LstmlmError(f"--grad-accum {tc.grad_accum} must divide each process's {streams} streams")
    train_data = host_or_device(distributed.my_streams(splits.train), device)
    rows = train_data.size(0)
    if resume_from is not None:  # before DDP wraps the model: it broadcasts rank 0's weights
        state, hidden = resume(
            resume_from,
            model,
            optimizer,
            device,
            scaler,
            run_dir=run_dir,
            batch_size=tc.batch_size,
            windows_in_epoch=lambda epoch: len(
                epoch_windows(rows, tc.bptt, tc.variable_bptt, tc.seed, epoch)
            ),
        )
    else:
        state = TrainState(lr=tc.lr)
        hidden = model.init_state(tc.batch_size // group.world_size, device)
    freezing = Freezing(model, config) if Freezing.wanted(config) else None
    if freezing is not None:  # before DDP wraps the model: it reduces the parameters that train
        freezing.apply(state.step)
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
        steps=total_steps(config, rows),
        metrics=MetricsLog(run_dir / run_folder.METRICS) if group.is_main else None,
        on_event=on_event if group.is_main else events.ignore,
        clock=clock,
        freezing=freezing,
    )
    if resume_from is not None and resume_from.state.get("average"):
        loop.average = WeightAverage(model)
        try:
            loop.average.load_state_dict(resume_from.state["average"])
        except (KeyError, TypeError, ValueError) as e:
            raise LstmlmError(f"{run_dir / run_folder.STATE}: incompatible averaged weights ({e})") from None
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
