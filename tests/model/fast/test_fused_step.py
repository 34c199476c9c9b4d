"""The sampling fast path (``FusedStep``) against the model's ``forward``: same logits, same tokens."""

from __future__ import annotations

import pytest
import torch

from lstmlm.config import ModelConfig
from lstmlm.generate import pick_next, prime, sample
from lstmlm.model.fast.fused_step import FusedStep
from lstmlm.model.lm import LanguageModel

MODELS = {
    "lstm": {"cell": "lstm"},
    "gru": {"cell": "gru"},
    "rnn-tanh": {"cell": "rnn-tanh"},
    "rnn-relu": {"cell": "rnn-relu", "nlayers": 1},
    "lstm, layer sizes 12,8, untied": {"cell": "lstm", "layer_sizes": "12,8", "tied": False},
    "lstm, adaptive softmax": {"cell": "lstm", "softmax": "adaptive", "cutoffs": "20,40"},
    "lstm 2x64, vocab 500": {"cell": "lstm", "ntoken": 500, "emsize": 64, "nhid": 64},
}


def model_of(settings: dict[str, object]) -> LanguageModel:
    torch.manual_seed(0)
    config = {"ntoken": 60, "emsize": 8, "nhid": 8, "nlayers": 2, "dropout": 0.3, **settings}
    return LanguageModel(ModelConfig(**config)).eval()


def forward_sample(model: LanguageModel, prompt: list[int], n: int, seed: int, **how: float) -> list[int]:
    """The general path: one ``forward`` per token (``sample`` before the fast path)."""
    generator = torch.Generator().manual_seed(seed)
    logits, state = prime(model, prompt)
    tokens = []
    with torch.no_grad():
        for _ in range(n):
            tokens.append(pick_next(logits, how.get("temperature", 1.0), how.get("top_k", 0),
                                    how.get("top_p", 1.0), generator))  # fmt: skip
            out, state = model(torch.tensor([[tokens[-1]]]), state)
            logits = out[0, 0]
    return tokens


@pytest.mark.parametrize("name", MODELS)
def test_fused_step_gives_the_forward_logits_and_state(name: str) -> None:
    model = model_of(MODELS[name])
    fused = FusedStep.of(model)
    assert fused is not None
    with torch.no_grad():
        _, state = prime(model, [1, 5, 7])
        states = fused.layer_states(state)
        for token in [3, 9, 0, 59, 12] * 8:
            expected, state = model(torch.tensor([[token]]), state)
            logits, states = fused.step(token, states)
            torch.testing.assert_close(logits, expected[0, 0], rtol=1e-5, atol=1e-5)
        for got, want in zip(fused.model_state(states), state, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("how", [{}, {"temperature": 0.0}, {"temperature": 0.7, "top_k": 10, "top_p": 0.9}])
def test_sample_takes_the_fast_path_and_draws_the_forward_tokens(name: str, how: dict[str, float]) -> None:
    model = model_of(MODELS[name])
    for seed in (1, 2):
        generator = torch.Generator().manual_seed(seed)
        fast = list(sample(model, [1, 5], max_tokens=300, generator=generator, **how))
        assert fast == forward_sample(model, [1, 5], 300, seed, **how)


def test_models_without_a_fused_step_sample_through_forward() -> None:
    equations = model_of({"cell": "lstm-eq"})
    assert FusedStep.of(equations) is None
    tokens = list(sample(equations, [1, 5], max_tokens=50, generator=torch.Generator().manual_seed(3)))
    assert tokens == forward_sample(equations, [1, 5], 50, 3)
    assert FusedStep.of(model_of({"cell": "lstm"}).train()) is None
