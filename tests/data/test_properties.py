"""Property tests: any text file goes through corpus -> tokenizer -> ids without crashing."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstmlm.config import DataConfig
from lstmlm.data.corpus import load_corpus
from lstmlm.data.tokenizer import train_tokenizer
from lstmlm.data.tokens import encode_split
from lstmlm.errors import LstmlmError

PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

line_chars = st.characters(codec="utf-8", exclude_characters="\r\n")
first_chars = st.characters(codec="utf-8", exclude_characters="\r\n\ufeff")  # U+FEFF first is a BOM
short_line = st.text(line_chars, max_size=40)
long_line = st.builds(
    lambda piece, n: piece * n, st.text(line_chars, min_size=1, max_size=4), st.integers(200, 1500)
)
some_line = st.one_of(short_line, short_line, st.just(""), long_line)
text_line = st.text(line_chars, min_size=1, max_size=40).filter(str.strip)


@st.composite
def text_files(draw: st.DrawFn) -> tuple[list[str], bytes]:
    """Lines with at least 3 holding text (the first one among them), and the file's bytes."""
    first = draw(st.text(first_chars, min_size=1, max_size=40).filter(str.strip))
    lines = [first, *draw(st.lists(some_line, max_size=30)), draw(text_line), draw(text_line)]
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    body = newline.join(lines) + (newline if draw(st.booleans()) else "")
    bom = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    return lines, bom + body.encode("utf-8")


def load_written(raw: bytes) -> dict[str, list[str]]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "corpus.txt"
        path.write_bytes(raw)
        splits = load_corpus(DataConfig(data=str(path))).splits
        return {name: source.to_list() for name, source in splits.items()}  # before the file goes


def as_text(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


@PROPERTY
@given(text_files())
def test_any_text_file_loads_back_line_for_line(case: tuple[list[str], bytes]) -> None:
    lines, raw = case
    splits = load_written(raw)
    assert splits["train"] + splits["valid"] + splits["test"] == lines
    assert all(splits[name] for name in ("train", "valid", "test"))


@PROPERTY
@given(text_files())
def test_char_and_bpe_round_trip_any_text(case: tuple[list[str], bytes]) -> None:
    lines, raw = case
    splits = load_written(raw)
    char = train_tokenizer("char", lines)
    bpe = train_tokenizer("bpe", splits["train"], vocab_size=300)
    for split in splits.values():
        assert char.decode(char.encode_lines(split)) == as_text(split)
        assert bpe.decode(bpe.encode_lines(split)) == as_text(split)


@PROPERTY
@given(text_files(), st.sampled_from(["word", "char", "bpe"]))
def test_every_kind_encodes_every_split(case: tuple[list[str], bytes], kind: str) -> None:
    splits = load_written(case[1])
    tok = train_tokenizer(kind, splits["train"], vocab_size=300 if kind == "bpe" else 0)
    with tempfile.TemporaryDirectory() as cache:
        for split in splits.values():
            cached = encode_split(split, tok, cache_dir=Path(cache))
            fresh = encode_split(split, tok, cache_dir=None)
            ids = cached.ids.tolist()
            assert ids == fresh.ids.tolist()
            assert ids.count(tok.eos_id) >= len(split)  # a word may also be "<eos>"
            assert max(ids) < tok.vocab_size
            assert cached.num_chars == len(as_text(split))
            del cached  # release the memmap before the folder goes


@PROPERTY
@given(st.binary(max_size=200))
def test_arbitrary_bytes_load_or_fail_with_a_user_error(raw: bytes) -> None:
    try:
        load_written(raw)
    except LstmlmError as e:
        assert "\n" not in str(e)
