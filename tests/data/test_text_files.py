"""Every corpus shape: folders of any text files, patterns, several --data, --valid/--test-data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lstmlm.config import DataConfig
from lstmlm.data.corpus import Corpus, load_corpus
from lstmlm.data.sources import ListSource
from lstmlm.data.text_file import FileSource
from lstmlm.data.text_files import ConcatSource, name_order
from lstmlm.errors import LstmlmError
from tests.conftest import invoke, one_line_error


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def numbered(start: int, stop: int) -> str:
    return "".join(f"line {i}\n" for i in range(start, stop))


def load(data: Any, **options: Any) -> Corpus:
    return load_corpus(DataConfig(data=data, **options))


def lines_of(corpus: Corpus) -> dict[str, list[str]]:
    return {name: source.to_list() for name, source in corpus.splits.items()}


def shards(folder: Path, names: list[str], per_file: int = 20) -> Path:
    """``names`` in ``folder``, holding lines 0.. in the order of ``names``."""
    for i, name in enumerate(names):
        write(folder / name, numbered(i * per_file, (i + 1) * per_file))
    return folder


# ---------------------------------------------------------------- folders of any files


def test_shard_folder_is_its_files_in_name_order_split_like_one_file(tmp_path: Path) -> None:
    folder = shards(tmp_path / "shards", ["part-2.txt", "part-10.txt", "part-100.txt"])  # lines 0-59
    whole = write(tmp_path / "whole.txt", numbered(0, 60))
    corpus, single = load(str(folder)), load(str(whole))
    assert lines_of(corpus) == lines_of(single)
    assert [len(corpus.splits[s]) for s in ("train", "valid", "test")] == [54, 3, 3]
    for split in ("train", "valid", "test"):
        assert corpus.splits[split].fingerprint() == single.splits[split].fingerprint()
    assert "folder, 3 files in name order: lines split 90/5/5 into train/valid/test" in corpus.name


def test_numbers_in_names_sort_by_value() -> None:
    names = ["part-10.txt", "part-2.txt", "part-1.txt", "a.txt"]
    assert sorted(names, key=name_order) == ["a.txt", "part-1.txt", "part-2.txt", "part-10.txt"]


def test_shards_are_read_lazily_not_into_memory(tmp_path: Path) -> None:
    corpus = load(str(shards(tmp_path / "s", [f"x{i}.txt" for i in range(5)])))
    train = corpus.splits["train"]
    assert isinstance(train, ConcatSource)
    assert all(isinstance(part, FileSource) for part in train.parts)


def test_folder_holding_only_input_txt_is_split_like_that_file(tmp_path: Path) -> None:
    write(tmp_path / "tiny" / "input.txt", numbered(0, 100))
    corpus = load(str(tmp_path / "tiny"))
    assert [len(corpus.splits[s]) for s in ("train", "valid", "test")] == [90, 5, 5]
    assert "folder holding input.txt: lines split 90/5/5" in corpus.name


def test_hidden_and_empty_files_and_subfolders_are_left_out(tmp_path: Path) -> None:
    folder = shards(tmp_path / "s", ["a.txt", "b.txt"])
    write(folder / ".DS_Store", b"\x00\xff binary")
    write(folder / "empty.txt", "")
    write(folder / "sub" / "c.txt", "not read\n")
    assert sum(len(s) for s in load(str(folder)).splits.values()) == 40


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda f: f.mkdir(), r"the folder is empty"),
        (lambda f: write(f / "sub" / "a.txt", "x\n"), r"only subfolders; .*\*\*/\*\.txt"),
        (lambda f: (write(f / "a.txt", ""), write(f / "b.txt", "")), r"all empty"),
        (
            lambda f: write(f / "a.bin", b"ok\n\xff\xfe\x00\x01"),
            r"a\.bin: not UTF-8 text \(byte 0xff at offset 3\)",
        ),
        (lambda f: write(f / "valid.txt", "x\n"), r"no training text.*has valid\.txt but none of train\.txt"),
    ],
    ids=["empty", "only-subfolders", "empty-files", "binary", "valid-without-train"],
)
def test_a_folder_without_usable_text_is_one_line(tmp_path: Path, make: Any, message: str) -> None:
    make(tmp_path / "f")
    with pytest.raises(LstmlmError, match=message) as caught:
        load(str(tmp_path / "f"))
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------- patterns


def test_pattern_is_expanded_and_sorted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shards(tmp_path / "s", ["p-3.txt", "p-20.txt", "p-100.txt"])
    write(tmp_path / "s" / "notes.md", "left out\n")
    monkeypatch.chdir(tmp_path)
    corpus = load("s/p-*.txt")
    assert lines_of(corpus)["train"][0] == "line 0" and lines_of(corpus)["test"][-1] == "line 59"
    assert corpus.name.startswith("s/p-*.txt (pattern, 3 files in name order")


def test_recursive_pattern(tmp_path: Path) -> None:
    shards(tmp_path / "c" / "a", ["1.txt"])
    write(tmp_path / "c" / "b" / "2.txt", numbered(20, 40))
    assert len(load(f"{tmp_path}/c/**/*.txt").splits["train"]) == 36


def test_pattern_matching_nothing_or_a_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(LstmlmError, match=r"--data .*nothing-\*\.txt: no file matches this pattern"):
        load(f"{tmp_path}/nothing-*.txt")
    shards(tmp_path / "d" / "sub", ["a.txt"])
    write(tmp_path / "d" / "b.txt", "x\n")
    with pytest.raises(LstmlmError, match=r"matches the folder .*sub; a pattern must match text files only"):
        load(f"{tmp_path}/d/*")


# ---------------------------------------------------------------- several --data


def test_several_sources_are_all_read_in_the_order_given(tmp_path: Path) -> None:
    second = write(tmp_path / "b.txt", numbered(0, 30))
    first = shards(tmp_path / "z-folder", ["1.txt"], per_file=30)
    write(first / "1.txt", numbered(30, 60))
    corpus = load([str(second), str(first)])
    every = sum(lines_of(corpus).values(), [])
    assert every == [f"line {i}" for i in range(60)]
    assert "2 sources, 2 files in the order given" in corpus.name


def test_several_sources_one_missing_or_with_own_splits_is_one_line(tmp_path: Path) -> None:
    good = write(tmp_path / "a.txt", numbered(0, 30))
    with pytest.raises(LstmlmError, match=r"^--data .*missing\.txt: no such file or folder$"):
        load([str(good), str(tmp_path / "missing.txt")])
    write(tmp_path / "ptb" / "train.txt", "x\n")
    with pytest.raises(LstmlmError, match=r"holds its own splits"):
        load([str(good), str(tmp_path / "ptb")])


def test_one_item_list_is_that_source() -> None:
    assert DataConfig(data=["corpus.txt"]).data == "corpus.txt"
    assert DataConfig(data=["a", "b"]).data == ["a", "b"]
    with pytest.raises(LstmlmError, match="empty list"):
        DataConfig(data=[])


# ---------------------------------------------------------------- --valid-data, --test-data


def test_valid_data_replaces_the_set_aside_valid(tmp_path: Path) -> None:
    text = write(tmp_path / "book.txt", numbered(0, 100))
    dev = write(tmp_path / "dev.txt", "dev 1\ndev 2\n")
    corpus = load(str(text), valid_data=str(dev))
    assert lines_of(corpus)["valid"] == ["dev 1", "dev 2"]
    assert [len(corpus.splits[s]) for s in ("train", "test")] == [95, 5]
    assert f"lines split 95/5 into train/test); valid = {dev}" in corpus.name
    both = load(str(text), valid_data=str(dev), test_data=str(dev))
    assert len(both.splits["train"]) == 100 and "all lines train" in both.name


def test_valid_and_test_data_replace_a_folders_files(tmp_path: Path) -> None:
    for split in ("train", "valid", "test"):
        write(tmp_path / "ptb" / f"{split}.txt", f"{split} text\n")
    held = shards(tmp_path / "held", ["a.txt", "b.txt"], per_file=2)
    corpus = load(str(tmp_path / "ptb"), test_data=str(held))
    assert lines_of(corpus) == {
        "train": ["train text"],
        "valid": ["valid text"],
        "test": ["line 0", "line 1", "line 2", "line 3"],
    }


def test_bad_valid_data_is_one_line(tmp_path: Path) -> None:
    text = write(tmp_path / "book.txt", numbered(0, 100))
    with pytest.raises(LstmlmError, match=r"^--valid-data .*nope\.txt: no such file or folder$"):
        load(str(text), valid_data=str(tmp_path / "nope.txt"))
    with pytest.raises(LstmlmError, match=r"^--test-data .*: no file matches this pattern$"):
        load(str(text), test_data=str(tmp_path / "held-*.txt"))


def test_an_empty_split_source_gives_an_empty_list() -> None:
    source = ConcatSource([ListSource(["a"]), ListSource(["b", "c"])])
    head, tail = source.split_at(3)
    assert head.to_list() == ["a", "b", "c"] and tail.to_list() == []
    head, tail = source.split_at(1)
    assert head.to_list() == ["a"] and tail.to_list() == ["b", "c"]


def test_train_with_data_twice_one_missing_is_one_line_not_the_last_alone(tmp_path: Path) -> None:
    good = write(tmp_path / "good.txt", numbered(0, 300))
    out = tmp_path / "run"
    result = invoke("train", "--data", str(tmp_path / "missing.txt"), "--data", str(good), "--out", str(out))
    one_line_error(result, f"--data {tmp_path / 'missing.txt'}: no such file or folder")
    assert not out.exists()
