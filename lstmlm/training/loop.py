"""One training session's state and its pieces: step, account, log, evaluate, save.

``train.train`` builds a ``Loop`` and drives it window by window. Every event goes
through ``Loop.emit``, which appends it to ``metrics.jsonl`` (rank 0) and hands it to
``on_event`` as a typed ``lstmlm.runs.events.Event``; nothing here prints.

Divergence, judged from the loss at the start. A uniform guess over V tokens scores
log V nats a token; an untrained model scores about that (the xLSTM blocks start higher:
+0.7 nats at 2×200 units, +6 at 3×1152, +12 at 4×2048), and a run that learns soon beats
it. The limit is

    limit = max(log V, the loss of the run's first step) + log 10,

a perplexity ten times that of a uniform guess (or of the untrained model): the model is
confidently wrong, which no learning run is for long. A run has **diverged** when

- the mean train loss of ``DIVERGED_IN_A_ROW`` (3) log intervals in a row is above the
  limit: training stops there, evaluated and checkpointed as at a deadline
  (``End.reason`` "diverged"); one interval can be a spike the optimizer recovers from,
  two can be one spike across an interval boundary, three are at least two whole
  intervals of a model worse than knowing nothing;
- or its last evaluation's valid loss is above the limit or not finite (a run too short
  for three log intervals, or one whose train loss swings).

Either way a ``Diverged`` event says so, ``End.diverged`` is true, the weights are kept as
written and ``lstmlm train`` exits 3. Losses that diverge run far past the limit (1e2 to
1e30 nats at an absurd --lr with --clip 0, on the tiny test corpus), while an untrained
LSTM or GRU scores within 0.02 nats of log V (200 to 1150 units, measured) and a sane run
only falls from there. The streak and the start loss live in ``TrainState``, so a resumed
run is judged as the uninterrupted one. Non-finite steps are the other guard: skipped, and
after ``--max-bad-steps`` in a row an error (``Loop.account``).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lstmlm.config import RunConfig
from lstmlm.errors import LstmlmError
from lstmlm.evaluation.perplexity import evaluate_loss, perplexity
from lstmlm.files import write_atomic
from lstmlm.model.dropout import masks_for_step
from lstmlm.model.lm import LanguageModel
from lstmlm.model.recurrent import State
from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs import events
from lstmlm.runs import folder as run_folder
from lstmlm.runs.metrics import MetricsLog
from lstmlm.runtime import distributed
from lstmlm.runtime.precision import Precision
from lstmlm.training.layer_groups import Freezing
from lstmlm.training.optim import WeightAverage, nonmonotone_trigger
from lstmlm.training.resume_state import TrainState, resume_payload
from lstmlm.training.schedule import epoch_windows, scheduled_lr
from lstmlm.training.step import Forward, Verdict, step_verdict, train_step

DIVERGENCE_MARGIN = math.log(10.0)  # nats above the start: ten times its perplexity
DIVERGED_IN_A_ROW = 3  # log intervals above the limit that stop the run


@dataclass
class Splits:
    train: Tensor  # (T, B) batchified train ids
    valid: Tensor  # (T, B_eval)


@dataclass
class Interval:
    """Totals since the last log: token-weighted loss (on the device), tokens, fp16 overflow skips."""

    loss: Tensor
    start: float  # the loop's clock at the interval's start
    tokens: int = 0
    overflows: int = 0


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
    metrics: MetricsLog | None
    on_event: events.EventCallback
    clock: Callable[[], float] = time.perf_counter  # seconds; tests inject one for --max-time
    average: WeightAverage | None = None  # NT-ASGD's, from its switch on
    freezing: Freezing | None = None  # --freeze, --unfreeze-every: what trains at each step
    lr: float = 0.0  # of the last step
    interval: Interval = field(init=False)
    last_save: float = field(init=False)  # ``time.monotonic()`` of the session's start or last save

    @property
    def streams(self) -> int:
        """How many of the streams this rank trains on."""
        return self.config.train.batch_size // self.group.world_size

    @property
    def plan(self) -> tuple[tuple[int, int], ...]:
        """(first row, length) of the current epoch's windows."""
        tc = self.config.train
        return epoch_windows(self.train_data.size(0), tc.bptt, tc.variable_bptt, tc.seed, self.state.epoch)

    def elapsed(self) -> float:
        """Training seconds of the run so far, this session's unlogged ones included."""
        return self.state.elapsed + self.clock() - self.interval.start

    def out_of_time(self) -> bool:
        max_time = self.config.train.max_time
        return max_time is not None and self.elapsed() >= 60.0 * max_time

    def next_lr(self) -> float:
        """The lr of the next step, before any scaling by its window's length."""
        state = self.state
        return scheduled_lr(self.config, state.lr, state.step, self.steps, self.elapsed())

    def emit(self, kind: type[events.Event], **fields: Any) -> None:
        """The one way out for events: to ``metrics.jsonl`` (rank 0), then to ``on_event``."""
        event = kind(step=self.state.step, epoch=self.state.epoch + 1, **fields)
        if self.metrics is not None:
            self.metrics.write(event)
        self.on_event(event)

    def begin(self, resumed: bool) -> None:
        """Drop the metrics of steps after this start, start the clocks, announce the session."""
        self.interval = Interval(torch.zeros((), device=self.device), start=self.clock())
        if self.metrics is not None:
            self.metrics.truncate_after(self.state.step if resumed else -1)
        self.state.diverged = None  # each session's end is judged afresh (the streak carries on)
        if resumed:
            self.emit(events.Resume, lr=self.next_lr())
        self.emit(
            events.Start,
            total_steps=self.steps,
            windows_per_epoch=len(self.plan),
            parameters=self.model.num_parameters(),
            device=str(self.device),
            precision=self.precision.name,
            compile=self.config.train.compile,
            world_size=self.group.world_size,
        )
        self.last_save = time.monotonic()

    def step(self, index: int, x: Tensor, y: Tensor, stop_signal: int | None) -> Verdict:
        """Train on window ``index`` of the epoch, then take or skip the update as all ranks agree."""
        tc, state = self.config.train, self.state
        self.lr = self.next_lr() * (x.size(0) / tc.bptt if tc.variable_bptt else 1.0)
        for param_group in self.optimizer.param_groups:  # --layer-lr-decay: each part's share
            param_group["lr"] = self.lr * param_group.get("lr_scale", 1.0)
        if self.freezing is not None:
            self.freezing.apply(state.step)
        first_stream = self.group.rank * self.streams  # this rank's streams in dropout masks
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
            micro_batches=tc.grad_accum,
            penalty=self.config.model.ar_alpha > 0 or self.config.model.tar_beta > 0,
            dropout_masks=lambda first: masks_for_step(
                tc.seed, state.step, first_stream + first, tc.batch_size
            ),
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
            if self.average is not None:
                self.average.update()
            self.hidden = hidden
            state.bad_steps_in_a_row = 0
            if state.tokens == 0:  # the run's first finite step: the untrained model's loss
                state.start_loss = float(verdict.loss)
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
        now = self.clock()
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
            self._judge_train_loss(mean)
        interval.loss.zero_()
        interval.tokens, interval.start = 0, now

    def loss_limit(self) -> float:
        """Above this loss the run is diverging: max(log V, the first step's loss) + log 10."""
        start = max(math.log(self.config.model.ntoken), self.state.start_loss)  # nan: absent
        return start + DIVERGENCE_MARGIN

    def _judge_train_loss(self, mean: float) -> None:
        """Count log intervals above the limit; ``DIVERGED_IN_A_ROW`` of them: diverged."""
        state, limit = self.state, self.loss_limit()
        state.high_losses_in_a_row = 0 if mean <= limit else state.high_losses_in_a_row + 1  # nan: high
        if state.high_losses_in_a_row >= DIVERGED_IN_A_ROW and state.diverged is None:
            self._diverged("train", mean, limit, state.high_losses_in_a_row)

    def finish(self, reason: str) -> None:
        """Judge the last evaluation, then announce the end (every rank takes part)."""
        self.judge_last_evaluation()
        state = self.state
        self.emit(
            events.End,
            best_valid_ppl=perplexity(state.best_valid_loss),
            tokens=state.tokens,
            elapsed=state.elapsed,
            ranks_in_sync=distributed.in_sync(self.model.parameters()),
            reason=reason,
            diverged=state.diverged is not None,
        )

    def judge_last_evaluation(self) -> None:
        """A run whose last valid loss is above the limit, or not finite, has diverged too."""
        state = self.state
        if state.diverged is None and state.valid_losses and not state.valid_losses[-1] <= self.loss_limit():
            self._diverged("valid", state.valid_losses[-1], self.loss_limit(), 1)

    def _diverged(self, split: str, loss: float, limit: float, in_a_row: int) -> None:
        """Record why the run diverged (for the summary) and emit the event."""
        start, base = self.state.start_loss, f"ln V = {math.log(self.config.model.ntoken):.3g}"
        if not math.isnan(start):
            base = f"max({base}, the first step's loss {start:.3g})"
        where = f"{in_a_row} log intervals in a row" if split == "train" else "the last evaluation"
        self.state.diverged = (
            f"{split} loss {loss:.3g} at step {self.state.step}, above the limit {limit:.3g} "
            f"= {base} + ln 10, in {where}"
        )
        self.emit(events.Diverged, split=split, loss=loss, limit=limit, in_a_row=in_a_row)

    def evaluate(self) -> None:
        """Score the valid split; keep the best weights, or anneal the plateau schedule's lr.

        After NT-ASGD's switch the averaged weights are the ones scored and kept.
        """
        tc, state = self.config.train, self.state
        averaged = self.average is not None
        with self.average.swapped_in() if self.average is not None else contextlib.nullcontext():
            valid_loss = evaluate_loss(
                self.model, self.valid_data, tc.bptt, precision=self.precision, forward=self.eval_forward
            )
            improved = valid_loss < state.best_valid_loss
            if improved and self.group.is_main:
                write_atomic(self.run_dir / run_folder.BEST, ckpt.weights_bytes(self.model, state.step))
        self.model.train()
        annealed = not improved and tc.schedule == "plateau"
        state.last_valid_loss = valid_loss
        state.valid_losses.append(valid_loss)
        state.evals_without_improvement = 0 if improved else state.evals_without_improvement + 1
        if improved:
            state.best_valid_loss = valid_loss
        elif annealed:
            state.lr /= tc.anneal_factor
        if tc.optimizer == "ntasgd" and not averaged and nonmonotone_trigger(state.valid_losses, tc.nonmono):
            self.average = WeightAverage(self.model)
        self.emit(
            events.Eval,
            valid_loss=valid_loss,
            valid_ppl=perplexity(valid_loss),
            best_valid_ppl=perplexity(state.best_valid_loss),
            lr=self.next_lr(),  # for the next step
            improved=improved,
            annealed=annealed,
            averaged=averaged or None,
            averaging_from_now=(self.average is not None and not averaged) or None,
        )

    def save(self) -> None:
        """Checkpoint between two windows (rank 0 writes it), unless the weights are not finite."""
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            self.emit(events.Unsaved, reason="non-finite weights; the previous checkpoint is kept")
            return
        every_stream = distributed.all_streams(self.hidden)
        if self.group.is_main:
            average = self.average.state_dict() if self.average is not None else None
            payload = resume_payload(
                self.state, self.optimizer, every_stream, self.scaler, self.device, average
            )
            ckpt.save_checkpoint(self.run_dir, self.model, payload, self.state.step)
        self.last_save = time.monotonic()
        self.emit(events.Save)

    def every(self, steps: int) -> bool:
        """Whether a cadence of ``steps`` (0: never) falls on the step just taken."""
        return bool(steps) and self.state.step % steps == 0
