"""``extend_tokenizer``: the parent's ids unchanged, the new text's missing units appended."""

from __future__ import annotations

import pytest

from lstmlm.data.tokenizer import SPECIALS, extend_tokenizer, train_tokenizer
from lstmlm.errors import LstmlmError

OLD = ["the cat sees the dog .", "the dog sees the cat ."]
NEW = ["the lion sees the cat .", "the lion eats the tiger .", "a lion ."]


def test_word_extension_keeps_the_parents_ids_and_appends_by_frequency() -> None:
    parent = train_tokenizer("word", OLD, pre_tokenize="punct")
    extended = extend_tokenizer(parent, NEW)
    tok = extended.tokenizer
    assert (tok.kind, tok.pre_tokenize) == ("word", "punct")  # the parent's pipeline
    for i in range(parent.vocab_size):
        assert tok.token(i) == parent.token(i)
    appended = [tok.token(i) for i in range(parent.vocab_size, tok.vocab_size)]
    assert appended[0] == "lion"  # 3 times: the most frequent new word comes first
    assert sorted(appended) == ["a", "eats", "lion", "tiger"]
    # the new text's own words: the . lion sees cat eats tiger a -> 4 known, 4 new
    assert (extended.shared, extended.added) == (4, 4)
    assert tok.encode("the lion eats")[0] == parent.id("the")


def test_the_new_runs_min_freq_and_vocab_size_choose_the_new_units() -> None:
    parent = train_tokenizer("word", OLD)
    assert extend_tokenizer(parent, NEW, min_freq=2).added == 1  # only "lion" occurs twice or more
    capped = extend_tokenizer(parent, NEW, vocab_size=len(SPECIALS) + 2)  # the new text's 2 most frequent
    assert capped.shared + capped.added == 2
    assert capped.tokenizer.vocab_size == parent.vocab_size + capped.added


def test_char_extension_appends_new_characters() -> None:
    parent = train_tokenizer("char", ["abc"])
    extended = extend_tokenizer(parent, ["abd"])
    assert (extended.shared, extended.added) == (2, 1)
    assert extended.tokenizer.decode(extended.tokenizer.encode("dab")) == "dab"


def test_bpe_cannot_be_extended() -> None:
    parent = train_tokenizer("bpe", OLD * 10, vocab_size=300)
    with pytest.raises(LstmlmError, match="not bpe"):
        extend_tokenizer(parent, NEW)
