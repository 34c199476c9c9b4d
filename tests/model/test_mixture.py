"""The mixture of softmaxes (Yang et al. 2018): a distribution, one expert is a softmax over
the projected features, the loss is the log-probability's target entry, tying shares the
embedding, and its options are checked."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lstmlm.config import ModelConfig, RunConfig
from lstmlm.errors import LstmlmError
from lstmlm.model.lm import LanguageModel
from lstmlm.model.mixture import MixtureOfSoftmaxes

# fp32 log-softmax and logaddexp each round to about 1e-7 relative per entry; summing 40
# probabilities (the largest ~1) and taking logs leaves errors near 1e-6, 10x under this bound.
SUM_TOLERANCE = 1e-5


def mos_model(*, tied: bool, experts: int = 3, emsize: int = 8, nhid: int = 12) -> LanguageModel:
    cfg = ModelConfig(ntoken=40, emsize=emsize, nhid=nhid, tied=tied, softmax="mos", mos_experts=experts)
    return LanguageModel(cfg).eval()


@pytest.mark.parametrize("tied", [True, False])
def test_log_probabilities_sum_to_one_and_the_loss_is_their_target_entry(tied: bool, seeded: None) -> None:
    model = mos_model(tied=tied)
    with torch.no_grad():  # prior and contexts away from the init's near-uniform values
        for p in model.decoder.parameters():
            p.normal_(0.0, 1.0)
    x, y = torch.randint(0, 40, (6, 3)), torch.randint(0, 40, (6, 3))
    log_probs, _ = model(x, None)
    loss, _ = model(x, None, targets=y)
    assert log_probs.shape == (6, 3, 40) and log_probs.dtype == torch.float32
    assert log_probs.max() - log_probs.min() > 1.0  # not uniform: the sum tests the mixture
    torch.testing.assert_close(log_probs.logsumexp(-1), torch.zeros(6, 3), rtol=0, atol=SUM_TOLERANCE)
    # the loss takes the expert cross-entropies, the log-probabilities logaddexp: 1e-6 apart
    torch.testing.assert_close(loss, -log_probs.gather(2, y.unsqueeze(-1)).squeeze(-1), rtol=0, atol=1e-5)


def test_one_expert_is_a_full_softmax_over_the_projected_features(seeded: None) -> None:
    """K = 1: the prior is 1, so log p = log_softmax(tanh(P h + b_P) Eᵀ + b): a plain full-softmax
    LanguageModel (emsize = nhid = e) fed the projected features, with the same E and b."""
    model = mos_model(tied=False, experts=1, emsize=8, nhid=12)
    plain = LanguageModel(ModelConfig(ntoken=40, emsize=8, nhid=8, tied=False)).eval()
    decoder = model.decoder
    assert isinstance(decoder, MixtureOfSoftmaxes)
    with torch.no_grad():
        plain.decoder.weight.copy_(decoder.weight)
        plain.decoder.bias.copy_(decoder.bias.normal_())
    h = torch.randn(5, 2, 12)
    projected = torch.tanh(decoder.latent(h))  # (5, 2, 8)
    expected = F.log_softmax(plain.logits(projected).float(), dim=-1)
    # one expert: logsumexp over one term returns it; both sides are the same fp32 products
    torch.testing.assert_close(model.logits(h), expected, rtol=0, atol=1e-6)


def test_tying_shares_the_embedding_and_its_gradient_comes_from_the_output_side(seeded: None) -> None:
    model = mos_model(tied=True, emsize=8, nhid=12)  # tying with emsize != nhid: mos projects
    model.train()
    names = {name for name, _ in model.named_parameters()}
    assert "decoder.weight" not in names  # E is the embedding itself, no copy
    h = torch.randn(4, 2, 12)
    loss = model.token_loss(h, torch.randint(0, 40, (4, 2))).sum()  # the output side alone
    loss.backward()
    assert model.encoder.weight.grad is not None and model.encoder.weight.grad.abs().sum() > 0
    with torch.no_grad():  # the output reads the embedding's storage: change one, the other moves
        before = model.logits(h)
        model.encoder.weight.mul_(2.0)
        assert not torch.allclose(model.logits(h), before)


def test_untied_keeps_its_own_output_matrix(seeded: None) -> None:
    model = mos_model(tied=False, emsize=8, nhid=12)
    decoder = model.decoder
    assert isinstance(decoder, MixtureOfSoftmaxes)
    assert decoder.weight.shape == (40, 8)
    assert decoder.weight.data_ptr() != model.encoder.weight.data_ptr()


def test_a_config_saved_before_the_option_loads_with_its_default() -> None:
    saved = RunConfig.from_dict({"model": {"ntoken": 40}}).to_dict()
    del saved["model"]["mos_experts"]  # what config.json held before --mos-experts
    loaded = RunConfig.from_dict(saved)
    assert loaded.model.mos_experts == ModelConfig().mos_experts and loaded.model.softmax == "full"


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"softmax": "mos", "mos_experts": 0}, "--mos-experts must be > 0"),
        ({"mos_experts": 3}, "--mos-experts applies to --softmax mos"),
        ({"tied": True, "emsize": 8, "nhid": 12}, "--tied needs --emsize"),  # still for the full softmax
    ],
)
def test_bad_settings_are_one_line(settings: dict, words: str) -> None:
    with pytest.raises(LstmlmError, match=words):
        ModelConfig(ntoken=40, **settings)


def test_the_sampling_step_takes_the_mixture_through_the_models_own_output_layer(seeded: None) -> None:
    from lstmlm.model.fast.fused_step import FusedStep

    model = mos_model(tied=True)
    fused = FusedStep.of(model)
    assert fused is not None and not fused.full_softmax
    tokens = [3, 17, 5]
    states = fused.layer_states(model.init_state(1))
    for token in tokens:
        logits, states = fused.step(token, states)
    with torch.no_grad():
        expected, _ = model(torch.tensor(tokens).unsqueeze(1), None)
    # the cell functions sum in another order than nn.LSTM (fused_step.py): ~1e-6 apart
    torch.testing.assert_close(logits, expected[-1, 0], rtol=0, atol=1e-5)
