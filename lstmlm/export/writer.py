"""``lstmlm export``: a run's model written as ONNX or TorchScript files, with a sidecar and its tokenizer.

For ``--out DIR/NAME.onnx`` (ONNX) or ``--out DIR/NAME.pt`` (TorchScript) it writes:

    NAME.onnx             the sequence model: tokens (time, batch) + state -> logits (time, batch, V) + state
    NAME.step.onnx        the step model: tokens (batch,) + state -> logits (batch, V) + state   (ONNX only)
    NAME.pt               TorchScript: forward = the sequence model, step = the step model, init_state
    NAME.onnx.json        the sidecar (NAME.pt.json): inputs, outputs, the state's layout, the run
    NAME.tokenizer.json   a copy of the run's tokenizer.json

A file already there is replaced only when the sidecar of an earlier export to the same
``--out`` lists it: an export never clobbers another's companions (``a.onnx`` and ``a.pt``
would share ``a.tokenizer.json``) nor a file lstmlm did not write, nor a run's own files.

Every file is built in memory first and written atomically (``files.write_atomic``), the
model file last: a failed export leaves no half file, and the model file is there only
when the rest is.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstmlm.errors import LstmlmError
from lstmlm.export import FORMATS
from lstmlm.files import write_atomic
from lstmlm.runs import folder as run_folder

if TYPE_CHECKING:
    from torch import Tensor

    from lstmlm.export.step_model import StepModel
    from lstmlm.runs.load import Run

SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}
ONNX_PACKAGES = ("onnx", "onnxscript")  # torch.onnx's dynamo exporter writes through onnxscript


@dataclass
class Exported:
    """What ``export_run`` wrote, and from which weights."""

    format: str
    cell: str
    weights: Path
    step: int
    files: list[Path]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "cell": self.cell,
            "weights": str(self.weights),
            "step": self.step,
            "files": [str(path) for path in self.files],
        }


def output_paths(out: Path, fmt: str) -> dict[str, Path]:
    """The files an export to ``out`` writes, by role: model, step (ONNX), sidecar, tokenizer."""
    stem = out.name.removesuffix(SUFFIXES[fmt])
    paths = {"model": out, "sidecar": out.with_name(out.name + ".json")}
    if fmt == "onnx":
        paths["step"] = out.with_name(f"{stem}.step.onnx")
    paths["tokenizer"] = out.with_name(f"{stem}.tokenizer.json")
    return paths


def check_request(fmt: str, out: Path) -> None:
    """The checks that need no run loaded: a known format, its suffix, an existing folder."""
    if fmt not in FORMATS:
        raise LstmlmError(f"unknown --format {fmt!r} (choose {' or '.join(FORMATS)})")
    if out.suffix != SUFFIXES[fmt]:
        raise LstmlmError(f"--out for --format {fmt} must end in {SUFFIXES[fmt]} (got {out.name})")
    if not out.parent.is_dir():
        raise LstmlmError(f"--out: folder not found: {out.parent}")
    if out.is_dir():
        raise LstmlmError(f"--out is a folder, not a file: {out}")
    paths = output_paths(out, fmt)
    for path in paths.values():
        run_folder.refuse_run_file(path, "--out")
    check_not_anothers(paths)
    if fmt == "onnx":
        missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
        if missing:
            raise LstmlmError(f"--format onnx needs {' and '.join(missing)}: pip install 'lstmlm[export]'")


def check_not_anothers(paths: dict[str, Path]) -> None:
    """One line if a file this export writes is already there and not from an earlier export
    to the same ``--out``: another export's companion (``a.onnx`` and ``a.pt`` share
    ``a.tokenizer.json``; ``a.step.onnx`` is ``a.onnx``'s step model), or a file lstmlm did not write."""
    earlier = _earlier_export(paths)
    for role, path in paths.items():
        if path.exists() and earlier.get(role) != path.name:
            raise LstmlmError(
                f"--out {paths['model']}: {path} is already there and is not from an earlier export "
                f"to {paths['model'].name}; remove it or choose another --out name"
            )


def _earlier_export(paths: dict[str, Path]) -> dict[str, str]:
    """role -> file name, from the sidecar an earlier export to the same ``--out`` left (or {})."""
    try:
        sidecar = json.loads(paths["sidecar"].read_bytes())
        files = sidecar["files"]
    except (OSError, ValueError, TypeError, KeyError):  # none, or not a sidecar of ours
        return {}
    mine = isinstance(files, dict) and files.get("model") == paths["model"].name
    return {str(role): name for role, name in files.items() if isinstance(name, str)} if mine else {}


def export_run(run_dir: Path, fmt: str, out: Path, *, best: bool = True) -> Exported:
    """Write the run's model (``best`` weights, else the latest) as ``fmt`` to ``out`` and beside it."""
    check_request(fmt, out)
    from lstmlm.export.step_model import StepModel, state_names
    from lstmlm.runs.load import load_run

    run = load_run(run_dir, best=best, device="cpu")
    cell = run.config.model.cell
    step = StepModel(run.model)
    names = state_names(cell)
    paths = output_paths(out, fmt)
    try:
        contents = _model_files(step, fmt, names, paths)
    except LstmlmError:
        raise
    except Exception as e:  # an operator or construct the format cannot hold
        raise LstmlmError(f"cannot export --cell {cell} to {fmt}: {_first_line(e)}") from e
    sidecar = describe(run, fmt, names, step.example_inputs(1)[1:], paths)
    contents[paths["sidecar"]] = (json.dumps(sidecar, indent=2) + "\n").encode("utf-8")
    contents[paths["tokenizer"]] = (run.dir / run_folder.TOKENIZER).read_bytes()
    model_file = paths["model"]
    for path in [*(p for p in contents if p != model_file), model_file]:
        write_atomic(path, contents[path])
    return Exported(fmt, cell, run.weights_path, run.step, list(paths.values()))


def _first_line(error: Exception) -> str:
    """The exception's first line, without the terminal colours torch.onnx puts in its messages."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    return (text.splitlines() or [type(error).__name__])[0]


def _model_files(
    step: StepModel, fmt: str, names: tuple[str, ...], paths: dict[str, Path]
) -> dict[Path, bytes]:
    if fmt == "torchscript":
        from lstmlm.export.torchscript_format import torchscript_bytes

        return {paths["model"]: torchscript_bytes(step)}
    from lstmlm.export.onnx_format import export_step, sequence_model

    outputs = [f"{name}_out" for name in names]
    step_graph = export_step(step, ["tokens", *names], ["logits", *outputs])
    sequence = sequence_model(step_graph, names, outputs)
    return {paths["step"]: _serialized(step_graph), paths["model"]: _serialized(sequence)}


def _serialized(model: Any) -> bytes:
    if model.ByteSize() >= 2**31:
        raise LstmlmError("the model is over ONNX's 2 GiB single-file limit; export it as torchscript")
    return model.SerializeToString()


def describe(
    run: Run, fmt: str, names: tuple[str, ...], state: tuple[Tensor, ...], paths: dict[str, Path]
) -> dict[str, Any]:
    """The sidecar: how to call the exported model, and what it was made from."""
    cfg = run.config.model
    layout = [
        {"name": name, "shape": [s.size(0), "batch", s.size(-1)], "dtype": "float32"}
        for name, s in zip(names, state, strict=True)
    ]
    normalized = cfg.softmax in ("adaptive", "mos")  # model/normalized.py's output layers
    logits = "log-probabilities" if normalized else "scores: log_softmax gives the log-probabilities"
    files = {role: path.name for role, path in paths.items()}
    return {
        "format": fmt,
        "files": files,
        "run": str(run.dir.resolve()),
        "weights": run.weights_path.name,
        "step": run.step,
        "model": {
            "cell": cfg.cell,
            "nlayers": cfg.nlayers,
            "layer_sizes": list(cfg.hidden_sizes),
            "emsize": cfg.emsize,
            "vocab_size": cfg.ntoken,
            "softmax": cfg.softmax,
            **({"mos_experts": cfg.mos_experts} if cfg.softmax == "mos" else {}),
            "tied": cfg.tied,
            "direction": cfg.direction,  # backward: feed each text's tokens right to left
        },
        "tokens": {"dtype": "int64", "eos_id": run.tokenizer.eos_id, "unk_id": run.tokenizer.unk_id},
        "logits": logits,
        "state": layout,
        "state_note": "zeros start a stream; feed each call's state outputs to the next call, in this order. "
        "Rows are layers; a layer narrower than the widest uses its row's first units, the rest stay 0.",
        "sequence": _signature(fmt, names, "time, batch", paths["model"].name, "forward"),
        "step_model": _signature(fmt, names, "batch", paths.get("step", paths["model"]).name, "step"),
    }


def _signature(fmt: str, names: tuple[str, ...], dims: str, file: str, method: str) -> dict[str, Any]:
    """Inputs and outputs of one exported model: ONNX names, or a TorchScript method's arguments."""
    if fmt == "onnx":
        ins, outs = [f"tokens [{dims}]", *names], [f"logits [{dims}, vocab]", *(f"{n}_out" for n in names)]
        return {"file": file, "inputs": ins, "outputs": outs}
    state = f"state: list [{', '.join(names)}]"
    return {"file": file, "method": method, "inputs": [f"tokens [{dims}]", state],
            "outputs": [f"logits [{dims}, vocab]", state]}  # fmt: skip
