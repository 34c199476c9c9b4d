"""Where a run is, and what its checkpoint holds besides the weights to continue it exactly.

A checkpoint is taken only between two windows, and holds everything the next window
depends on: the ``TrainState``, optimizer, loss scaler, carried hidden state of all
streams and every RNG state. ``restore`` puts them back, so the resumed run replays the
same arithmetic.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lstmlm.errors import LstmlmError
from lstmlm.model.lm import LanguageModel
from lstmlm.model.recurrent import State
from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs import folder as run_folder
from lstmlm.runtime import distributed


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
    evals_without_improvement: int = 0  # for --patience
    valid_losses: list[float] = field(default_factory=list)  # every evaluation's, for NT-ASGD
    tokens: int = 0
    elapsed: float = 0.0  # training seconds over all sessions of this run (--max-time counts these)
    # The divergence guard (``lstmlm.training.loop``): absent from older checkpoints, so defaulted.
    start_loss: float = math.nan  # the first finite step's loss: the untrained model's
    high_losses_in_a_row: int = 0  # log intervals with the train loss above the divergence limit
    diverged: str | None = None  # why this session's run counts as diverged; None: it does not


def rng_states(device: torch.device | None = None) -> dict[str, Any]:
    """All RNG states as tensors and plain types (loadable with ``weights_only=True``).

    On CUDA, the generator of ``device`` only: the run's one GPU (per rank).
    """
    version, internal, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=True)  # the default, spelled out for the stubs' overloads
    assert isinstance(numpy_state, tuple)  # a dict only for a generator other than the legacy MT19937
    states: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if device is not None and device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def set_rng_states(states: dict[str, Any], device: torch.device | None = None) -> None:
    """Put back what ``rng_states`` took (older checkpoints' list of CUDA states too)."""
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
    average: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a checkpoint holds besides the weights; ``hidden`` covers all B streams.

    ``average``: NT-ASGD's averaged weights once it has switched (``optim.WeightAverage``).
    """
    payload = {
        "train_state": asdict(state),
        "optimizer": optimizer.state_dict(),
        "hidden": [h.detach().cpu() for h in hidden],
        "rng": rng_states(device),
        "scaler": scaler.state_dict() if scaler is not None else {},
    }
    if average is not None:
        payload["average"] = average
    return payload


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
        where = checkpoint.weights_path.parent / run_folder.STATE
        raise LstmlmError(f"{where}: incompatible ({e})") from None
    return state, hidden


def resume(
    checkpoint: ckpt.Checkpoint,
    model: LanguageModel,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    scaler: torch.amp.GradScaler,
    *,
    run_dir: Path,
    batch_size: int,
    windows_in_epoch: Callable[[int], int],
) -> tuple[TrainState, State]:
    """``restore``, checked against this run's batch size and data; the hidden of this rank's streams."""
    state, all_hidden = restore(checkpoint, model, optimizer, device, scaler)
    where = run_dir / run_folder.STATE
    if any(h.size(1) != batch_size for h in all_hidden):
        raise LstmlmError(
            f"{where}: incompatible (carried state for {all_hidden[0].size(1)} streams, "
            f"batch size {batch_size})"
        )
    windows = windows_in_epoch(state.epoch)
    if state.window >= windows:  # a loop over no windows would never end
        raise LstmlmError(
            f"{where}: saved at window {state.window + 1} of epoch {state.epoch + 1}, "
            f"but that epoch of the train split has {windows} windows: the data changed since"
        )
    return state, tuple(distributed.my_streams(h) for h in all_hidden)
