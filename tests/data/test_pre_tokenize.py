"""``--pre-tokenize``: raw English and its WikiText form become the same words, everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lstmlm.data.tokenizer import Tokenizer, train_tokenizer
from tests.conftest import invoke

# (raw English, its WikiText-2 form)
WIKITEXT_CASES = [
    ("Paula references Robert.", "Paula references Robert ."),
    ("I don't know.", "I don 't know ."),
    ("They're here; we've gone (mostly).", "They 're here ; we 've gone ( mostly ) ."),
    ("The well-known author's 1,000 books cost 2.5 dollars.",
     "The well @-@ known author 's 1 @,@ 000 books cost 2 @.@ 5 dollars ."),
    ("Mr. Smith went to the U.S. in 1990.", "Mr. Smith went to the U.S. in 1990 ."),
    ('He said, "Yes!" at 9 a.m., e.g. then...', 'He said , " Yes ! " at 9 a.m. , e.g. then ...'),
    ("<unk> met J. Doe's <unk>.", "<unk> met J. Doe 's <unk> ."),
]  # fmt: skip


def words(tokenizer: Tokenizer, text: str) -> list[str]:
    return [tokenizer.token(i) for i in tokenizer.encode(text)]


def test_wikitext_maps_raw_english_to_the_wikitext_form() -> None:
    tokenizer = train_tokenizer("word", [wiki for _, wiki in WIKITEXT_CASES], pre_tokenize="wikitext")
    for raw, wiki in WIKITEXT_CASES:
        assert words(tokenizer, raw) == wiki.split(), raw
        assert tokenizer.encode(raw) == tokenizer.encode(wiki), raw  # already WikiText: unchanged
        assert tokenizer.unk_id not in tokenizer.encode(raw.replace("<unk>", "")), raw


def test_punct_splits_every_mark_and_whitespace_none() -> None:
    text = "Robert's dog, <unk>, barked."
    punct = train_tokenizer("word", [text], pre_tokenize="punct")
    assert words(punct, text) == ["Robert", "'", "s", "dog", ",", "<unk>", ",", "barked", "."]
    plain = train_tokenizer("word", [text])
    assert words(plain, text) == text.split()


@pytest.mark.parametrize("choice", ["whitespace", "punct", "wikitext"])
def test_the_choice_is_stored_in_tokenizer_json(choice: str, tmp_path: Path) -> None:
    tokenizer = train_tokenizer("word", ["a b."], pre_tokenize=choice)
    tokenizer.save(tmp_path / "tokenizer.json")
    again = Tokenizer.load(tmp_path / "tokenizer.json")
    assert (again.kind, again.pre_tokenize) == ("word", choice)
    assert again.encode("a b.") == tokenizer.encode("a b.")


def test_a_tokenizer_saved_before_the_choice_reads_as_whitespace() -> None:
    old = (  # the shape of a round-one word tokenizer.json: no normalizer, WhitespaceSplit
        '{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,'
        '"pre_tokenizer":{"type":"WhitespaceSplit"},"post_processor":null,"decoder":null,'
        '"model":{"type":"WordLevel","vocab":{"<unk>":0,"<eos>":1,"a":2},"unk_token":"<unk>"}}'
    )
    tokenizer = Tokenizer.from_json(old)
    assert (tokenizer.kind, tokenizer.pre_tokenize) == ("word", "whitespace")
    assert tokenizer.encode("a a.") == [2, 0]


def wikitext_corpus(folder: Path) -> Path:
    folder.mkdir()
    lines = [
        f"The {noun} 's {thing} {verb}n 't {adjective} ."
        for noun in ("dog", "cat", "boy", "girl")
        for thing in ("toy", "ball")
        for verb in ("is", "was")  # WikiText: "isn 't"
        for adjective in ("red", "well @-@ known", "1 @,@ 000 years old")
    ]
    for name in ("train", "valid", "test"):
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def write_suite(path: Path, pairs: list[tuple[str, str]]) -> Path:
    records = [{"sentence_good": good, "sentence_bad": bad, "construction": "c"} for good, bad in pairs]
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def test_a_raw_suite_scores_as_its_wikitext_copy(tmp_path: Path) -> None:
    corpus, out = wikitext_corpus(tmp_path / "corpus"), tmp_path / "run"
    flags = ["--emsize", "8", "--nhid", "8", "--nlayers", "1", "--max-steps", "10", "--bptt", "8"]
    trained = invoke("train", "--data", str(corpus), "--out", str(out), "--pre-tokenize", "wikitext", *flags)
    assert trained.exit_code == 0, trained.stderr
    pairs = [
        ("The dog's toy isn't red.", "The dog's toy red isn't."),
        ("The cat's ball wasn't well-known.", "The cat's wasn't ball well-known."),
    ]
    tokenizer = Tokenizer.load(out / "tokenizer.json")
    as_wikitext = [(" ".join(words(tokenizer, g)), " ".join(words(tokenizer, b))) for g, b in pairs]
    raw, wiki = write_suite(tmp_path / "raw.jsonl", pairs), write_suite(tmp_path / "wiki.jsonl", as_wikitext)
    assert "dog 's toy isn 't red ." in wiki.read_text()
    per_pair = []
    for path in (raw, wiki):
        written = path.with_suffix(".scores.jsonl")
        args = ["agreement", str(out), "--by", "construction", "--suite", str(path), "--pairs", str(written)]
        assert invoke(*args).exit_code == 0
        per_pair.append([json.loads(line) for line in written.read_text().splitlines()])
    for from_raw, from_wiki in zip(*per_pair, strict=True):
        assert from_raw["good_logprob"] == from_wiki["good_logprob"]  # the same ids, the same model
        assert from_raw["bad_logprob"] == from_wiki["bad_logprob"]
        assert from_raw["unk_tokens"] == 0  # every raw word was cut into words the run knows
    assert per_pair[0][0]["sentence_good"] == pairs[0][0] and per_pair[0][0]["construction"] == "c"
    missing = invoke("agreement", str(out), "--suite", str(raw), "--pairs", "/nowhere/x.jsonl")
    assert missing.exit_code == 1 and "--pairs: folder not found" in missing.stderr


def test_a_saved_hugging_face_dataset_is_a_suite(tmp_path: Path) -> None:
    """The BLiMP layout (sentence_good, sentence_bad, more columns) from a save_to_disk folder."""
    datasets = pytest.importorskip("datasets")
    corpus, out = wikitext_corpus(tmp_path / "corpus"), tmp_path / "run"
    flags = ["--emsize", "8", "--nhid", "8", "--nlayers", "1", "--max-steps", "5", "--bptt", "8"]
    assert invoke("train", "--data", str(corpus), "--out", str(out), *flags).exit_code == 0
    rows = {
        "sentence_good": ["The dog 's toy is red .", "The cat 's ball was red ."],
        "sentence_bad": ["The dog 's toy red is .", "The cat 's was ball red ."],
        "UID": ["order", "order"],
        "pair_id": [0, 1],
    }
    folder, jsonl = tmp_path / "blimp", tmp_path / "blimp.jsonl"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows)}).save_to_disk(str(folder))
    records = [dict(zip(rows, values, strict=True)) for values in zip(*rows.values(), strict=True)]
    jsonl.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    results = []
    for suite in (folder, jsonl):
        result = invoke("agreement", str(out), "--suite", str(suite), "--by", "UID", "--json")
        assert result.exit_code == 0, result.stderr
        results.append(json.loads(result.stdout))
    assert results[0]["overall"] == results[1]["overall"] and results[0]["overall"]["count"] == 2
    assert results[0]["groups"][0]["UID"] == "order"
    datasets.Dataset.from_dict({"good": ["a"], "bad": ["b"]}).save_to_disk(str(tmp_path / "other"))
    wrong = invoke("agreement", str(out), "--suite", str(tmp_path / "other"))
    assert wrong.exit_code == 1 and "no column sentence_bad, sentence_good" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
