"""Dynamic evaluation and the continuous cache: their limits equal static evaluation exactly,
one dynamic step is the update rule by hand, the cache is a distribution and helps where
words repeat, and ``eval`` reports both without touching the run's weights."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest
import torch

from lstmlm.config import ModelConfig
from lstmlm.data.tokens import batchify
from lstmlm.evaluation.continuous_cache import NeuralCache, mix, score_with_cache
from lstmlm.evaluation.dynamic import dynamic_windows, gradient_rms
from lstmlm.evaluation.perplexity import evaluate_loss, scored_windows
from lstmlm.evaluation.settings import CacheSettings, DynamicSettings
from lstmlm.model.lm import LanguageModel
from tests.conftest import invoke


def small_model(softmax: str = "full") -> LanguageModel:
    torch.manual_seed(0)
    return LanguageModel(ModelConfig(ntoken=20, emsize=8, nhid=8, nlayers=1, softmax=softmax, cutoffs="6,12"))


def ids(n: int = 120, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 20, (n,), generator=torch.Generator().manual_seed(seed))


def dynamic_loss(model: LanguageModel, source: torch.Tensor, settings: DynamicSettings, train=None) -> float:
    windows = list(dynamic_windows(model, source, settings, train))
    return sum(float(w.token_loss.sum(dtype=torch.float64)) for w in windows) / sum(
        w.targets.numel() for w in windows
    )


@pytest.mark.parametrize("softmax", ["full", "adaptive"])
@pytest.mark.parametrize("method", ["sgd", "rms"])
def test_dynamic_evaluation_with_step_size_zero_is_static_evaluation(softmax: str, method: str) -> None:
    model, source = small_model(softmax), batchify(ids(), 1)
    settings = DynamicSettings(method=method, lr=0.0, segment=5)
    static = evaluate_loss(model, source, 5)
    assert dynamic_loss(model, source, settings, batchify(ids(200, 2), 4)) == static


def test_dynamic_evaluation_leaves_cudnn_settings_to_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """cuDNN is off only while a segment adapts: not while the caller holds a scored
    window, and the caller's deterministic setting survives."""
    cudnn = torch.backends.cudnn
    monkeypatch.setattr(cudnn, "deterministic", True)
    model, source = small_model(), batchify(ids(), 1)
    windows = dynamic_windows(model, source, DynamicSettings(method="sgd", lr=0.1, segment=5))
    for _ in range(3):
        next(windows)
        assert cudnn.enabled and cudnn.deterministic
    windows.close()
    assert cudnn.enabled and cudnn.deterministic


def test_one_dynamic_step_moves_the_weights_along_the_gradient() -> None:
    model, source = small_model(), batchify(ids(), 1)
    lr = 0.5
    windows = dynamic_windows(model, source, DynamicSettings(method="sgd", lr=lr, decay=0.0, segment=5))
    first, second = next(windows), next(windows)

    by_hand = copy.deepcopy(model).eval()
    x1, y1, x2, y2 = source[0:5], source[1:6], source[5:10], source[6:11]
    loss1, hidden = by_hand(x1, by_hand.init_state(1), targets=y1)
    grads = torch.autograd.grad(loss1.mean(), list(by_hand.parameters()))
    with torch.no_grad():
        for param, grad in zip(by_hand.parameters(), grads, strict=True):
            param -= lr * grad
        loss2, _ = by_hand(x2, tuple(h.detach() for h in hidden), targets=y2)
    torch.testing.assert_close(first.token_loss, loss1.detach(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(second.token_loss, loss2, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(second.token_loss, model(x2, hidden, targets=y2)[0].detach())  # it moved


def test_the_rms_step_divides_by_the_training_gradients_rms() -> None:
    model, source, train = small_model(), batchify(ids(), 1), batchify(ids(200, 2), 4)
    lr, eps = 0.01, 1e-3
    windows = dynamic_windows(
        model, source, DynamicSettings(method="rms", lr=lr, decay=0.5, epsilon=eps, segment=5), train
    )
    next(windows)
    second = next(windows)

    by_hand = copy.deepcopy(model).eval()
    ms = gradient_rms(by_hand, train, 5)
    loss1, hidden = by_hand(source[0:5], by_hand.init_state(1), targets=source[1:6])
    grads = torch.autograd.grad(loss1.mean(), list(by_hand.parameters()))
    with torch.no_grad():  # the decay term is 0 on the first step: the weights are still θ₀
        for param, grad, rms in zip(by_hand.parameters(), grads, ms, strict=True):
            param -= lr * grad / (rms + eps)
        loss2, _ = by_hand(source[5:10], tuple(h.detach() for h in hidden), targets=source[6:11])
    torch.testing.assert_close(second.token_loss, loss2, rtol=1e-6, atol=1e-6)


def test_the_cache_with_lambda_zero_is_static_evaluation() -> None:
    model, source = small_model(), batchify(ids(300), 3)
    scores = score_with_cache(scored_windows(model, source, 7), CacheSettings(window=50, theta=0.5, lam=0.0))
    assert scores.cached == scores.model
    assert scores.model / scores.tokens == evaluate_loss(model, source, 7)


def test_the_cache_distribution_sums_to_one_and_is_what_is_scored() -> None:
    model, source = small_model(), batchify(ids(100), 2)
    lam = 0.3
    scoring, full = NeuralCache(window=12, theta=0.7), NeuralCache(window=12, theta=0.7)
    for w in scored_windows(model, source, 6):
        p_cache = full.distribution(w.features, w.targets, 20)  # (T, B, V)
        has_pairs = p_cache.sum(-1) > 0
        torch.testing.assert_close(
            p_cache.sum(-1)[has_pairs], torch.ones(int(has_pairs.sum())), rtol=0, atol=1e-5
        )
        p_model = torch.softmax(model.logits(w.features), dim=-1)
        mixed = torch.where(has_pairs.unsqueeze(-1), (1 - lam) * p_model + lam * p_cache, p_model)
        torch.testing.assert_close(mixed.sum(-1), torch.ones_like(mixed[..., 0]), rtol=0, atol=1e-5)
        scored = mix(-w.token_loss, scoring.log_p_cache(w.features, w.targets), lam)
        at_target = mixed.gather(2, w.targets.unsqueeze(-1)).squeeze(-1).log()
        torch.testing.assert_close(scored, at_target, rtol=1e-5, atol=1e-5)


def test_the_cache_sees_only_earlier_positions_within_its_window() -> None:
    cache = NeuralCache(window=3, theta=1.0)

    def attended(first: int, steps: int) -> list[list[int]]:  # token i is fed at position i
        tokens = torch.arange(first, first + steps).view(steps, 1)
        weights, values, _ = cache.attend(torch.randn(steps, 1, 4), tokens)
        return [
            sorted(int(v) for v, w in zip(values[0], weights[0, t], strict=True) if w > 0)
            for t in range(steps)
        ]

    assert attended(0, 8) == [[j for j in range(8) if 0 < t - j <= 3] for t in range(8)]
    for first in range(8, 20, 2):  # the ring (window + 8 slots) wraps around
        assert attended(first, 2) == [[first - 3, first - 2, first - 1], [first - 2, first - 1, first]]


def test_the_cache_lowers_the_loss_where_words_repeat() -> None:
    model = small_model()  # untrained: it cannot know that the text repeats
    repeating = batchify(torch.tensor([3, 7, 11, 15, 2] * 40), 1)
    scores = score_with_cache(
        scored_windows(model, repeating, 10), CacheSettings(window=100, theta=1.0, lam=0.5)
    )
    # the model is near uniform (loss ~ log 20 = 3.0); after the first lap the window holds the
    # 5 words, weighted alike by near-identical hidden states: p >= 0.5 * 1/5, loss <= log 10 = 2.3
    assert scores.model / scores.tokens > 2.8
    assert scores.cached / scores.tokens < 2.4


def test_eval_reports_dynamic_and_cache_beside_static_and_leaves_the_weights(trained_run: Path) -> None:
    out = trained_run
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.glob("*.safetensors")}
    static = json.loads(invoke("eval", str(out), "--json").stdout)
    result = invoke("eval", str(out), "--json", "--dynamic", "--cache", "--cache-tune")
    assert result.exit_code == 0, result.output
    both = json.loads(result.stdout)
    assert {k: both[k] for k in static} == static  # today's fields, unchanged
    for method in (both["dynamic"], both["cache"], both["dynamic"]["with_cache"]):
        assert 1.0 < method["perplexity"] < 20 and method["tokens"] > 0
    assert both["dynamic"]["tokens_per_s"] > 0 and both["dynamic"]["settings"]["method"] == "rms"
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.glob("*.safetensors")} == digest
    table = invoke("eval", str(out), "--dynamic", "--dynamic-method", "sgd", "--cache")
    assert table.exit_code == 0, table.output
    assert "dynamic + cache" in table.stdout


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--dynamic-lr", "0.1"], "--dynamic-lr: only with --dynamic"),
        (["--cache", "--cache-lambda", "1"], "--cache-lambda must be in [0, 1)"),
        (["--dynamic", "--dynamic-segment", "0"], "--dynamic-segment must be >= 1"),
        (["--dynamic", "--dynamic-lr", "nan"], "--dynamic-lr must be a finite number"),
    ],
)
def test_bad_method_options_are_one_line_errors(tmp_path: Path, flags: list[str], message: str) -> None:
    result = invoke("eval", str(tmp_path), *flags)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
