"""Streaming splits: lazily read sources give the same lines, fingerprints and ids as reading at once."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmlm.config import DataConfig
from lstmlm.data import sources, text_file
from lstmlm.data.corpus import load_corpus, read_lines, split_fingerprint
from lstmlm.data.sources import DatasetSource, ListSource
from lstmlm.data.text_file import FileSource, scan_text_file
from lstmlm.data.tokenizer import Tokenizer, train_tokenizer
from lstmlm.data.tokens import encode_split
from lstmlm.errors import LstmlmError
from lstmlm.runs import load as runs
from tests.conftest import ROOT, tiny_config


@contextmanager
def tiny_chunks(block: int = 7, lines: int = 3, chars: int = 40, rows: int = 2) -> Iterator[None]:
    """Read files ``block`` bytes at a time and hand out very small batches, so every split is many chunks."""
    with (
        mock.patch.object(text_file, "BLOCK_BYTES", block),
        mock.patch.object(sources, "BATCH_LINES", lines),
        mock.patch.object(sources, "BATCH_CHARS", chars),
        mock.patch.object(sources, "DATASET_ROWS", rows),
    ):
        yield


def write(path: Path, raw: bytes) -> Path:
    path.write_bytes(raw)
    return path


def whole_file(path: Path) -> FileSource:
    source, _ = scan_text_file(path)
    return source


def batches(source: sources.LineSource) -> list[list[str]]:
    return list(source.iter_batches())  # the limits in force (tiny_chunks patches them)


@contextmanager
def tmp_folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def spy(tok: Tokenizer) -> mock.Mock:
    wrapped = mock.Mock(wraps=tok.encode_lines)
    tok.encode_lines = wrapped  # type: ignore[method-assign]
    return wrapped


def text_lines(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = ["the", "cat", "Grüße", "世界", "👍🏽", "e\u0301", "<unk>", "a", "mat", "ran"]
    return [" ".join(rng.choices(words, k=rng.randrange(0, 9))) for _ in range(n)]


# --- files: same lines, same fingerprints, whatever the chunking -----------------

line_chars = st.characters(codec="utf-8", exclude_characters="\n")  # "\r" allowed inside lines
file_lines = st.lists(st.text(line_chars, max_size=12) | st.just(""), min_size=1, max_size=25)


@settings(max_examples=80, deadline=None)
@given(
    file_lines,
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
    st.booleans(),
    st.integers(1, 9),
    st.integers(0, 25),
)
def test_file_source_reads_like_the_whole_file(
    lines: list[str], newline: str, bom: bool, final: bool, block: int, k: int
) -> None:
    body = newline.join(lines) + (newline if final else "")
    raw = (b"\xef\xbb\xbf" if bom else b"") + body.encode("utf-8")
    if not raw.removeprefix(b"\xef\xbb\xbf"):
        return  # an empty file is an error, tested elsewhere
    with tmp_folder() as folder, tiny_chunks(block=block, lines=2, chars=5):
        path = write(folder / "t.txt", raw)
        expected = read_lines(path)
        source = whole_file(path)
        assert len(source) == len(expected)
        assert source.to_list() == expected
        assert all(batch for batch in batches(source))
        assert source.fingerprint() == split_fingerprint(expected)
        assert scan_text_file(path, fingerprint=True)[0].fingerprint() == source.fingerprint()
        assert source.has_text() == any(line.strip() for line in expected)
        k = min(k, len(expected))
        head, tail = source.split_at(k)
        assert (head.to_list(), tail.to_list()) == (expected[:k], expected[k:])
        assert (len(head), len(tail)) == (k, len(expected) - k)
        assert head.fingerprint() == split_fingerprint(expected[:k])
        assert tail.fingerprint() == split_fingerprint(expected[k:])


def test_chunk_boundaries_never_split_a_line(tmp_path: Path) -> None:
    long = "x" * 50  # longer than a block
    raw = f"\ufeff{long}\r\n\r\nab\rc\r\n\n é\n{long} {long}".encode()
    path = write(tmp_path / "t.txt", raw)
    expected = [long, "", "ab\rc", "", " é", f"{long} {long}"]
    for block in (1, 2, 3, 4, 5, 16):
        with tiny_chunks(block=block, lines=2, chars=3):
            got = batches(whole_file(path))
        assert [line for batch in got for line in batch] == expected
        assert len(got) > 1


def test_blocks_end_at_line_ends(tmp_path: Path) -> None:
    path = write(tmp_path / "t.txt", b"a\r\nbb\ncccccccc\r\nd")
    with tiny_chunks(block=3), path.open("rb") as f:
        blocks = [block for _, block in text_file._line_blocks(f, 0, path.stat().st_size, path)]
    assert b"".join(blocks) == path.read_bytes()
    assert all(block.endswith(b"\n") for block in blocks[:-1]) and len(blocks) > 2


def test_single_file_splits_match_the_in_memory_rule(tmp_path: Path) -> None:
    lines = text_lines(333, seed=1)
    lines[0] = "first line"
    path = write(tmp_path / "book.txt", ("\r\n".join(lines) + "\r\n").encode())
    with tiny_chunks(block=11):
        splits = load_corpus(DataConfig(data=str(path))).splits
        got = {name: source.to_list() for name, source in splits.items()}
    held_out = max(1, int(333 * 0.05))
    n_train = 333 - 2 * held_out
    assert got == {
        "train": lines[:n_train],
        "valid": lines[n_train : n_train + held_out],
        "test": lines[n_train + held_out :],
    }


def test_utf8_error_offset_is_in_the_file_not_the_chunk(tmp_path: Path) -> None:
    raw = b"\xef\xbb\xbf" + b"ok line\n" * 40 + b"caf" + b"\xe9\nmore\n"
    path = write(tmp_path / "bad.txt", raw)
    offset = 3 + 8 * 40 + 3
    with (
        tiny_chunks(block=5),
        pytest.raises(LstmlmError, match=rf"bad\.txt: not UTF-8 text \(byte 0xe9 at offset {offset}\)"),
    ):
        load_corpus(DataConfig(data=str(path)))


def test_a_file_changed_after_loading_is_a_user_error(tmp_path: Path) -> None:
    path = write(tmp_path / "t.txt", b"a\nb\nc\nd\n")
    corpus = load_corpus(DataConfig(data=str(path)))
    path.write_bytes(b"a\nb\nc\nd\ne\n")
    with pytest.raises(LstmlmError, match=r"t\.txt: the file changed"):
        corpus.splits["train"].to_list()


def test_list_source_batches_respect_both_limits() -> None:
    lines = ["a" * 10, "b", "c" * 30, "", "d" * 5, "e"]
    source = ListSource(lines)
    got = list(source.iter_batches(max_lines=2, max_chars=12))
    assert [line for batch in got for line in batch] == lines
    assert all(len(batch) <= 2 and (len(batch) == 1 or sum(map(len, batch)) <= 12) for batch in got)
    head, tail = source.split_at(2)
    assert (head.to_list(), tail.to_list()) == (lines[:2], lines[2:])


# --- datasets ------------------------------------------------------------------


@pytest.fixture(scope="module")
def datasets() -> Any:
    return pytest.importorskip("datasets")


ROWS = ["a b\nc", None, "", "d\r\n", "\n", "e\nf\ng\n", "h", "i\r\nj", "k"]


def expected_rows_lines() -> list[str]:
    return [line for row in ROWS for line in sources.split_lines(row or "")]


def test_dataset_source_reads_rows_as_lines(datasets: Any) -> None:
    dataset = datasets.Dataset.from_dict({"text": ROWS})
    expected = expected_rows_lines()
    with tiny_chunks(rows=2, lines=2):
        source = DatasetSource.open(dataset, "text")
        assert len(source) == len(expected)
        assert source.to_list() == expected
        assert source.fingerprint() == split_fingerprint(expected)
        for k in range(len(expected) + 1):
            head, tail = source.split_at(k)
            assert (head.to_list(), tail.to_list()) == (expected[:k], expected[k:])
            for j in range(len(tail) + 1):
                middle, end = tail.split_at(j)
                assert (middle.to_list(), end.to_list()) == (expected[k : k + j], expected[k + j :])


def test_saved_dataset_carves_valid_by_lines(tmp_path: Path, datasets: Any) -> None:
    rows = [f"row {i}\nsecond {i}" for i in range(30)]
    datasets.Dataset.from_dict({"text": rows}).save_to_disk(str(tmp_path / "one"))
    with tiny_chunks(rows=4):
        splits = load_corpus(DataConfig(data=str(tmp_path / "one"))).splits
        assert splits["valid"].to_list() == ["second 28", "row 29", "second 29"]  # 5% of 60 lines
        lines = [line for row in rows for line in row.split("\n")]
        assert splits["train"].to_list() == lines[:-3]


# --- encoding: streamed ids equal ids computed at once ---------------------------


@pytest.mark.parametrize("kind", ["word", "char", "bpe"])
def test_streamed_encoding_equals_encoding_at_once(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    lines = {name: text_lines(n, seed) for name, n, seed in (("train", 400, 1), ("valid", 60, 2))}
    for name, split in lines.items():
        (folder / f"{name}.txt").write_bytes(("\r\n".join(split) + "\r\n").encode("utf-8"))
    vocab = 300 if kind == "bpe" else 0
    at_once = train_tokenizer(kind, lines["train"], vocab_size=vocab)
    with tiny_chunks(block=64, lines=7, chars=60):
        splits = load_corpus(DataConfig(data=str(folder))).splits
        streamed = train_tokenizer(kind, splits["train"], vocab_size=vocab)
        assert streamed.to_json() == at_once.to_json()
        encode_lines = spy(streamed)
        for name, split in lines.items():
            encoded = encode_split(splits[name], streamed, cache_dir=tmp_path / "cache")
            in_memory = encode_split(split, at_once, cache_dir=None)
            assert isinstance(encoded.ids, np.memmap)
            assert encoded.ids.tolist() == at_once.encode_lines(split).tolist() == in_memory.ids.tolist()
            assert (encoded.num_chars, encoded.num_bytes) == (in_memory.num_chars, in_memory.num_bytes)
    assert encode_lines.call_count > 20  # really many chunks
    for call in encode_lines.call_args_list:
        assert len(call.args[0]) <= 7


def test_cache_is_reused_across_sources_without_running_the_tokenizer(tmp_path: Path) -> None:
    lines = text_lines(50, seed=3)
    path = write(tmp_path / "train.txt", ("\n".join(lines)).encode())
    tok = train_tokenizer("word", lines)
    encode_lines = spy(tok)
    with tiny_chunks(block=32):
        first = encode_split(whole_file(path), tok, cache_dir=tmp_path / "cache")
        calls = encode_lines.call_count
        assert calls > 1
        again = encode_split(whole_file(path), tok, cache_dir=tmp_path / "cache")
        from_list = encode_split(lines, tok, cache_dir=tmp_path / "cache")  # same content, same key
    assert encode_lines.call_count == calls
    assert isinstance(again.ids, np.memmap) and again.ids.dtype == np.uint16
    assert again.ids.tolist() == first.ids.tolist() == from_list.ids.tolist()
    assert len(list((tmp_path / "cache").glob("*.bin"))) == 1


def test_progress_reaches_the_total(tmp_path: Path) -> None:
    lines = text_lines(200, seed=4)
    raw = ("\n".join(lines) + "\n").encode()
    path = write(tmp_path / "book.txt", raw)
    seen: dict[str, list[tuple[int, int | None]]] = {"read": [], "train": [], "encode": []}
    with tiny_chunks(block=100, lines=16, chars=1000):
        corpus = load_corpus(DataConfig(data=str(path)), on_progress=lambda d, t: seen["read"].append((d, t)))
        train = corpus.splits["train"]
        tok = train_tokenizer("word", train, on_progress=lambda d, t: seen["train"].append((d, t)))
        encode_split(train, tok, cache_dir=tmp_path, on_progress=lambda d, t: seen["encode"].append((d, t)))
    assert seen["read"][-1] == (len(raw), len(raw))
    assert seen["train"][-1] == seen["encode"][-1] == (len(train), len(train))
    for events in seen.values():
        done = [d for d, _ in events]
        assert len(done) > 2 and done == sorted(done)


def test_runs_report_each_data_stage(tiny_corpus: Path, tmp_path: Path) -> None:
    from lstmlm.runs.load import run_split
    from lstmlm.training.launch import start_training

    stages: dict[str, tuple[int, int | None]] = {}

    def record(stage: str, done: int, total: int | None) -> None:
        stages[stage] = (done, total)

    config = tiny_config(tiny_corpus, max_steps=2, eval_every=2)
    start_training(tmp_path / "run", config, resume=False, overwrite=False, on_data=record)
    assert list(stages) == ["read", "tokenizer", "encode train", "encode valid", "encode test"]
    assert stages["encode train"] == (300, 300) and stages["encode test"] == (40, 40)
    stages.clear()
    split = run_split(runs.load_run(tmp_path / "run"), "valid", None, on_data=record)
    assert list(stages) == ["read", "encode valid"] and stages["encode valid"] == (40, 40)
    assert isinstance(split.ids, np.memmap)  # from the cache start_training filled


# --- memory ----------------------------------------------------------------------

MEMORY_PROBE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from lstmlm.config import DataConfig
    from lstmlm.data.corpus import load_corpus
    from lstmlm.data.tokenizer import train_tokenizer
    from lstmlm.data.tokens import encode_split

    def status(field):  # VmHWM is this process's own peak; ru_maxrss may include the parent's
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

    base = status("VmRSS")
    corpus = load_corpus(DataConfig(data=sys.argv[1]))
    tok = train_tokenizer("word", corpus.splits["train"])
    n = sum(len(encode_split(s, tok, cache_dir=Path(sys.argv[2])).ids) for s in corpus.splits.values())
    print(json.dumps({"base": base, "peak": status("VmHWM"), "tokens": n}))
    """
)


def write_zipf_text(path: Path, size: int, *, seed: int = 0) -> None:
    """About ``size`` bytes of 20-word lines drawn from a Zipf-like 50k-word vocabulary, written in chunks."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = np.array(["".join(rng.choice(letters, rng.integers(2, 10))) for _ in range(50_000)], dtype=object)
    weights = 1.0 / (np.arange(len(vocab)) + 2.7)
    weights /= weights.sum()
    written = 0
    with path.open("w", encoding="utf-8", newline="\n") as f:
        while written < size:
            words = vocab[rng.choice(len(vocab), size=(5000, 20), p=weights)]
            chunk = "".join(" ".join(row) + "\n" for row in words)
            f.write(chunk)
            written += len(chunk)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_encoding_a_30mb_file_keeps_memory_flat(tmp_path: Path) -> None:
    """Reading, tokenizer training and encoding stream: holding the split in memory grows RSS by ~140 MiB."""
    size = 30 * 2**20
    path = tmp_path / "big.txt"
    write_zipf_text(path, size)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAYON_NUM_THREADS": "2"}
    probe = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(path), str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    growth = result["peak"] - result["base"]
    assert result["tokens"] > 5_000_000
    assert growth < 100 * 2**20, f"RSS grew by {growth / 2**20:.0f} MiB while encoding a 30 MiB file"


def test_an_unchanged_file_is_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_file, "MEMO_MIN_BYTES", 0)  # a large corpus, in effect
    path = tmp_path / "corpus.txt"
    path.write_text("a b\n\nc d e\n", encoding="utf-8")
    first, text_lines = text_file.scan_text_file(path, count_text=3, fingerprint=True)
    reads = []
    real = text_file._line_blocks
    monkeypatch.setattr(text_file, "_line_blocks", lambda *a, **k: reads.append(1) or real(*a, **k))
    again, again_text = text_file.scan_text_file(path, count_text=3, fingerprint=True)
    assert not reads  # remembered: size, mtime and inode are unchanged
    assert (len(again), again.fingerprint(), again_text) == (len(first), first.fingerprint(), text_lines)
    assert again.to_list() == first.to_list() == ["a b", "", "c d e"]

    path.write_text("a b\n\nc d e\nf\n", encoding="utf-8")  # changed: read again
    changed, _ = text_file.scan_text_file(path, fingerprint=True)
    assert reads and len(changed) == 4 and changed.fingerprint() != first.fingerprint()
