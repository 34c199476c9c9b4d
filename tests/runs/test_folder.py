"""What a run folder's files say without loading them: the weights' header."""

from __future__ import annotations

from pathlib import Path

import pytest

from lstmlm.config import ModelConfig
from lstmlm.model.lm import LanguageModel
from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs import folder as run_folder


@pytest.mark.parametrize("tied", [True, False])
def test_parameter_count_from_the_weights_header(tied: bool, tmp_path: Path) -> None:
    """``info`` counts parameters without torch, from the safetensors header: a tied decoder once."""
    model = LanguageModel(ModelConfig(ntoken=50, emsize=6, nhid=6 if tied else 5, nlayers=2, tied=tied))
    path = tmp_path / run_folder.MODEL
    path.write_bytes(ckpt.weights_bytes(model, step=7))
    header = run_folder.weights_header(path)
    assert run_folder.tensor_count(header) == model.num_parameters()
    assert run_folder.saved_step(header) == 7
