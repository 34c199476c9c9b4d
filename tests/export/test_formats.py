"""``lstmlm export``: ONNX and TorchScript models give PyTorch's logits, and bad requests are one line.

Parity: 50 tokens in 3 streams (the export traces with 2: the batch is dynamic), fed to the
exported sequence model as 25 + 25 with the state carried, and to the step model one token
at a time, against one PyTorch forward over all 50. The weights are drawn at N(0, 0.5²)
(the stack's matrices at N(0, 0.8²/fan-in), so that a ReLU RNN does not blow up) rather
than the init's ±0.1, so that the logits (magnitude ~1) and the state move; fp32
differences in the order of sums stay near 1e-6, the issue's bound is 1e-4.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lstmlm.config import CELLS, replace
from lstmlm.data.tokenizer import train_tokenizer
from lstmlm.export.step_model import state_names
from lstmlm.model.lm import LanguageModel
from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs import folder as run_folder
from tests.conftest import invoke, tiny_config

TOLERANCE = 1e-4
STEPS, HALF, STREAMS = 50, 25, 3

OPTIONS = {  # the options that change the exported graph
    "tied": {"cell": "lstm", "tied": True},
    "adaptive": {"cell": "lstm-eq", "softmax": "adaptive", "cutoffs": "6,12", "tied": True},
    "layer-sizes": {"cell": "peephole", "layer_sizes": "24,16"},
    "weight-drop+gru": {"cell": "gru", "weight_drop": 0.5, "layer_sizes": "12,16"},
    "heads": {"cell": "slstm", "heads": 2},
    "mos": {"cell": "lstm", "softmax": "mos", "mos_experts": 3, "emsize": 12, "tied": True},  # 16 -> 12
}


def make_run(out: Path, corpus: Path, *, seed: int = 0, best: bool = False, **model: object) -> Path:
    """A run folder with random N(0, 0.5²) weights of a 2-layer model of ``model``'s settings."""
    tokenizer = train_tokenizer("word", (corpus / "train.txt").read_text().splitlines())
    settings = {"nlayers": 2, "dropout": 0.0, "ntoken": tokenizer.vocab_size, **model}
    config = replace(tiny_config(corpus), model=settings)
    out.mkdir()
    tokenizer.save(out / run_folder.TOKENIZER)
    run_folder.write_config(out, config)
    write_weights(out / run_folder.MODEL, config, seed)
    if best:
        write_weights(out / run_folder.BEST, config, seed + 1)
    return out


def write_weights(path: Path, config: object, seed: int) -> None:
    torch.manual_seed(seed)
    model = LanguageModel(config.model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            recurrent_matrix = name.startswith("rnn.") and p.dim() >= 2
            p.normal_(0.0, 0.8 / p.size(-1) ** 0.5 if recurrent_matrix else 0.5)
    path.write_bytes(ckpt.weights_bytes(model, 7))


def reference(run: Path, tokens: torch.Tensor, weights: str = "best") -> tuple[torch.Tensor, tuple]:
    """PyTorch's logits (T, B, V) over the whole sequence at once, and the last state."""
    from lstmlm.runs.load import load_run

    model = load_run(run, best=weights == "best").model
    with torch.no_grad():
        return model(tokens, model.init_state(tokens.size(1)))


def export(run: Path, fmt: str, out: Path, *extra: str) -> None:
    result = invoke("export", str(run), "--format", fmt, "--out", str(out), *extra)
    assert result.exit_code == 0, result.output


def run_onnx(out: Path, names: tuple[str, ...], tokens: torch.Tensor, zero: tuple) -> dict:
    """The ONNX models' logits (sequence: 25 + 25 tokens, the state carried; step: one at a time)
    and the sequence model's last state."""
    ort = pytest.importorskip("onnxruntime")
    sequence = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    step = ort.InferenceSession(str(out.with_name("model.step.onnx")), providers=["CPUExecutionProvider"])
    state = {name: s.numpy() for name, s in zip(names, zero, strict=True)}
    halves = []
    for part in (tokens[:HALF], tokens[HALF:]):
        logits, *new = sequence.run(None, {"tokens": part.numpy(), **state})
        halves.append(torch.from_numpy(logits))
        state = dict(zip(names, new, strict=True))
    seq_state = [torch.from_numpy(s) for s in state.values()]
    state = {name: s.numpy() for name, s in zip(names, zero, strict=True)}
    steps = []
    for t in range(tokens.size(0)):
        logits, *new = step.run(None, {"tokens": tokens[t].numpy(), **state})
        steps.append(torch.from_numpy(logits))
        state = dict(zip(names, new, strict=True))
    return {"sequence": torch.cat(halves), "step": torch.stack(steps), "state": seq_state}


def run_torchscript(out: Path, tokens: torch.Tensor) -> dict:
    """As ``run_onnx``, through ``torch.jit.load``'s ``forward`` and ``step``."""
    model = torch.jit.load(str(out))
    with torch.no_grad():
        state = model.init_state(tokens.size(1))
        first, state = model(tokens[:HALF], state)
        second, state = model(tokens[HALF:], state)
        step_state, steps = model.init_state(tokens.size(1)), []
        for t in range(tokens.size(0)):
            logits, step_state = model.step(tokens[t], step_state)
            steps.append(logits)
    return {"sequence": torch.cat([first, second]), "step": torch.stack(steps), "state": state}


def check_parity(run: Path, fmt: str, tmp_path: Path, cell: str) -> dict[str, float]:
    """Export ``run`` as ``fmt``; the max abs differences of its logits (and state) from PyTorch's."""
    suffix = ".onnx" if fmt == "onnx" else ".pt"
    out = tmp_path / f"model{suffix}"
    export(run, fmt, out)
    ntoken = json.loads(out.with_name(out.name + ".json").read_text())["model"]["vocab_size"]
    tokens = torch.randint(0, ntoken, (STEPS, STREAMS), generator=torch.Generator().manual_seed(3))
    logits, state = reference(run, tokens)
    zero = tuple(torch.zeros_like(s) for s in state)
    names = state_names(cell)
    got = run_onnx(out, names, tokens, zero) if fmt == "onnx" else run_torchscript(out, tokens)
    assert logits.abs().max() > 0.5  # the weights make the logits move: the bound means something
    diffs = {kind: (got[kind] - logits).abs().max().item() for kind in ("sequence", "step")}
    diffs["state"] = max((a - b).abs().max().item() for a, b in zip(got["state"], state, strict=True))
    assert max(diffs.values()) <= TOLERANCE, diffs
    return diffs


@pytest.fixture(params=["onnx", "torchscript"])
def fmt(request: pytest.FixtureRequest) -> str:
    if request.param == "onnx":
        for name in ("onnx", "onnxruntime", "onnxscript"):
            pytest.importorskip(name)
    return request.param


@pytest.mark.parametrize("cell", CELLS)
def test_every_cell_exports_with_pytorchs_logits(
    cell: str, fmt: str, tiny_corpus: Path, tmp_path: Path, one_thread: None
) -> None:
    run = make_run(tmp_path / "run", tiny_corpus, cell=cell)
    print(cell, fmt, check_parity(run, fmt, tmp_path, cell))  # pytest -s shows the figures


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_graph_changing_options_export(
    options: dict, fmt: str, tiny_corpus: Path, tmp_path: Path, one_thread: None
) -> None:
    run = make_run(tmp_path / "run", tiny_corpus, **options)
    print(options, fmt, check_parity(run, fmt, tmp_path, options["cell"]))


def test_sidecar_and_tokenizer_describe_the_model(tiny_corpus: Path, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", tiny_corpus, cell="mlstm", best=True)
    out = tmp_path / "lm.pt"
    export(run, "torchscript", out, "--last")
    sidecar = json.loads((tmp_path / "lm.pt.json").read_text())
    assert (tmp_path / "lm.tokenizer.json").read_bytes() == (run / run_folder.TOKENIZER).read_bytes()
    assert sidecar["weights"] == run_folder.MODEL and sidecar["step"] == 7
    model = torch.jit.load(str(out))
    shapes = [list(s.shape) for s in model.init_state(5)]
    assert [[s["shape"][0], 5, s["shape"][2]] for s in sidecar["state"]] == shapes
    assert [s["name"] for s in sidecar["state"]] == list(state_names("mlstm"))
    tokens = torch.randint(0, sidecar["model"]["vocab_size"], (6, 2))
    logits, _ = reference(run, tokens, weights="last")
    assert torch.allclose(model(tokens, model.init_state(2))[0], logits, atol=TOLERANCE)
    assert not torch.allclose(reference(run, tokens)[0], logits, atol=1e-2)  # best differs: last was used


def test_onnx_sidecar_names_the_graphs_inputs(tiny_corpus: Path, tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    run = make_run(tmp_path / "run", tiny_corpus, cell="lstm")
    export(run, "onnx", tmp_path / "model.onnx")
    sidecar = json.loads((tmp_path / "model.onnx.json").read_text())
    for role, key in (("model", "sequence"), ("step", "step_model")):
        graph = onnx.load(str(tmp_path / sidecar["files"][role])).graph
        onnx.checker.check_model(onnx.load(str(tmp_path / sidecar["files"][role])), full_check=True)
        assert [v.name for v in graph.input] == [n.split()[0] for n in sidecar[key]["inputs"]]
        assert [v.name for v in graph.output] == [n.split()[0] for n in sidecar[key]["outputs"]]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        "model.onnx", "model.onnx.json", "model.step.onnx", "model.tokenizer.json",
    ]  # fmt: skip


def one_line_error(args: list[str], needle: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.output
    assert "Traceback" not in result.output


def test_bad_requests_are_one_line(tiny_corpus: Path, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", tiny_corpus, cell="lstm")
    out = str(tmp_path / "m.pt")
    one_line_error(["export", str(run), "--format", "tflite", "--out", out], "unknown --format 'tflite'")
    missing = str(tmp_path / "nowhere" / "m.pt")
    one_line_error(["export", str(run), "--format", "torchscript", "--out", missing], "folder not found")
    one_line_error(["export", str(run), "--format", "onnx", "--out", out], "must end in .onnx")
    (run / run_folder.MODEL).unlink()
    one_line_error(["export", str(run), "--format", "torchscript", "--out", out], "has no weights")
    one_line_error(["export", str(tmp_path / "no-run"), "--format", "torchscript", "--out", out], "not found")
    assert not (tmp_path / "m.pt").exists()


def test_a_failed_export_leaves_no_file(
    tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lstmlm.export import torchscript_format

    def unsupported(step: object) -> bytes:
        raise RuntimeError("Unsupported operator aten::frobnicate\nmore detail")

    monkeypatch.setattr(torchscript_format, "torchscript_bytes", unsupported)
    run = make_run(tmp_path / "run", tiny_corpus, cell="peephole")
    out = tmp_path / "out"
    out.mkdir()
    args = ["export", str(run), "--format", "torchscript", "--out", str(out / "m.pt")]
    one_line_error(
        args, "cannot export --cell peephole to torchscript: Unsupported operator aten::frobnicate"
    )
    assert list(out.iterdir()) == []


def test_onnx_without_its_packages_says_what_to_install(
    tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lstmlm.export import writer

    monkeypatch.setattr(writer.importlib.util, "find_spec", lambda name: None)
    run = make_run(tmp_path / "run", tiny_corpus, cell="lstm")
    args = ["export", str(run), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]
    one_line_error(args, "pip install 'lstmlm[export]'")
