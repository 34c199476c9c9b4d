"""The training parts of the GPU check, each through ``lstmlm.training.train.train`` itself.

- ``cell_rows``: one cell × one precision, a few hundred steps on the default corpus:
  the loss falls (by at least 5% from the first log interval to the last), the valid
  perplexity is finite; tokens/s from the ``Log`` events.
- ``speed_rows``: lstmlm's loop against a bare cuDNN loop (``BareLM``: nn.Embedding,
  nn.LSTM, nn.Linear, SGD, clipping, the state carried) on the same random batches, for a
  2×650 LSTM and an AWD-size 3-layer LSTM (1150, 1150, 400); goal ≥ 0.95× the bare loop.
  lstmlm's tokens/s are read from its ``Log`` events after the warm-up steps, as
  ``scripts.bench.bench_train`` does; the best of the repeats on each side.
- ``weight_drop_rows``: ``configs/awd-wt2.toml`` (weight drop, locked dropout, AR/TAR,
  NT-ASGD) on cuDNN: goal no "not part of single contiguous chunk of memory" warning (cuDNN
  copying the weights at every call) and memory flat from the first log to the last.
"""

from __future__ import annotations

import math
import shutil
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from lstmlm.config import RunConfig, load_toml
from lstmlm.errors import LstmlmError
from lstmlm.model.lm import LanguageModel
from lstmlm.runs.events import End, Eval, Event, Log
from lstmlm.runtime.precision import resolve_precision
from lstmlm.training.loop import Splits
from lstmlm.training.train import train
from scripts.common import ROOT
from scripts.gpu.context import Context, Shape, small_config, timed
from scripts.gpu.table import OK, Row, judged, number, skipped

LOSS_DROP = 0.05  # the loss of the last log interval at least 5% below the first's
SPEED_GOAL = 0.95  # lstmlm's tokens/s over the bare loop's
CHUNK_WARNING = "contiguous chunk"  # cuDNN: "RNN module weights are not part of single contiguous chunk"
#: settings a cell family trains with here besides the defaults: the vanilla RNN swings at
#: SGD's lr 20; the min cells diverge with it (2×256: valid ppl 250,000 after 200 steps) and
#: docs/cells.md trains them with AdamW
CELL_TRAIN: dict[str, dict[str, Any]] = {
    "rnn-tanh": {"lr": 5.0},
    "rnn-relu": {"lr": 5.0},
    "minlstm": {"optimizer": "adamw"},
    "mingru": {"optimizer": "adamw"},
}


@dataclass
class Trained:
    """What one ``train()`` call reported: its events, by kind."""

    logs: list[Log] = field(default_factory=list)
    evals: list[Eval] = field(default_factory=list)
    end: End | None = None
    memory: list[float] = field(default_factory=list)  # MiB in use at each Log (``Context.memory_mib``)

    def tokens_per_s(self, tokens_per_step: int) -> float:
        """Tokens/s from the first log to the last (the first interval's warm-up excluded)."""
        first, last = self.logs[0], self.logs[-1]
        if last.step == first.step or last.elapsed <= first.elapsed:
            return first.tokens_per_s
        return (last.step - first.step) * tokens_per_step / (last.elapsed - first.elapsed)

    def loss_fell(self, ntoken: int) -> tuple[float, float, bool]:
        """(first loss, last loss, whether it fell by ``LOSS_DROP``); one log: against ln V."""
        first = self.logs[0].loss if len(self.logs) > 1 else math.log(ntoken)
        last = self.logs[-1].loss
        return first, last, math.isfinite(last) and last <= (1 - LOSS_DROP) * first

    @property
    def valid_ppl(self) -> float:
        return self.evals[-1].valid_ppl if self.evals else math.nan


def train_collecting(ctx: Context, config: RunConfig, model: LanguageModel, splits: Splits) -> Trained:
    """``train()`` on the check's device into a scratch run folder (removed after), keeping its events."""
    trained = Trained()

    def on_event(event: Event) -> None:
        if isinstance(event, Log):
            trained.logs.append(event)
            trained.memory.append(ctx.memory_mib())
        elif isinstance(event, Eval):
            trained.evals.append(event)
        elif isinstance(event, End):
            trained.end = event

    run_dir = ctx.scratch("run")
    try:
        train(config, model, splits, run_dir, on_event=on_event, device=ctx.device)
    finally:  # the AWD-size checkpoints are 200 MB each: keep the scratch folder small
        shutil.rmtree(run_dir, ignore_errors=True)
    if not trained.logs:
        raise RuntimeError("training logged nothing")
    return trained


def precision_refused(ctx: Context, precision: str) -> str | None:
    """Why ``precision`` cannot run on this device (lstmlm's one-line refusal), or None."""
    try:
        resolve_precision(precision, ctx.device)
    except LstmlmError as e:
        return str(e)
    return None


# ---------------------------------------------------------------- cells × precisions


def cell_rows(ctx: Context, cell: str, precision: str) -> list[Row]:
    """``cell`` trained in ``precision`` for ``cell_steps`` steps (capped at ``cell_minutes``)."""
    what, goal = f"{cell} {precision}", f"loss falls ≥{LOSS_DROP:.0%}, finite ppl"
    refused = precision_refused(ctx, precision)
    if refused:
        return [Row("cells", what, goal=goal, verdict=skipped(refused))]
    s, corpus = ctx.sizes, ctx.corpus()
    ntoken = corpus.tokenizer.vocab_size
    config = small_config(
        ctx, cell, 0.1, s.cell_steps, precision=precision, max_time=s.cell_minutes, **CELL_TRAIN.get(cell, {})
    )
    torch.manual_seed(1)
    trained = train_collecting(ctx, config, LanguageModel(config.model), corpus.splits(s.cell_batch, 8))
    first, last, fell = trained.loss_fell(ntoken)
    tok_s = trained.tokens_per_s(s.cell_batch * s.cell_bptt)
    steps = trained.logs[-1].step
    skips = sum(log.overflow_skips or 0 for log in trained.logs)
    figure = f"loss {first:.2f}→{last:.2f} in {steps} steps, {number(tok_s)} tok/s"
    figure += f", ppl {number(trained.valid_ppl)}"
    figure += f", {skips} fp16 skips" if precision == "fp16" else ""
    ok = fell and math.isfinite(trained.valid_ppl) and not (trained.end and trained.end.diverged)
    data = {
        "first_loss": first,
        "last_loss": last,
        "steps": steps,
        "tokens_per_s": tok_s,
        "valid_ppl": trained.valid_ppl,
    }
    return [Row("cells", what, figure, goal, judged(ok, f"loss {first:.2f}→{last:.2f}"), data=data)]


# ---------------------------------------------------------------- speed against a bare cuDNN loop


class BareLM(nn.Module):
    """The bare loop's model: embedding, one nn.LSTM (or one per layer when the sizes differ), linear."""

    def __init__(self, shape: Shape) -> None:
        super().__init__()
        self.encoder = nn.Embedding(shape.vocab, shape.emsize)
        sizes = shape.layers
        if len(set(sizes)) == 1:  # one multi-layer module, as pytorch/examples' word_language_model
            self.rnns = nn.ModuleList([nn.LSTM(shape.emsize, sizes[0], len(sizes))])
        else:  # one module per layer, as AWD-LSTM's code
            inputs = (shape.emsize, *sizes[:-1])
            self.rnns = nn.ModuleList(nn.LSTM(i, o) for i, o in zip(inputs, sizes, strict=True))
        self.decoder = nn.Linear(sizes[-1], shape.vocab)

    def zero_state(self, batch: int, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
        states = []
        for rnn in cast("Iterable[nn.LSTM]", self.rnns):
            zeros = torch.zeros(rnn.num_layers, batch, rnn.hidden_size, device=device)
            states.append((zeros, zeros.clone()))
        return states

    def forward(
        self, x: torch.Tensor, states: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        out, new_states = self.encoder(x), []
        for rnn, state in zip(self.rnns, states, strict=True):
            out, (h, c) = rnn(out, state)
            new_states.append((h, c))
        return self.decoder(out), new_states


def bare_tokens_per_s(ctx: Context, shape: Shape, precision: str, data: torch.Tensor) -> float:
    """The bare loop on the windows lstmlm trains on: ``speed_warmup`` untimed, then ``speed_steps`` timed."""
    s = ctx.sizes
    torch.manual_seed(0)
    model = BareLM(shape).to(ctx.device)
    data = data.to(ctx.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    states = model.zero_state(shape.batch, ctx.device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    start = 0.0
    for step in range(s.speed_warmup + s.speed_steps):
        if step == s.speed_warmup:
            ctx.sync()
            start = time.perf_counter()
        first = step * shape.bptt
        x, y = data[first : first + shape.bptt], data[first + 1 : first + 1 + shape.bptt]
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(ctx.device.type, dtype=dtype, enabled=dtype is not None):
            logits, states = model(x, states)
        loss = F.cross_entropy(logits.float().view(-1, shape.vocab), y.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
        states = [(h.detach(), c.detach()) for h, c in states]
    ctx.sync()
    seconds = time.perf_counter() - start
    return s.speed_steps * shape.batch * shape.bptt / seconds


def lstmlm_tokens_per_s(ctx: Context, shape: Shape, precision: str, data: torch.Tensor) -> float:
    """``train()`` on the same windows, logged every ``speed_warmup`` steps: tokens/s after the first log."""
    s = ctx.sizes
    model = {
        "cell": "lstm",
        "ntoken": shape.vocab,
        "emsize": shape.emsize,
        "layer_sizes": ",".join(map(str, shape.layers)),
        "dropout": 0.0,
        "tied": False,
    }
    train_ = {
        "bptt": shape.bptt,
        "batch_size": shape.batch,
        "eval_batch_size": shape.batch,
        "lr": 1.0,
        "max_steps": s.speed_warmup + s.speed_steps,
        "log_every": s.speed_warmup,
        "epochs": 1000,
        "precision": precision,
    }
    config = RunConfig.from_dict({"model": model, "train": train_})
    torch.manual_seed(0)
    valid = data[: shape.bptt + 1]
    trained = train_collecting(ctx, config, LanguageModel(config.model), Splits(data, valid))
    return trained.tokens_per_s(shape.batch * shape.bptt)


def speed_rows(ctx: Context, shape: Shape, precision: str) -> list[Row]:
    """lstmlm vs the bare loop, alternating, best of ``speed_repeats`` each."""
    kernels = "cuDNN" if ctx.cuda else "oneDNN"
    what, goal = f"{shape.name} {precision} vs bare {kernels} loop", f"≥ {SPEED_GOAL}× bare"
    refused = precision_refused(ctx, precision)
    if refused:
        return [Row("speed", what, goal=goal, verdict=skipped(refused))]
    s = ctx.sizes
    rows = (s.speed_warmup + s.speed_steps + 2) * shape.bptt
    data = torch.randint(shape.vocab, (rows, shape.batch), generator=torch.Generator().manual_seed(0))
    bare = ours = 0.0
    for _ in range(s.speed_repeats):
        bare = max(bare, bare_tokens_per_s(ctx, shape, precision, data))
        ours = max(ours, lstmlm_tokens_per_s(ctx, shape, precision, data))
    ratio = ours / bare
    figure = f"{shape.label()}: lstmlm {number(ours)} / bare {number(bare)} tok/s = {ratio:.2f}×"
    verdict = OK + " (not judged on CPU)" if not ctx.cuda else judged(ratio >= SPEED_GOAL, f"{ratio:.2f}×")
    return [Row("speed", what, figure, goal, verdict, data={"lstmlm": ours, "bare": bare, "ratio": ratio})]


# ---------------------------------------------------------------- weight drop on cuDNN


def awd_config(ctx: Context, weight_drop: float | None = None) -> RunConfig:
    """``configs/awd-wt2.toml`` at the AWD speed shape, for ``wd_steps`` steps."""
    values = load_toml(ROOT / "configs" / "awd-wt2.toml")
    shape, s = ctx.sizes.speed_shapes[-1], ctx.sizes
    model = {
        **values["model"],
        "ntoken": shape.vocab,
        "emsize": shape.emsize,
        "layer_sizes": ",".join(map(str, shape.layers)),
    }
    if weight_drop is not None:
        model["weight_drop"] = weight_drop
    train_ = {
        **values["train"],
        "batch_size": shape.batch,
        "bptt": shape.bptt,
        "epochs": 2,
        "max_steps": s.wd_steps,
        "log_every": s.wd_log_every,
        "precision": "fp32",
    }
    return RunConfig.from_dict({"model": model, "train": train_})


def awd_run(ctx: Context, config: RunConfig) -> tuple[Trained, list[warnings.WarningMessage]]:
    """The AWD recipe on random tokens (enough rows for every step's window), warnings recorded."""
    shape = ctx.sizes.speed_shapes[-1]
    generator = torch.Generator().manual_seed(0)
    data = torch.randint(
        shape.vocab, ((ctx.sizes.wd_steps + 4) * (shape.bptt + 30), shape.batch), generator=generator
    )
    valid = torch.randint(shape.vocab, (shape.bptt * 4, 10), generator=generator)
    torch.manual_seed(0)
    model = LanguageModel(config.model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trained = train_collecting(ctx, config, model, Splits(data, valid))
    return trained, list(caught)


def weight_drop_rows(ctx: Context) -> list[Row]:
    """Per-step weight-copy warnings (goal 0) and memory from the first log to the last (goal flat)."""
    shape = ctx.sizes.speed_shapes[-1]
    with timed(ctx) as t_plain:
        plain, _ = awd_run(ctx, awd_config(ctx, weight_drop=0.0))
    with timed(ctx) as t_dropped:
        trained, caught = awd_run(ctx, awd_config(ctx))
    tokens_per_step = shape.batch * shape.bptt  # variable windows: about this on average
    cost = trained.tokens_per_s(tokens_per_step) / plain.tokens_per_s(tokens_per_step)
    chunk = [w for w in caught if CHUNK_WARNING in str(w.message)]
    steps = trained.logs[-1].step
    where = "cuDNN" if ctx.cuda else "CPU: no cuDNN"
    figure = (
        f"{len(chunk)} in {steps} steps ({where}); weight drop runs at {cost:.2f}× "
        f"the tok/s of --weight-drop 0"
    )
    why = f"{len(chunk)} ({len(chunk) / max(steps, 1):.1f} a step): cuDNN compacts the weights every call"
    warned = Row(
        "weight drop",
        "AWD recipe: weight-copy warnings",
        figure,
        "0 warnings",
        judged(not chunk, why),
        t_dropped[0],
        data={
            "warnings": len(chunk),
            "speed_vs_plain": cost,
            "other_warnings": sorted(
                {str(w.message)[:100] for w in caught if CHUNK_WARNING not in str(w.message)}
            ),
        },
    )
    first, last = trained.memory[0], trained.memory[-1]
    tolerance = max(16.0, 0.02 * first) if ctx.cuda else max(32.0, 0.10 * first)
    kind = "allocated" if ctx.cuda else "resident (RSS)"
    figure = f"{first:,.0f} → {last:,.0f} MiB {kind}, step {trained.logs[0].step} → {steps}"
    goal = f"flat: +≤{tolerance:.0f} MiB"
    flat = Row(
        "weight drop",
        "AWD recipe: memory step to step",
        figure,
        goal,
        judged(last - first <= tolerance, f"+{last - first:.0f} MiB"),
        t_plain[0] + t_dropped[0],
        data={"first_mib": first, "last_mib": last},
    )
    return [warned, flat]
