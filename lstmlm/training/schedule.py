"""The run's plan: which rows each window covers, how many steps there are, and each step's lr.

Windows are fixed (``--bptt`` rows each, the last one shorter) or, with
``--variable-bptt``, drawn as in AWD-LSTM (Merity et al. 2017, sec. 4.1): the length is
``bptt`` with probability 0.95 and ``bptt / 2`` otherwise, plus N(0, 5) noise, at least
5 rows, and that step's lr is scaled by length / bptt so that short windows do not
weigh more per token. The draws come from a generator seeded by (seed, epoch), so an
epoch's windows are the same on every rank and after a resume.

The lr: ``plateau`` keeps the lr the loop anneals at evaluations, ``constant`` keeps
``--lr``; ``cosine`` and ``linear`` decay from ``--lr`` to 0 over the run, where the run
ends at its last step or at its ``--max-time`` deadline, whichever comes first, so a
2-minute and a 60-minute run both end annealed. ``stlr`` is ULMFiT's slanted triangular
rate (Howard & Ruder 2018, eq. 3; ``stlr``). ``--warmup-steps`` ramps the lr up linearly
first (with ``stlr`` too, which has its own rise: the two multiply).
"""

from __future__ import annotations

import functools
import math
import random

from lstmlm.config import RunConfig

MIN_WINDOW = 5  # AWD-LSTM's floor on a variable window's length
SHORT_WINDOW_P = 0.05  # probability of a window around bptt / 2
WINDOW_SD = 5.0  # standard deviation of a variable window's length


@functools.lru_cache(maxsize=4)
def epoch_windows(rows: int, bptt: int, variable: bool, seed: int, epoch: int) -> tuple[tuple[int, int], ...]:
    """(first row, length) of each window of ``epoch`` over a split of ``rows`` rows.

    Fixed windows tile the rows ``bptt`` at a time and do not depend on ``epoch``.
    """
    last = rows - 1  # the final row is only ever a target
    if not variable:
        return tuple((first, min(bptt, last - first)) for first in range(0, last, bptt))
    draw = random.Random(seed * 1_000_003 + epoch)
    plan, first = [], 0
    while first < last:
        centre = bptt / 2 if draw.random() < SHORT_WINDOW_P else bptt
        length = max(MIN_WINDOW, int(draw.gauss(centre, WINDOW_SD)))
        plan.append((first, min(length, last - first)))
        first += length
    return tuple(plan)


def total_steps(config: RunConfig, rows: int) -> int:
    """Steps the run takes over ``--epochs`` of a split with ``rows`` rows (capped by ``--max-steps``)."""
    tc = config.train
    if tc.variable_bptt:
        planned = sum(len(epoch_windows(rows, tc.bptt, True, tc.seed, epoch)) for epoch in range(tc.epochs))
    else:
        planned = tc.epochs * len(epoch_windows(rows, tc.bptt, False, tc.seed, 0))
    return min(planned, tc.max_steps) if tc.max_steps else planned


def progress(config: RunConfig, step: int, steps: int, elapsed: float) -> float:
    """How far the run is, in [0, 1]: by steps, or by time against ``--max-time`` if that is further."""
    done = step / max(steps, 1)
    if config.train.max_time:
        done = max(done, elapsed / (60.0 * config.train.max_time))
    return min(done, 1.0)


def scheduled_lr(config: RunConfig, base_lr: float, step: int, steps: int, elapsed: float) -> float:
    """The lr of step ``step`` (before any length scaling); ``base_lr`` is the plateau-annealed lr."""
    tc = config.train
    if tc.schedule == "cosine":
        lr = tc.lr * 0.5 * (1.0 + math.cos(math.pi * progress(config, step, steps, elapsed)))
    elif tc.schedule == "stlr":  # by steps; with --max-time, by time where that is further
        t = progress(config, step, steps, elapsed) * steps if tc.max_time else step
        lr = tc.lr * stlr(t, steps, tc.stlr_cut_frac, tc.stlr_ratio)
    elif tc.schedule == "linear":
        lr = tc.lr * (1.0 - progress(config, step, steps, elapsed))
    else:
        lr = base_lr
    if tc.warmup_steps and step < tc.warmup_steps:
        lr *= (step + 1) / tc.warmup_steps
    return lr


def stlr(t: float, total: int, cut_frac: float, ratio: float) -> float:
    """The slanted triangular rate at step ``t`` of ``total``, as a share of the maximum lr.

    Howard & Ruder 2018, eq. 3::

        cut = floor(T · cut_frac)
        p   = t / cut                                   if t < cut
              1 - (t - cut) / (cut · (1 / cut_frac - 1))  otherwise
        η_t = η_max · (1 + p · (ratio - 1)) / ratio

    It rises from η_max / ratio to η_max over ``cut`` steps, then falls back to η_max / ratio
    at T (exactly at T when T · cut_frac is whole). Two guards the paper's runs never meet:
    ``cut`` is at least 1 (a run shorter than 1 / cut_frac steps), and p is at least 0 (where
    floor makes ``cut`` < T · cut_frac, the fall would end before T and go on below).
    """
    cut = max(math.floor(total * cut_frac), 1)
    p = t / cut if t < cut else 1.0 - (t - cut) / (cut * (1.0 / cut_frac - 1.0))
    return (1.0 + max(p, 0.0) * (ratio - 1.0)) / ratio
