"""``Model.embed`` and ``Embedder``: per-token and per-word hidden states of a chosen layer, and
flair's forward+backward concatenation; a word's forward vector never sees the text after it,
its backward vector never the text before it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import lstmlm
from lstmlm.embeddings import Embedder
from lstmlm.errors import BadArgument
from tests.conftest import cache_folder, train_tiny_run, write_tiny_corpus

TWO_LAYERS = ["--nlayers", "2"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, lstmlm.Model]:
    """Two-layer forward and backward word runs, a backward char run, a forward char run."""
    root = tmp_path_factory.mktemp("embeddings")
    corpus = write_tiny_corpus(root / "corpus")
    few = ["--max-steps", "10", "--eval-every", "10"]  # embeddings need a trained run, not a good one
    runs = {
        "forward": (*TWO_LAYERS, *few),
        "backward": (*TWO_LAYERS, *few, "--direction", "backward"),
        "char_forward": (*few, "--tokenizer", "char"),
        "char_backward": (*few, "--tokenizer", "char", "--direction", "backward"),
        "equations": (*TWO_LAYERS, *few, "--cell", "lstm-eq"),  # a CellStack: layers from its traces
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LSTMLM_CACHE", str(cache_folder(tmp_path_factory)))
        return {
            name: lstmlm.load(train_tiny_run(root / name, corpus, *flags)) for name, flags in runs.items()
        }


def test_tokens_states_and_word_vectors(models: dict[str, lstmlm.Model]) -> None:
    (emb,) = models["forward"].embed("the cat sees the dog .")
    assert emb.tokens == ("the", "cat", "sees", "the", "dog", ".")
    assert emb.words == emb.tokens and emb.spans == tuple((i, i + 1) for i in range(6))
    assert emb.states.shape == (6, 16) and emb.word_vectors.shape == (6, 16) and emb.layer == 1
    assert torch.equal(emb.word_vectors, emb.states)  # a word is one token here
    low = models["forward"].embed(["the cat sees the dog ."], layer=0)[0]
    assert low.layer == 0 and low.states.shape == (6, 16) and not torch.equal(low.states, emb.states)


@torch.no_grad()  # as embed runs: the same kernels, so the same numbers
def test_the_last_layer_is_the_models_own_features(models: dict[str, lstmlm.Model]) -> None:
    model = models["forward"]
    ids = [model.tokenizer.eos_id, *model.tokenizer.encode("the cat sees the dog .")]
    features, _ = model.module.features(torch.tensor(ids).unsqueeze(1), None)
    assert torch.equal(model.embed("the cat sees the dog .")[0].states, features[1:, 0])
    # layer 0 by hand: the first nn.LSTM on the embeddings (eval: no dropout), from zeros
    x = model.module.encoder(torch.tensor(ids).unsqueeze(1))
    low, _ = model.module.rnn.layers[0](x)
    assert torch.equal(model.embed("the cat sees the dog .", layer=0)[0].states, low[1:, 0])


def test_forward_vectors_ignore_the_text_after_a_word(models: dict[str, lstmlm.Model]) -> None:
    a, b = models["forward"].embed(["the cat sees the dog .", "the cat likes the bird ."])
    assert torch.equal(a.word_vectors[:2], b.word_vectors[:2])  # the cat: same text before
    assert not torch.equal(a.word_vectors[2], b.word_vectors[2])


def test_backward_vectors_ignore_the_text_before_a_word(models: dict[str, lstmlm.Model]) -> None:
    a, b = models["backward"].embed(["the cat sees the dog .", "a frog hears the dog ."])
    assert a.direction == "backward" and a.tokens == ("the", "cat", "sees", "the", "dog", ".")
    assert torch.equal(a.word_vectors[3:], b.word_vectors[3:])  # the dog .: same text after
    assert not torch.equal(a.word_vectors[2], b.word_vectors[2])


def test_char_tokens_are_grouped_into_words(models: dict[str, lstmlm.Model]) -> None:
    text = "the cat sees"
    (fwd,) = models["char_forward"].embed(text)
    (bwd,) = models["char_backward"].embed(text)
    assert fwd.tokens == tuple(text) and fwd.words == ("the", "cat", "sees")
    assert fwd.spans == ((0, 3), (4, 7), (8, 12))  # the spaces belong to no word
    assert torch.equal(fwd.word_vectors, fwd.states[[2, 6, 11]])  # after each word's last char
    assert torch.equal(bwd.word_vectors, bwd.states[[0, 4, 8]])  # before its first (read backwards)
    (other,) = models["char_backward"].embed("a dog sees")
    assert torch.equal(bwd.word_vectors[2], other.word_vectors[2])


def test_embedder_concatenates_forward_and_backward(models: dict[str, lstmlm.Model]) -> None:
    embedder = Embedder(models["forward"], models["backward"])
    (words,) = embedder.embed(["the cat sees the dog ."])
    (fwd,), (bwd,) = (
        models["forward"].embed("the cat sees the dog ."),
        models["backward"].embed("the cat sees the dog ."),
    )
    assert words.words == fwd.words and words.vectors.shape == (6, 32)
    assert torch.equal(words.vectors, torch.cat([fwd.word_vectors, bwd.word_vectors], dim=1))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m["forward"].embed("the cat", layer=2), "layer must be in -2..1"),
        (lambda m: m["forward"].embed("the cat", layer=True), "layer must be an integer"),
        (lambda m: m["forward"].embed("   "), "empty"),
        (lambda m: m["forward"].embed([]), "empty"),
        (lambda m: m["forward"].embed("the cat\nthe dog"), "one line"),
        (lambda m: m["forward"].embed(3), "str"),
        (lambda m: Embedder(m["forward"], m["char_backward"]), "different tokenizers"),
        (lambda m: Embedder(m["backward"], m["forward"]), "--direction forward"),
        (lambda m: Embedder(m["forward"], m["backward"], layer=5), "layer"),
    ],
)
def test_bad_arguments_are_one_line(models: dict[str, lstmlm.Model], call: object, message: str) -> None:
    with pytest.raises(BadArgument, match=message) as error:
        call(models)  # type: ignore[operator]
    assert "\n" not in str(error.value)


@torch.no_grad()
def test_a_cell_stacks_layers_come_from_its_traces(models: dict[str, lstmlm.Model]) -> None:
    model = models["equations"]
    (top,) = model.embed("the cat sees the dog .")
    (low,) = model.embed("the cat sees the dog .", layer=-2)
    ids = torch.tensor([model.tokenizer.eos_id, *model.tokenizer.encode("the cat sees the dog .")])
    features, _ = model.module.features(ids.unsqueeze(1), None)
    assert torch.equal(top.states, features[1:, 0])  # the last layer: the model's own features
    _, _, traces = model.module.rnn.trace(model.module.encoder(ids.unsqueeze(1)), None)
    assert torch.equal(low.states, traces[0]["hidden"][1:, 0]) and low.layer == 0
    # the traces run the equations step by step, the model a fused scan: float32 rounding apart
    torch.testing.assert_close(traces[1]["hidden"][1:, 0], top.states, rtol=1e-5, atol=1e-6)


def test_the_docs_examples_run(models: dict[str, lstmlm.Model]) -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "embeddings.md").read_text(encoding="utf-8")
    blocks = [part.split("```")[0] for part in docs.split("```python\n")[1:]]
    assert len(blocks) == 2
    paths = {"runs/demo": "forward", "runs/fwd": "forward", "runs/bwd": "backward"}
    example = "import lstmlm\n" + blocks[0] + blocks[1]
    for name, run in paths.items():
        example = example.replace(f'"{name}"', repr(str(models[run].run.dir)))
    namespace: dict = {}
    exec(example.replace("The keys to the cabinet are old .", "the cat sees the dog ."), namespace)
    assert namespace["words"].vectors.shape == (6, 32)
