"""Fine-tuning from a trained run: the parent's weights, the vocabulary kept or extended
(ULMFiT's mean rows), the lineage record, ``info``, resume, and the refusals."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as save_safetensors_bytes

import lstmlm
from lstmlm.config import RunConfig, replace
from lstmlm.data.corpus import load_corpus
from lstmlm.data.tokenizer import train_tokenizer
from lstmlm.errors import LstmlmError
from lstmlm.model.lm import LanguageModel
from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs import folder as run_folder
from lstmlm.runs.events import Event, Log
from lstmlm.runtime.signals import Interrupted
from lstmlm.training import init_from
from lstmlm.training.launch import plan_run, start_training
from tests.conftest import invoke, one_line_error, tiny_config, tiny_lines

TINY_TRAIN = {
    "bptt": 8,
    "batch_size": 4,
    "eval_batch_size": 4,
    "log_every": 5,
    "eval_every": 10,
    "device": "cpu",
}


def new_text(folder: Path) -> Path:
    """train/valid/test of the tiny language with two words the parent never saw."""
    folder.mkdir()
    for name, n, seed in (("train", 200, 4), ("valid", 30, 5), ("test", 30, 6)):
        lines = [line.replace("cow", "lion").replace("frog", "tiger") for line in tiny_lines(n, seed)]
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def make_parent(out: Path, corpus: Path, **model: object) -> Path:
    """A run folder with random step-0 weights (``--init-weights last``) and any [model] settings."""
    tokenizer = train_tokenizer("word", (corpus / "train.txt").read_text().splitlines())
    config = replace(tiny_config(corpus), model={"ntoken": tokenizer.vocab_size, **model})
    out.mkdir()
    run_folder.mark_run(out)
    tokenizer.save(out / run_folder.TOKENIZER)
    run_folder.write_config(out, config)
    torch.manual_seed(0)
    model = LanguageModel(config.model)
    if isinstance(model.decoder, torch.nn.Linear):
        torch.nn.init.uniform_(model.decoder.bias, -1.0, 1.0)  # as after training: not all zero
    (out / run_folder.MODEL).write_bytes(ckpt.weights_bytes(model, 0))
    return out


def plan(out: Path, parent: Path, data: Path, *, vocab: str = "keep", weights: str = "last", **train: object):
    flags = {
        "model": {},
        "data": {"data": str(data), "vocab": vocab},
        "train": {"init_from": str(parent), "init_weights": weights, **TINY_TRAIN, **train},
    }
    return plan_run(out, {}, flags, resume=False, overwrite=False)


def fine_tuned_model(config: RunConfig) -> tuple[init_from.Parent, LanguageModel, object]:
    """What ``start_training`` does with the parent before training: tokenizer, model, weights."""
    parent = init_from.read_parent(config)
    corpus = load_corpus(config.data)
    tokenizer = parent.new_tokenizer(config.data, corpus.splits["train"], None)
    model = LanguageModel(replace(config, model={"ntoken": tokenizer.vocab_size}).model)
    parent.load_into(model, tokenizer)
    return parent, model, tokenizer


def test_keep_starts_from_the_parents_weights_exactly(trained_run: Path, tmp_path: Path) -> None:
    config = plan(tmp_path / "new", trained_run, new_text(tmp_path / "text"), weights="best")
    assert config.model.nhid == 16 and config.model.dropout == 0.0  # the parent's, not the defaults
    parent, model, tokenizer = fine_tuned_model(config)
    assert tokenizer.to_json() == (trained_run / run_folder.TOKENIZER).read_text()
    best, step = ckpt.read_weights(trained_run / run_folder.BEST)
    assert parent.step == step
    state = model.state_dict()
    for key, tensor in best.items():
        assert torch.equal(state[key], tensor), key  # step 0 of the new run: the same numbers


@pytest.mark.parametrize("tied", [True, False])
def test_extend_copies_shared_rows_and_starts_new_rows_at_the_parents_mean(
    tiny_corpus: Path, tmp_path: Path, tied: bool
) -> None:
    parent_dir = make_parent(tmp_path / "parent", tiny_corpus, tied=tied)
    config = plan(tmp_path / "new", parent_dir, new_text(tmp_path / "text"), vocab="extend")
    parent, model, tokenizer = fine_tuned_model(config)
    assert parent.extension == {"shared_tokens": 13, "added_tokens": 2}  # the 15 old words but cow, frog
    assert [tokenizer.token(i) for i in range(parent.tokenizer.vocab_size, tokenizer.vocab_size)] in (
        ["lion", "tiger"],
        ["tiger", "lion"],
    )
    old, _ = ckpt.read_weights(parent_dir / run_folder.MODEL)
    keys = [key for key in init_from.VOCAB_ROWS if key in old]  # tied: no decoder.weight of its own
    assert len(keys) == (2 if tied else 3)
    state, n = model.state_dict(), parent.tokenizer.vocab_size
    for key in keys:
        assert torch.equal(state[key][:n], old[key]), key
        for row in state[key][n:]:  # the same mean, computed the same way: exact
            assert torch.equal(row, old[key].mean(dim=0)), key
    if tied:
        assert model.decoder.weight is model.encoder.weight
    for key in old.keys() - set(keys):  # the recurrent layers are the parent's
        assert torch.equal(state[key], old[key]), key


def test_extend_refuses_an_adaptive_parent_and_writes_nothing(tiny_corpus: Path, tmp_path: Path) -> None:
    parent = make_parent(tmp_path / "parent", tiny_corpus, softmax="adaptive", cutoffs="4,8")
    with pytest.raises(LstmlmError, match="adaptive softmax"):
        plan(tmp_path / "new", parent, new_text(tmp_path / "text"), vocab="extend")
    plan(tmp_path / "new", parent, tmp_path / "text")  # keep: the same vocabulary, the same clusters
    assert not (tmp_path / "new").exists()


def test_a_fine_tuned_run_records_its_lineage_and_info_shows_it(trained_run: Path, tmp_path: Path) -> None:
    out, text = tmp_path / "new", new_text(tmp_path / "text")
    args = ["--bptt", "8", "--batch-size", "4", "--max-steps", "10", "--eval-every", "10", "--device", "cpu"]
    result = invoke("train", "--init-from", str(trained_run), "--data", str(text), "--out", str(out), *args)
    assert result.exit_code == 0, result.output + result.stderr
    assert "of the new train text's tokens are <unk>" in result.stderr
    lineage = json.loads((out / run_folder.LINEAGE).read_text())
    best = (trained_run / run_folder.BEST).read_bytes()
    assert lineage["parent"] == str(trained_run.resolve())
    assert lineage["sha256"] == hashlib.sha256(best).hexdigest()
    assert (lineage["weights"], lineage["vocab"], lineage["step"]) == ("best", "keep", 60)
    assert 0 < lineage["unk_share"] < 1  # lion and tiger are <unk> for the parent
    assert run_folder.read_config(out).train.init_from == str(trained_run.resolve())
    shown = invoke("info", str(out), env={"COLUMNS": "300"})
    assert "fine-tuned from" in shown.stdout and str(trained_run.resolve()) in shown.stdout
    as_json = json.loads(invoke("info", str(out), "--json").stdout)
    assert as_json["lineage"]["sha256"] == lineage["sha256"]
    assert json.loads(invoke("info", str(trained_run), "--json").stdout)["lineage"] is None


def test_a_fine_tuned_run_resumes_bit_identically(trained_run: Path, tmp_path: Path) -> None:
    text = new_text(tmp_path / "text")
    whole = plan(tmp_path / "whole", trained_run, text, vocab="extend", weights="best", max_steps=25)
    start_training(tmp_path / "whole", whole, resume=False, overwrite=False)

    def interrupt_at_10(event: Event) -> None:
        if isinstance(event, Log) and event.step == 10:  # a signal mid-run, handled between windows
            os.kill(os.getpid(), signal.SIGINT)

    cut = plan(tmp_path / "cut", trained_run, text, vocab="extend", weights="best", max_steps=25)
    with pytest.raises(Interrupted):
        start_training(tmp_path / "cut", cut, resume=False, overwrite=False, on_event=interrupt_at_10)
    again = plan_run(tmp_path / "cut", {}, {}, resume=True, overwrite=False)
    notices: list[str] = []
    start_training(tmp_path / "cut", again, resume=True, overwrite=False, warn=notices.append)
    assert not [n for n in notices if "parent" in n]  # the parent is unchanged
    model = (tmp_path / "whole" / run_folder.MODEL).read_bytes()
    assert model == (tmp_path / "cut" / run_folder.MODEL).read_bytes()


def test_a_run_resumed_before_its_first_checkpoint_starts_from_the_parent(
    trained_run: Path, tmp_path: Path
) -> None:
    text = new_text(tmp_path / "text")
    whole = tmp_path / "whole"
    start_training(whole, plan(whole, trained_run, text, vocab="extend", weights="best", max_steps=10),
                   resume=False, overwrite=False)  # fmt: skip
    early = tmp_path / "early"  # as a kill before the first checkpoint leaves it
    early.mkdir()
    for name in (run_folder.MARK, run_folder.CONFIG, run_folder.TOKENIZER, run_folder.DATA_RECORD,
                 run_folder.LINEAGE):  # fmt: skip
        (early / name).write_bytes((whole / name).read_bytes())
    start_training(early, plan_run(early, {}, {}, resume=True, overwrite=False), resume=True, overwrite=False)
    assert (early / run_folder.MODEL).read_bytes() == (whole / run_folder.MODEL).read_bytes()


def test_resume_says_when_the_parents_weights_changed(trained_run_copy: Path, tmp_path: Path) -> None:
    out, text = tmp_path / "new", new_text(tmp_path / "text")
    config = plan(out, trained_run_copy, text, weights="best", max_steps=10)
    start_training(out, config, resume=False, overwrite=False)
    best = trained_run_copy / run_folder.BEST
    tensors, step = ckpt.read_weights(best)
    tensors["encoder.weight"] += 1.0  # the parent trained on, or replaced
    best.write_bytes(save_safetensors_bytes(tensors, metadata={"step": str(step)}))
    notices: list[str] = []
    config = plan_run(out, {}, {"train": {"max_steps": 12}}, resume=True, overwrite=False)
    start_training(out, config, resume=True, overwrite=False, warn=notices.append)
    assert any("changed since this run was fine-tuned from them" in n for n in notices), notices


def test_a_differing_architecture_flag_is_one_line_naming_it(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "new"
    result = invoke(
        "train", "--init-from", str(trained_run), "--nhid", "32", "--emsize", "32", "--out", str(out)
    )
    one_line_error(result, "--nhid 32 (the parent's: 16)", "--emsize 32", "architecture")
    same = plan(out, trained_run, new_text(tmp_path / "text"))
    assert same.model.nhid == 16  # an equal value, or none, is fine
    assert not out.exists()


def test_a_fine_tuned_run_may_set_its_own_regularisers(trained_run: Path, tmp_path: Path) -> None:
    flags = {
        "model": {"dropout": 0.4, "weight_drop": 0.2},
        "data": {"data": str(new_text(tmp_path / "text"))},
        "train": {"init_from": str(trained_run), **TINY_TRAIN},
    }
    config = plan_run(tmp_path / "new", {}, flags, resume=False, overwrite=False)
    assert (config.model.dropout, config.model.weight_drop) == (0.4, 0.2)
    assert config.model.nhid == 16  # the rest is still the parent's


def test_a_damaged_parent_is_one_line_and_nothing_is_written(trained_run_copy: Path, tmp_path: Path) -> None:
    best = trained_run_copy / run_folder.BEST
    best.write_bytes(best.read_bytes()[:100])
    out = tmp_path / "new"
    result = invoke("train", "--init-from", str(trained_run_copy), "--data", str(new_text(tmp_path / "t")),
                    "--out", str(out))  # fmt: skip
    one_line_error(result, "best.safetensors", "not a readable safetensors file")
    assert not out.exists()


def test_fine_tuning_from_python(trained_run: Path, tmp_path: Path) -> None:
    notices: list[str] = []
    lm = lstmlm.train(
        init_from=trained_run,
        vocab="extend",
        data=new_text(tmp_path / "text"),
        out=tmp_path / "py",
        on_notice=notices.append,
        bptt=8,
        batch_size=4,
        max_steps=10,
        eval_every=10,
        device="cpu",
    )
    assert lm.tokenizer.id("lion") is not None and lm.run.config.model.nhid == 16
    assert any("tokens shared" in n for n in notices), notices
    assert json.loads((tmp_path / "py" / run_folder.LINEAGE).read_text())["vocab"] == "extend"
