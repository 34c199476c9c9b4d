"""Word, char and bpe tokenizers: round trips, specials, vocabulary caps, save/load."""

from __future__ import annotations

from pathlib import Path

import pytest

from lstmlm.data.tokenizer import SPECIALS, Tokenizer, train_tokenizer
from lstmlm.errors import LstmlmError

LINES = [
    "the cat sat on the mat .",
    "",
    " the dog <unk> ran  away\t fast ",
    "Grüße, 世界! 👍🏽 e\u0301 <eos> tail",
    "the end",
]


def test_specials_come_first() -> None:
    for kind in ("word", "char", "bpe"):
        tok = train_tokenizer(kind, LINES, vocab_size=300 if kind == "bpe" else 0)
        assert [tok.token(i) for i in range(2)] == list(SPECIALS)
        assert (tok.unk_id, tok.eos_id) == (0, 1)


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_char_and_bpe_round_trip_exactly(kind: str) -> None:
    tok = train_tokenizer(kind, LINES)
    assert tok.decode(tok.encode_lines(LINES)) == "\n".join(LINES) + "\n"
    assert tok.decode(tok.encode("a\nthe c")) == "a\nthe c"


def test_bpe_round_trips_text_it_never_saw() -> None:
    tok = train_tokenizer("bpe", LINES, vocab_size=300)
    text = "Ωmega ≠ omega\t\u00a0\u2028 \U0001f600 <unk> <eos>"
    assert tok.decode(tok.encode(text)) == text


def test_word_round_trip_normalises_whitespace() -> None:
    tok = train_tokenizer("word", LINES)
    expected = "\n".join(" ".join(line.split()) for line in LINES) + "\n"
    expected = expected.replace(" <eos> ", "\n")  # a literal <eos> word is the <eos> token
    assert tok.decode(tok.encode_lines(LINES)) == expected


def test_eos_ends_every_line_and_nothing_else() -> None:
    tok = train_tokenizer("word", ["a b", "c"])
    a, b, c, eos = tok.id("a"), tok.id("b"), tok.id("c"), tok.eos_id
    assert tok.encode_lines(["a b", "", "c"]).tolist() == [a, b, eos, eos, c, eos]
    assert tok.encode("a b\nc") == [a, b, eos, c]
    assert tok.encode("") == []


def test_unseen_word_and_literal_unk_map_to_unk() -> None:
    tok = train_tokenizer("word", ["a b <unk> a"])
    assert tok.encode("a zebra <unk>") == [tok.id("a"), tok.unk_id, tok.unk_id]
    assert tok.vocab_size == 4  # <unk>, <eos>, a, b


def test_unseen_char_maps_to_unk() -> None:
    tok = train_tokenizer("char", ["ab a"])
    assert tok.encode("az") == [tok.id("a"), tok.unk_id]
    assert tok.id(" ") is not None


def test_vocab_cap_keeps_the_most_frequent() -> None:
    lines = ["a a a a b b b c c d"]
    tok = train_tokenizer("word", lines, vocab_size=4)
    assert tok.vocab_size == 4
    assert [tok.token(i) for i in range(4)] == ["<unk>", "<eos>", "a", "b"]
    assert tok.encode("c d") == [tok.unk_id, tok.unk_id]


def test_min_freq_drops_rare_units() -> None:
    tok = train_tokenizer("word", ["a a b"], min_freq=2)
    assert tok.id("a") is not None and tok.id("b") is None


def test_bpe_vocab_cap_and_default() -> None:
    text = [f"word{i} other{i * 7}" for i in range(2000)]
    assert train_tokenizer("bpe", text, vocab_size=300).vocab_size == 300
    assert train_tokenizer("bpe", text).vocab_size <= 8192


def test_too_small_vocab_is_a_user_error() -> None:
    with pytest.raises(LstmlmError, match="vocab-size"):
        train_tokenizer("word", LINES, vocab_size=2)
    with pytest.raises(LstmlmError, match="tokenizer"):
        train_tokenizer("sentencepiece", LINES)


@pytest.mark.parametrize("kind", ["word", "char", "bpe"])
def test_save_load_gives_identical_ids_and_kind(kind: str, tmp_path: Path) -> None:
    tok = train_tokenizer(kind, LINES)
    tok.save(tmp_path / "tokenizer.json")
    loaded = Tokenizer.load(tmp_path / "tokenizer.json")
    assert loaded.kind == kind
    assert loaded.vocab_size == tok.vocab_size
    assert loaded.encode_lines(LINES).tolist() == tok.encode_lines(LINES).tolist()
    assert loaded.to_json() == tok.to_json()
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer.json"]  # no temp file left


@pytest.mark.parametrize("kind", ["word", "char", "bpe"])
def test_training_is_deterministic(kind: str) -> None:
    lines = [f"w{i % 13} w{i % 7} w{i % 5} x{i}" for i in range(200)]  # many frequency ties
    first = train_tokenizer(kind, lines, vocab_size=300 if kind == "bpe" else 20)
    second = train_tokenizer(kind, list(lines), vocab_size=300 if kind == "bpe" else 20)
    assert first.to_json().encode() == second.to_json().encode()


def test_load_missing_or_corrupt_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(LstmlmError, match="nope.json"):
        Tokenizer.load(missing)
    corrupt = tmp_path / "tokenizer.json"
    corrupt.write_text('{"model": ', encoding="utf-8")
    with pytest.raises(LstmlmError, match=r"tokenizer\.json: not a valid tokenizer\.json"):
        Tokenizer.load(corrupt)


def test_token_out_of_range_is_a_user_error() -> None:
    tok = train_tokenizer("word", LINES)
    with pytest.raises(LstmlmError, match="outside the vocabulary"):
        tok.token(10_000)
