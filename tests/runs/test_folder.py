"""What a run folder's files say without loading them: the weights' header; which folders are runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lstmlm.config import ModelConfig
from lstmlm.errors import LstmlmError
from lstmlm.model.lm import LanguageModel
from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs import folder as run_folder
from tests.conftest import make_untrained_run


@pytest.mark.parametrize("tied", [True, False])
def test_parameter_count_from_the_weights_header(tied: bool, tmp_path: Path) -> None:
    """``info`` counts parameters without torch, from the safetensors header: a tied decoder once."""
    model = LanguageModel(ModelConfig(ntoken=50, emsize=6, nhid=6 if tied else 5, nlayers=2, tied=tied))
    path = tmp_path / run_folder.MODEL
    path.write_bytes(ckpt.weights_bytes(model, step=7))
    header = run_folder.weights_header(path)
    assert run_folder.tensor_count(header) == model.num_parameters()
    assert run_folder.saved_step(header) == 7


# ---------------------------------------------------------------- which folders are lstmlm's


def hugging_face_folder(folder: Path) -> Path:
    """A model folder as Hugging Face writes one: its config, tokenizer and weights, no lstmlm file."""
    folder.mkdir()
    config = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_layer": 2, "vocab_size": 50}
    (folder / run_folder.CONFIG).write_text(json.dumps(config))
    (folder / run_folder.TOKENIZER).write_text('{"version": "1.0", "model": {"type": "BPE"}}')
    (folder / run_folder.MODEL).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    return folder


def test_a_hugging_face_folder_is_not_a_run(tmp_path: Path) -> None:
    folder = hugging_face_folder(tmp_path / "hf")
    assert not run_folder.is_run(folder)
    reason = run_folder.not_a_run(folder)
    assert reason is not None and "config.json is not lstmlm's" in reason and "architectures" in reason
    with pytest.raises(LstmlmError, match="not an lstmlm run folder, nothing replaced: its config.json"):
        run_folder.overwritable_files(folder)


def test_a_run_is_known_by_its_mark_or_by_its_own_config_and_files(tiny_corpus: Path, tmp_path: Path) -> None:
    old = make_untrained_run(tmp_path / "old", tiny_corpus)  # trained before the mark: no mark
    assert run_folder.is_run(old)
    assert run_folder.overwritable_files(old) == [run_folder.CONFIG, run_folder.TOKENIZER, run_folder.MODEL]
    (old / run_folder.TOKENIZER).unlink()
    assert run_folder.not_a_run(old) == "it has no tokenizer.json"  # a config alone is not a run
    marked = tmp_path / "marked"
    marked.mkdir()
    (marked / "notes.txt").write_text("mine")
    assert run_folder.not_a_run(marked) == "it has no .lstmlm-run mark and no config.json"
    run_folder.mark_run(marked)
    assert run_folder.is_run(marked) and run_folder.overwritable_files(marked) == []
    assert run_folder.overwritable_files(tmp_path / "empty") == []  # nothing there: nothing to refuse


def test_no_output_may_replace_a_runs_own_file(tiny_corpus: Path, tmp_path: Path) -> None:
    run = make_untrained_run(tmp_path / "run", tiny_corpus)
    for name in run_folder.OWN_FILES:
        with pytest.raises(LstmlmError, match=f"--pairs .*{name} would replace {name} of the run in"):
            run_folder.refuse_run_file(run / name, "--pairs")
    link = tmp_path / "pairs.jsonl"
    link.symlink_to(run / run_folder.CONFIG)  # a link into the run names the run's file
    with pytest.raises(LstmlmError, match="would replace config.json"):
        run_folder.refuse_run_file(link, "--pairs")
    with pytest.raises(LstmlmError, match="is a run folder"):
        run_folder.refuse_run_file(run, "--npz")
    run_folder.refuse_run_file(run / "pairs.jsonl", "--pairs")  # beside the run's files: fine
    hf = hugging_face_folder(tmp_path / "hf")
    run_folder.refuse_run_file(hf / "notes.json", "--pairs")
