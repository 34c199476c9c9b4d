"""Dropout masks come from (seed, step, site, stream): independent of the process layout, and
drawn without touching the global generator."""

from __future__ import annotations

import torch

from lstmlm.config import ModelConfig
from lstmlm.model.dropout import StreamDropout, masks_for_step
from lstmlm.model.lm import LanguageModel


def test_dropout_masks_depend_on_the_global_stream_not_the_process_layout() -> None:
    drop = StreamDropout(0.5).train()
    x = torch.ones(6, 8, 5)
    with masks_for_step(seed=7, step=3, first=0, total=8):
        whole = drop(x)
    with masks_for_step(seed=7, step=3, first=4, total=8):
        second_half = drop(x[:, 4:])
    torch.testing.assert_close(second_half, whole[:, 4:], rtol=0, atol=0)
    with masks_for_step(seed=7, step=4, first=0, total=8):
        assert not torch.equal(drop(x), whole)  # another step, another mask
    with masks_for_step(seed=7, step=3, first=0, total=8) as masks:
        drop(x), drop(x)
        assert masks.sites_drawn == 2  # each site draws its own mask


def test_a_model_trained_with_masks_draws_nothing_from_the_global_generator() -> None:
    model = LanguageModel(ModelConfig(ntoken=12, emsize=6, nhid=6, nlayers=2, dropout=0.3)).train()
    before = torch.get_rng_state()
    with masks_for_step(seed=1, step=0, first=0, total=2):
        model(torch.zeros(4, 2, dtype=torch.long), model.init_state(2))
    assert torch.equal(torch.get_rng_state(), before)
