"""Resolving --data: default corpus, folders, single files, saved and hub datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lstmlm.config import DataConfig
from lstmlm.data import corpus as corpus_module
from lstmlm.data.corpus import load_corpus, split_fingerprint
from lstmlm.errors import LstmlmError


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def load(data: Path | str, **options: Any) -> corpus_module.Corpus:
    return load_corpus(DataConfig(data=str(data), **options))


def lines_of(corpus: corpus_module.Corpus) -> dict[str, list[str]]:
    """The splits read into memory (a corpus holds them as lazily read sources)."""
    return {name: source.to_list() for name, source in corpus.splits.items()}


def numbered(n: int) -> str:
    return "".join(f"line {i}\n" for i in range(n))


def test_single_file_is_split_90_5_5_by_lines(tmp_path: Path) -> None:
    corpus = load(write(tmp_path / "book.txt", numbered(100)))
    splits = lines_of(corpus)
    assert [len(corpus.splits[s]) for s in ("train", "valid", "test")] == [90, 5, 5]
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [90, 5, 5]
    assert splits["train"][-1] == "line 89" and splits["valid"][0] == "line 90"
    assert splits["test"] == [f"line {i}" for i in range(95, 100)]
    assert "90/5/5" in corpus.name and "book.txt" in corpus.name


def test_small_file_gives_each_split_at_least_one_line(tmp_path: Path) -> None:
    splits = lines_of(load(write(tmp_path / "three.txt", "a\nb\nc")))
    assert splits == {"train": ["a"], "valid": ["b"], "test": ["c"]}


def test_file_with_fewer_than_three_lines_asks_for_more(tmp_path: Path) -> None:
    path = write(tmp_path / "short.txt", "one\n\n  \ntwo\n")
    with pytest.raises(LstmlmError, match=r"short\.txt: 2 non-empty line\(s\).*at least 3"):
        load(path)


def test_folder_with_plain_names(tmp_path: Path) -> None:
    for split in ("train", "valid", "test"):
        write(tmp_path / "d" / f"{split}.txt", f"{split} text\n\n")
    corpus = load(tmp_path / "d")
    assert lines_of(corpus) == {
        "train": ["train text", ""],
        "valid": ["valid text", ""],
        "test": ["test text", ""],
    }
    assert corpus.name == f"{tmp_path / 'd'} (folder)"


@pytest.mark.parametrize(
    "names",
    [
        ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"),
        ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"),
        ("train.txt", "validation.txt", None),
    ],
)
def test_folder_with_ptb_and_wikitext_names(tmp_path: Path, names: tuple[str | None, ...]) -> None:
    for split, name in zip(("train", "valid", "test"), names, strict=True):
        if name:
            write(tmp_path / name, f" {split} <unk> words \n")
    splits = lines_of(load(tmp_path))
    assert splits["train"] == [" train <unk> words "]
    assert splits["valid"] == [" valid <unk> words "]
    assert ("test" in splits) == (names[2] is not None)


def test_folder_without_valid_carves_it_from_train(tmp_path: Path) -> None:
    write(tmp_path / "train.txt", numbered(40))
    corpus = load(tmp_path)
    assert len(corpus.splits["train"]) == 38 and lines_of(corpus)["valid"] == ["line 38", "line 39"]
    assert lines_of(corpus)["train"] == [f"line {i}" for i in range(38)]
    assert "last 5% of train" in corpus.name


def test_folder_without_train_lists_what_it_looked_for(tmp_path: Path) -> None:
    write(tmp_path / "valid.txt", "x\n")
    with pytest.raises(LstmlmError, match=r"no training text.*train\.txt, ptb\.train\.txt"):
        load(tmp_path)


def test_missing_path_is_no_such_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    for missing in ("missing.txt", "data/ptb", "./corpus", str(tmp_path / "nope"), "a/b/c"):
        with pytest.raises(LstmlmError, match="no such file or folder"):
            load(missing)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    for name, content in (("empty.txt", b""), ("bom.txt", b"\xef\xbb\xbf")):
        with pytest.raises(LstmlmError, match=rf"{name}: the file is empty"):
            load(write(tmp_path / name, content))


def test_empty_train_split_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "train.txt", "\n\n   \n")
    write(tmp_path / "valid.txt", "x\n")
    with pytest.raises(LstmlmError, match="train split has no text"):
        load(tmp_path)


def test_non_utf8_reports_byte_and_offset(tmp_path: Path) -> None:
    path = write(tmp_path / "latin1.txt", "café\n".encode("latin-1") * 3)
    with pytest.raises(LstmlmError, match=r"latin1\.txt: not UTF-8 text \(byte 0xe9 at offset 3\)"):
        load(path)


def test_bom_and_crlf_are_handled(tmp_path: Path) -> None:
    path = write(tmp_path / "win.txt", b"\xef\xbb\xbfone\r\ntwo\r\n\r\nthree\r\nfour\r\n")
    splits = lines_of(load(path))
    assert splits["train"] + splits["valid"] + splits["test"] == ["one", "two", "", "three", "four"]


def test_lines_keep_their_spaces_and_inner_carriage_returns(tmp_path: Path) -> None:
    path = write(tmp_path / "t.txt", "  a  \nb\rc\nd\ne\n")
    assert lines_of(load(path))["train"][:2] == ["  a  ", "b\rc"]


def test_fingerprint_is_stable_and_content_sensitive() -> None:
    lines = ["a", "b", ""]
    assert split_fingerprint(lines) == split_fingerprint(list(lines))
    assert len(split_fingerprint(lines)) == 64
    assert split_fingerprint(["a", "b"]) != split_fingerprint(lines)
    assert split_fingerprint(["ab"]) != split_fingerprint(["a", "b"])


# --- datasets -----------------------------------------------------------------


@pytest.fixture(scope="module")
def datasets() -> Any:
    return pytest.importorskip("datasets")


def dataset_dict(datasets: Any, **splits: list[str]) -> Any:
    return datasets.DatasetDict(
        {
            name: datasets.Dataset.from_dict({"text": rows, "n": list(range(len(rows)))})
            for name, rows in splits.items()
        }
    )


def test_saved_dataset_dict(tmp_path: Path, datasets: Any) -> None:
    rows = {"train": ["a b\n", "", "c d\ne f\n"], "validation": ["v\n"], "test": ["t"]}
    dataset_dict(datasets, **rows).save_to_disk(str(tmp_path / "saved"))
    corpus = load(tmp_path / "saved")
    assert lines_of(corpus) == {"train": ["a b", "", "c d", "e f"], "valid": ["v"], "test": ["t"]}
    assert "saved dataset" in corpus.name


def test_saved_single_dataset_carves_valid(tmp_path: Path, datasets: Any) -> None:
    datasets.Dataset.from_dict({"text": [f"row {i}" for i in range(20)]}).save_to_disk(str(tmp_path / "one"))
    corpus = load(tmp_path / "one")
    assert lines_of(corpus)["valid"] == ["row 19"] and len(corpus.splits["train"]) == 19
    assert "test" not in corpus.splits
    assert "last 5% of train" in corpus.name


def test_saved_dataset_wrong_column_lists_columns(tmp_path: Path, datasets: Any) -> None:
    dataset_dict(datasets, train=["x"], validation=["y"]).save_to_disk(str(tmp_path / "s"))
    with pytest.raises(LstmlmError, match=r"no column 'body' \(available columns: text, n\)"):
        load(tmp_path / "s", text_column="body")
    with pytest.raises(LstmlmError, match=r"column 'n' holds .*not text"):
        load(tmp_path / "s", text_column="n")


def test_saved_dataset_missing_train_lists_splits(tmp_path: Path, datasets: Any) -> None:
    dataset_dict(datasets, training=["x"], validation=["y"]).save_to_disk(str(tmp_path / "s"))
    with pytest.raises(LstmlmError, match=r"no split 'train' \(available splits: training, validation\)"):
        load(tmp_path / "s")
    assert lines_of(load(tmp_path / "s", train_split="training"))["train"] == ["x"]


def test_hub_dataset_via_local_text_builder(
    tmp_path: Path, datasets: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = write(tmp_path / "files" / "train.txt", numbered(30))
    real_load = datasets.load_dataset
    seen: list[tuple[str, str | None]] = []

    def fake_hub(name: str, config: str | None = None) -> Any:
        seen.append((name, config))
        return real_load("text", data_files={"train": str(train)}, cache_dir=str(tmp_path / "hf"))

    monkeypatch.setattr(datasets, "load_dataset", fake_hub)
    corpus = load("someone/tiny-corpus", dataset_config="raw")
    assert seen == [("someone/tiny-corpus", "raw")]
    assert lines_of(corpus)["train"][0] == "line 0" and lines_of(corpus)["valid"] == ["line 29"]
    assert "someone/tiny-corpus" in corpus.name and "no split 'validation'" in corpus.name


def test_hub_failure_is_one_clear_line(datasets: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(name: str, config: str | None = None) -> Any:
        raise ConnectionError("Couldn't reach 'wikitext' on the Hub (LocalEntryNotFoundError)\nmore")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(LstmlmError) as caught:
        load("wikitext", dataset_config="wikitext-2-raw-v1")
    message = str(caught.value)
    assert message.startswith("could not load dataset wikitext (wikitext-2-raw-v1) from the Hugging Face hub")
    assert "\n" not in message


# --- default corpus -------------------------------------------------------------


@pytest.fixture
def agreement() -> None:
    module = pytest.importorskip("lstmlm.data.grammar.sentences")
    if not hasattr(module, "default_corpus"):
        pytest.skip("lstmlm.data.grammar.sentences.default_corpus is not written yet")


@pytest.mark.usefixtures("agreement")
def test_default_corpus_loads() -> None:
    corpus = load_corpus(DataConfig())
    assert corpus.name.startswith("default agreement corpus")
    assert all(corpus.splits[s] for s in ("train", "valid", "test"))


@pytest.mark.usefixtures("agreement")
def test_default_corpus_falls_back_to_the_generator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpus_module, "DEFAULT_CORPUS_DIR", tmp_path / "absent")
    corpus = load_corpus(DataConfig())
    assert corpus.name == "default agreement corpus (generated)"
    assert all(corpus.splits[s] for s in ("train", "valid", "test"))
