"""Encoded splits, the token cache, batchify and BPTT windows."""

from __future__ import annotations

import string
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from lstmlm.data.tokenizer import Tokenizer, train_tokenizer
from lstmlm.data.tokens import (
    batchify,
    check_length,
    encode_split,
    get_window,
    ids_dtype,
    num_windows,
)
from lstmlm.errors import LstmlmError
from lstmlm.files import cache_dir

LINES = ["the cat sat", "", "on the mat", "the end"]
ALPHABET = np.arange(26)  # a b c ... z


def letters(rows: torch.Tensor) -> list[str]:
    return [" ".join(string.ascii_lowercase[i] for i in row) for row in rows.tolist()]


def docstring_block(func: object) -> str:
    """The docstring with each line stripped, so drawn rows compare as plain text."""
    return "\n".join(line.strip() for line in (func.__doc__ or "").splitlines())


def spy(tok: Tokenizer) -> mock.Mock:
    wrapped = mock.Mock(wraps=tok.encode_lines)
    tok.encode_lines = wrapped  # type: ignore[method-assign]
    return wrapped


def test_batchify_matches_its_picture() -> None:
    picture = ["a g m s", "b h n t", "c i o u", "d j p v", "e k q w", "f l r x"]
    source = batchify(ALPHABET, 4)
    assert source.shape == (6, 4) and source.dtype == torch.int64
    assert letters(source) == picture
    assert "\n".join(picture) in docstring_block(batchify)


def test_windows_match_their_picture() -> None:
    source = batchify(ALPHABET, 4)
    assert num_windows(source, 2) == 3
    rendered = []
    for i in (0, 2, 4):
        x, y = get_window(source, i, 2)
        rendered.append(["  ".join(pair) for pair in zip(letters(x), letters(y), strict=True)])
    assert rendered == [
        ["a g m s  b h n t", "b h n t  c i o u"],
        ["c i o u  d j p v", "d j p v  e k q w"],
        ["e k q w  f l r x"],
    ]
    doc = docstring_block(get_window)
    assert "a g m s  b h n t        c i o u  d j p v        e k q w  f l r x" in doc


@pytest.mark.parametrize("bptt", [1, 3, 5, 7, 100])
def test_targets_are_inputs_shifted_across_window_boundaries(bptt: int) -> None:
    source = batchify(np.arange(1000), 7)
    windows = [get_window(source, i, bptt) for i in range(0, source.size(0) - 1, bptt)]
    assert len(windows) == num_windows(source, bptt)
    xs = torch.cat([x for x, _ in windows])
    ys = torch.cat([y for _, y in windows])
    assert torch.equal(xs, source[:-1])
    assert torch.equal(ys, source[1:])
    assert all(x.shape == y.shape and x.size(0) <= bptt for x, y in windows)


def test_batchify_accepts_tensors_and_memmap_dtypes() -> None:
    from_tensor = batchify(torch.arange(26), 4)
    from_uint16 = batchify(ALPHABET.astype(np.uint16), 4)
    assert torch.equal(from_tensor, from_uint16)
    assert from_uint16.dtype == torch.int64


def test_too_short_is_a_user_error() -> None:
    check_length(8, 4, "train")
    with pytest.raises(LstmlmError, match=r"the valid split has 7 tokens: .*batch size 4 .*8"):
        check_length(7, 4, "valid")
    with pytest.raises(LstmlmError, match="the train split has 3 tokens"):
        batchify(np.arange(3), 2)


def test_encoded_split_counts_text_and_uses_small_dtype(tmp_path: Path) -> None:
    tok = train_tokenizer("word", LINES)
    split = encode_split(["ab", "é"], tok, cache_dir=None)
    assert (split.num_chars, split.num_bytes) == (5, 6)  # line ends count 1 each
    assert split.ids.dtype == np.uint16
    assert split.ids.tolist() == [tok.unk_id, tok.eos_id, tok.unk_id, tok.eos_id]
    assert ids_dtype(65_536) == np.uint16 and ids_dtype(65_537) == np.uint32


def test_cache_is_reused_without_running_the_tokenizer(tmp_path: Path) -> None:
    tok = train_tokenizer("word", LINES)
    encode_lines = spy(tok)
    first = encode_split(LINES, tok, cache_dir=tmp_path)
    second = encode_split(LINES, tok, cache_dir=tmp_path)
    assert encode_lines.call_count == 1
    assert isinstance(second.ids, np.memmap) and second.ids.dtype == np.uint16
    assert second.ids.tolist() == first.ids.tolist() == tok.encode_lines(LINES).tolist()
    assert (second.num_chars, second.num_bytes) == (first.num_chars, first.num_bytes)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".bin", ".json"]


def test_cache_tells_splits_and_tokenizers_apart(tmp_path: Path) -> None:
    word, char = train_tokenizer("word", LINES), train_tokenizer("char", LINES)
    a = encode_split(LINES, word, cache_dir=tmp_path)
    b = encode_split(LINES[:2], word, cache_dir=tmp_path)
    c = encode_split(LINES, char, cache_dir=tmp_path)
    assert len({len(a.ids), len(b.ids), len(c.ids)}) == 3
    assert len(list(tmp_path.glob("*.bin"))) == 3


@pytest.mark.parametrize("damage", ["truncate_bin", "garbage_json", "missing_bin"])
def test_damaged_cache_is_re_encoded(tmp_path: Path, damage: str) -> None:
    tok = train_tokenizer("word", LINES)
    expected = encode_split(LINES, tok, cache_dir=tmp_path).ids.tolist()
    bin_path = next(tmp_path.glob("*.bin"))
    if damage == "truncate_bin":
        bin_path.write_bytes(bin_path.read_bytes()[:-2])
    elif damage == "garbage_json":
        bin_path.with_suffix(".json").write_text("{not json", encoding="utf-8")
    else:
        bin_path.unlink()
    encode_lines = spy(tok)
    again = encode_split(LINES, tok, cache_dir=tmp_path)
    assert encode_lines.call_count == 1
    assert again.ids.tolist() == expected
    assert encode_split(LINES, tok, cache_dir=tmp_path).ids.tolist() == expected
    assert encode_lines.call_count == 1  # repaired


def test_unwritable_cache_falls_back_to_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    tok = train_tokenizer("word", LINES)
    split = encode_split(LINES, tok, cache_dir=blocker)
    assert split.ids.tolist() == tok.encode_lines(LINES).tolist()


def test_cache_dir_honours_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSTMLM_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("LSTMLM_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "lstmlm"
