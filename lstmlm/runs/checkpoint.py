"""Checkpoints that survive a crash at any moment: (weights, train state) pairs with a fallback.

The run folder's layout, config and lock are in ``folder.py``. A checkpoint is a
(weights, state) pair with the same step. Saving writes both to temp files, fsyncs them,
moves the current pair to ``*.prev`` and renames the new pair into place. Loading picks
the newest step for which both halves exist and read cleanly, so a kill between any two
of those operations still leaves a loadable checkpoint. Whenever that is not the newest
pair the folder holds (a damaged file, a half without its partner of the same step), a
resume says so and names the steps that will be trained again (``fallback_warning``).
"""

from __future__ import annotations

import io
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from lstmlm.errors import LstmlmError
from lstmlm.files import fsync_dir, write_error
from lstmlm.model.lm import LanguageModel
from lstmlm.runs.folder import METRICS, MODEL, PREV_MODEL, PREV_STATE, STATE, saved_step, weights_header
from lstmlm.runs.metrics import read_metrics

TIED_KEY = "decoder.weight"  # dropped when it is the embedding (``ModelConfig.decoder_is_embedding``)


# ---------------------------------------------------------------- weights


def weights_bytes(model: LanguageModel, step: int) -> bytes:
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if model.cfg.decoder_is_embedding:
        tensors.pop(TIED_KEY)
    return save_safetensors_bytes(tensors, metadata={"step": str(step)})


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], int]:
    """Tensors and the step they were saved at; a damaged file is a one-line error."""
    try:
        data = path.read_bytes()
        tensors = load_safetensors_bytes(data)
    except FileNotFoundError:
        raise LstmlmError(f"{path}: file not found") from None
    except (SafetensorError, ValueError, OSError) as e:
        raise LstmlmError(f"{path}: not a readable safetensors file ({e})") from None
    return tensors, saved_step(weights_header(path, data))


def load_weights_into(model: LanguageModel, tensors: dict[str, torch.Tensor], path: Path) -> None:
    if model.cfg.decoder_is_embedding:
        if "encoder.weight" not in tensors:
            raise LstmlmError(f"{path}: weights do not fit the model in config.json (no encoder.weight)")
        tensors = {**tensors, TIED_KEY: tensors["encoder.weight"]}
    try:
        model.load_state_dict(tensors, strict=True)
    except (RuntimeError, KeyError) as e:
        first = str(e).strip().splitlines()[0]
        raise LstmlmError(f"{path}: weights do not fit the model in config.json ({first})") from None


# ---------------------------------------------------------------- training checkpoints


def save_checkpoint(run_dir: Path, model: LanguageModel, state: dict[str, Any], step: int) -> None:
    """Save a (weights, train state) pair for ``step``; the previous pair becomes ``*.prev``."""
    buffer = io.BytesIO()
    torch.save({**state, "step": step}, buffer)
    new_model, new_state = run_dir / f".{MODEL}.new.tmp", run_dir / f".{STATE}.new.tmp"
    pending = ((new_model, MODEL, weights_bytes(model, step)), (new_state, STATE, buffer.getvalue()))
    for path, name, data in pending:
        try:
            with open(path, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:  # a full disk: drop the new pair, the current one stays in place
            new_model.unlink(missing_ok=True)
            new_state.unlink(missing_ok=True)
            raise write_error(e, run_dir / name) from e
    if (run_dir / MODEL).exists() and (run_dir / STATE).exists():
        os.replace(run_dir / MODEL, run_dir / PREV_MODEL)
        _crash_test_point("save", step)
        os.replace(run_dir / STATE, run_dir / PREV_STATE)
    os.replace(new_model, run_dir / MODEL)
    os.replace(new_state, run_dir / STATE)
    fsync_dir(run_dir)


def _crash_test_point(where: str, step: int) -> None:
    """Crash tests: ``LSTMLM_CRASH_AT=save:N`` kills this process in the middle of saving step N."""
    if os.environ.get("LSTMLM_CRASH_AT") == f"{where}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)


def read_train_state(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise LstmlmError(f"{path}: file not found") from None
    except Exception as e:  # torch raises many types for damaged files
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise LstmlmError(f"{path}: not a readable training state ({first})") from None
    if not isinstance(state, dict) or "step" not in state:
        raise LstmlmError(f"{path}: not a readable training state (no step)")
    return state


@dataclass
class Checkpoint:
    weights: dict[str, torch.Tensor]
    state: dict[str, Any]
    step: int
    weights_path: Path
    problems: list[str]  # damaged or mismatched files passed over to reach this one
    newest_step: int | None = None  # the newest step a readable checkpoint file holds, if after ``step``
    fell_back: bool = False  # the newest pair (model.safetensors, train_state.pt) was passed over


def latest_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The newest checkpoint whose weights and state both load and agree on the step.

    What is passed over on the way goes into ``problems``: an unreadable file, and a newer
    half whose other half is missing or of another step (as a crash between the renames of
    ``save_checkpoint``, or a file copied alone, leaves them). ``fallback_warning`` says
    what resuming from it loses.
    """
    problems: list[str] = []
    weights: dict[int, tuple[dict[str, torch.Tensor], Path]] = {}
    states: dict[int, tuple[dict[str, Any], Path]] = {}
    unreadable_newest = False  # model.safetensors or train_state.pt is there and damaged
    for name in (MODEL, PREV_MODEL, STATE, PREV_STATE):
        path = run_dir / name
        if not path.exists():
            continue
        try:
            if name in (MODEL, PREV_MODEL):
                tensors, step = read_weights(path)
                weights.setdefault(step, (tensors, path))
            else:
                state = read_train_state(path)
                states.setdefault(int(state["step"]), (state, path))
        except LstmlmError as e:
            problems.append(str(e))
            unreadable_newest |= name in (MODEL, STATE)
    common = sorted(set(weights) & set(states), reverse=True)
    if not common:
        if problems:
            raise LstmlmError(f"no usable checkpoint in {run_dir}: {problems[0]}")
        return None
    step = common[0]
    newer = sorted({s for s in (*weights, *states) if s > step}, reverse=True)
    if not unreadable_newest:  # else the damaged file is the reason, and these its consequence
        problems += [_unpaired(s, weights, states) for s in newer]
    tensors, path = weights[step]
    fell_back = unreadable_newest or bool(newer)
    return Checkpoint(tensors, states[step][0], step, path, problems, newer[0] if newer else None, fell_back)


def _unpaired(step: int, weights: dict[int, Any], states: dict[int, Any]) -> str:
    """Why the half (or halves) of ``step`` cannot be used: the other half is of another step or missing."""
    if step in weights:
        return f"{weights[step][1]} is of step {step}, but no training state of that step exists"
    return f"{states[step][1]} is of step {step}, but no weights of that step exist"


def fallback_warning(run_dir: Path, checkpoint: Checkpoint) -> str:
    """What resuming from ``checkpoint`` loses, when files were passed over to reach it: the
    newer checkpoint that could not be used, why, and the steps that will be trained again."""
    why, step = "; ".join(checkpoint.problems), checkpoint.step
    if not checkpoint.fell_back:  # only the older pair was damaged
        return f"{why}: the fallback checkpoint is lost; resuming from the latest one, step {step}"
    last, which = checkpoint.newest_step, f"the checkpoint of step {checkpoint.newest_step}"
    if last is None:  # the newer files are unreadable: how far the run got, by its metrics
        last, which = _last_logged_step(run_dir), "the newest checkpoint"
    if last is None or last <= step:
        lost = f"the steps after {step}"
    else:
        lost = f"step {last}" if last == step + 1 else f"steps {step + 1}–{last}"
    return f"resuming from step {step}: {which} could not be used ({why}); {lost} will be trained again"


def _last_logged_step(run_dir: Path) -> int | None:
    """The step of the last event in ``metrics.jsonl``, if any."""
    steps = [r["step"] for r in read_metrics(run_dir / METRICS) if isinstance(r.get("step"), int)]
    return max(steps, default=None)
