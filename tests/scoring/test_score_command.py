"""``lstmlm score``: per-token and per-word log-probabilities of sentences, as JSON or a table;
where the text came from (stdin too); words grouped as before, in time linear in the line."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
import torch

from lstmlm.config import ModelConfig
from lstmlm.data.tokenizer import Tokenizer, train_tokenizer
from lstmlm.model.lm import LanguageModel
from lstmlm.runs import folder as run_folder
from lstmlm.scoring.surprisal import WINDOW, WordScore, bits, score_lines
from tests.conftest import SENTENCES, invoke, one_line_error, tiny_lines


def test_score_command_json_and_table(trained_run: Path, tmp_path: Path) -> None:
    result = invoke("score", str(trained_run), "--text", SENTENCES[0], "--text", SENTENCES[1], "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in rows] == SENTENCES[:2]
    for row in rows:
        assert set(row) == {"text", "logprob", "surprisal_bits", "tokens", "words", "source", "line"} | {
            "direction"
        }
        assert set(row["words"][0]) == {"word", "logprob", "surprisal_bits", "tokens"}
        assert set(row["tokens"][0]) == {"token", "logprob", "surprisal_bits"}
        assert row["surprisal_bits"] == pytest.approx(sum(t["surprisal_bits"] for t in row["tokens"]))
    stimuli = tmp_path / "stimuli.txt"
    stimuli.write_text("\n".join(SENTENCES) + "\n\n", encoding="utf-8")
    carried = invoke("score", str(trained_run), "--file", str(stimuli), "--context", "--json")
    lines = [json.loads(line) for line in carried.stdout.splitlines()]
    assert len(lines) == 3 and lines[1]["logprob"] != rows[1]["logprob"]
    table = invoke("score", str(trained_run), "--text", "the cat sees the zebra .")
    assert table.exit_code == 0 and "zebra" in table.stdout and "log P =" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "--text SENTENCE or --file FILE"),
        (("--text", "a", "--file", "x"), "--text SENTENCE or --file FILE"),
        (("--text", "   "), "nothing to score"),
        (("--file", "/no/such/file.txt"), "not found"),
    ],
)
def test_score_bad_input_is_one_line(trained_run: Path, args: tuple[str, ...], message: str) -> None:
    result = invoke("score", str(trained_run), *args)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


# ---------------------------------------------------------------- what was scored: stdin, source, line


def test_score_reads_stdin_and_says_where_each_line_came_from(trained_run: Path, tmp_path: Path) -> None:
    text = f"{SENTENCES[0]}\n\n{SENTENCES[1]}\n"
    piped = invoke("score", str(trained_run), "--file", "-", "--json", input=text)
    assert piped.exit_code == 0, piped.output
    rows = [json.loads(line) for line in piped.stdout.splitlines()]
    assert [(r["text"], r["source"], r["line"]) for r in rows] == [
        (SENTENCES[0], "stdin", 1),
        (SENTENCES[1], "stdin", 3),
    ]
    given = invoke("score", str(trained_run), "--text", SENTENCES[0], "--text", SENTENCES[1], "--json")
    assert [json.loads(line)["logprob"] for line in given.stdout.splitlines()] == [r["logprob"] for r in rows]
    assert {json.loads(line)["source"] for line in given.stdout.splitlines()} == {"text"}
    stimuli = tmp_path / "stimuli.txt"
    stimuli.write_text(text, encoding="utf-8")
    from_file = invoke("score", str(trained_run), "--file", str(stimuli), "--json")
    assert [
        (json.loads(line)["source"], json.loads(line)["line"]) for line in from_file.stdout.splitlines()
    ] == [
        (str(stimuli), 1),
        (str(stimuli), 3),
    ]
    table = invoke("score", str(trained_run), "--file", "-", "--context", input=text)
    tokens = sum(len(r["tokens"]) for r in rows)
    assert f"scored: all of stdin, 2 lines (one text, the state carried), {tokens} tokens" in table.stdout


def test_score_stdin_that_is_not_utf8_is_one_line(trained_run: Path) -> None:
    result = invoke("score", str(trained_run), "--file", "-", input=b"the cat\nthe \xe9 dog\n")  # type: ignore[arg-type]
    one_line_error(result, "stdin: not UTF-8 text (byte 0xe9 at offset 12)")
    one_line_error(invoke("score", str(trained_run), "--file", "-", input="\n \n"), "nothing to score")


# ---------------------------------------------------------------- words: as before, in linear time


def old_words(tokenizer: Tokenizer, line: str, ids: list[int], tokens: tuple) -> tuple[WordScore, ...]:
    """The grouping before it was made linear (the reference): every word's prefix re-encoded."""
    words = line.split()
    grouped: list[WordScore] = []
    first_word = first_token = 0
    for end in range(1, len(words) + 1):
        through = tokenizer.encode(" ".join(words[:end])) if end < len(words) else ids
        if ids[: len(through)] != through:
            continue
        group = tokens[first_token : len(through)]
        logprob = sum(t.logprob for t in group)
        grouped.append(WordScore(" ".join(words[first_word:end]), logprob, bits(logprob), group))
        first_word, first_token = end, len(through)
    return tuple(grouped)


def untrained(tokenizer: Tokenizer) -> LanguageModel:
    torch.manual_seed(0)
    return LanguageModel(ModelConfig(ntoken=tokenizer.vocab_size, emsize=8, nhid=8, nlayers=1)).eval()


@pytest.fixture(scope="module")
def tokenizers(trained_run: Path) -> dict[str, Tokenizer]:
    """The shared run's word tokenizer, and char and BPE ones trained on the same kind of text."""
    text = [*tiny_lines(300, 1), "naïve café, über-cool: 3.14 is pi!", "emoji 🙂 and <eos> in text"]
    return {
        "word": Tokenizer.load(trained_run / run_folder.TOKENIZER),
        "char": train_tokenizer("char", text),
        "bpe": train_tokenizer("bpe", text, vocab_size=300),
    }


SINGLE_SPACED = [
    "the cat sees the dog .",
    "the zebra chases the bird .",
    "dog",
    "x y z",
    "naïve café, über-cool: 3.14 is pi!",
    "the dog. the cat,sees the frog",
    "emoji 🙂 and <eos> in text 🙂🙂",
    "ünïcödé wörds nöt sëën",
]
WORD_ONLY = ["the  cat\tsees   the dog .", "the\u00a0cat sees"]  # whitespace is not a token of the word kind


@pytest.mark.parametrize("kind", ["word", "char", "bpe"])
def test_words_are_grouped_as_before(tokenizers: dict[str, Tokenizer], kind: str) -> None:
    tokenizer = tokenizers[kind]
    lines = SINGLE_SPACED + (WORD_ONLY if kind == "word" else [])
    for context in (False, True):
        for line, score in zip(
            lines, score_lines(untrained(tokenizer), tokenizer, lines, context=context), strict=True
        ):
            ids = tokenizer.encode(line)
            assert score.words == old_words(tokenizer, line, ids, score.tokens), (kind, line)


class Merging:
    """A tokenizer that reads "the dog" as one token: that word boundary is not a token boundary."""

    def __init__(self, inner: Tokenizer) -> None:
        self.inner = inner

    def encode(self, text: str) -> list[int]:
        return self.inner.encode(text.replace("the dog", "dog"))

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_words_across_a_boundary_that_is_no_token_boundary_are_one(tokenizers: dict[str, Tokenizer]) -> None:
    tokenizer = Merging(tokenizers["word"])
    line = "the cat sees the dog . the dog sees the cat ."
    [score] = score_lines(untrained(tokenizers["word"]), tokenizer, [line])  # type: ignore[arg-type]
    shown = [w.word for w in score.words]
    assert shown == ["the", "cat", "sees", "the dog", ".", "the dog", "sees", "the", "cat", "."]
    assert score.words == old_words(tokenizer, line, tokenizer.encode(line), score.tokens)  # type: ignore[arg-type]


def test_runs_of_whitespace_no_longer_merge_words(tokenizers: dict[str, Tokenizer]) -> None:
    """The old grouping re-joined words with one space, so after a double space (char, bpe) no
    prefix matched and the rest of the line became one word; each word is now read with the
    whitespace the line has before it."""
    for kind in ("char", "bpe"):
        tokenizer = tokenizers[kind]
        line = "the  cat sees\tthe dog"
        [score] = score_lines(untrained(tokenizer), tokenizer, [line])
        assert [w.word for w in score.words] == line.split(), kind
        before = old_words(tokenizer, line, tokenizer.encode(line), score.tokens)
        assert [w.word for w in before] == ["the", "cat sees the dog"], kind
        assert sum(len(w.tokens) for w in score.words) == len(score.tokens) - 1  # every token but <eos>


class Counting:
    """Counts what ``encode`` is given."""

    def __init__(self, inner: Tokenizer) -> None:
        self.inner, self.calls, self.chars = inner, 0, 0

    def encode(self, text: str) -> list[int]:
        self.calls, self.chars = self.calls + 1, self.chars + len(text)
        return self.inner.encode(text)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


@pytest.mark.parametrize("context", [False, True])
def test_scoring_a_long_line_encodes_it_in_linear_time(
    tokenizers: dict[str, Tokenizer], context: bool
) -> None:
    """Work by count, not by clock: a line of n words is encoded once whole and once word by
    word (the old grouping encoded every prefix: ~n² / 2 words)."""
    words = 3_000
    line = " ".join(tiny_lines(words // 6 + 1, seed=5)).split()[:words]
    text = " ".join(line)
    tokenizer = Counting(tokenizers["word"])
    [score] = score_lines(untrained(tokenizers["word"]), tokenizer, [text], context=context)  # type: ignore[arg-type]
    assert len(score.words) == words
    assert tokenizer.calls <= words + 1
    assert tokenizer.chars <= 2 * len(text)


def test_a_line_longer_than_a_window_is_scored_fresh_window_by_window(
    tokenizers: dict[str, Tokenizer],
) -> None:
    """No forward call reads more than WINDOW positions, and the log-probs are those of one pass
    from the zero state; short lines beside it are still batched."""
    tokenizer = tokenizers["word"]
    model = untrained(tokenizer)
    long = " ".join(tiny_lines(100, seed=6))  # 600 words
    lines = [SENTENCES[0], long, SENTENCES[1]]
    seen: list[int] = []
    hook = model.encoder.register_forward_hook(lambda module, args, out: seen.append(args[0].size(0)))
    try:
        scores = score_lines(model, tokenizer, lines)
    finally:
        hook.remove()
    assert max(seen) <= WINDOW
    eos = tokenizer.eos_id
    for line, score in zip(lines, scores, strict=True):
        ids = torch.tensor([eos, *tokenizer.encode(line), eos]).unsqueeze(1)
        with torch.no_grad():
            logits, _ = model(ids[:-1], model.init_state(1))
        reference = torch.log_softmax(logits[:, 0].double(), -1).gather(1, ids[1:]).flatten().tolist()
        assert [t.logprob for t in score.tokens] == pytest.approx(reference, abs=1e-5)


def test_score_reads_a_named_pipe_and_an_idle_one_is_one_line(trained_run: Path, tmp_path: Path) -> None:
    """``--file <(cmd)`` is a pipe with a writer: read it all; a FIFO nobody writes to reads as
    empty at once (a one-line "nothing to score"), never a wait without end."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    idle = invoke("score", str(trained_run), "--file", str(fifo))
    assert idle.exit_code == 1 and "nothing to score" in idle.stderr

    def write() -> None:
        with open(fifo, "w", encoding="utf-8") as pipe:
            pipe.write("the cat sees the dog\n")

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(0.5)  # the writer is waiting in open() first, as a shell's <(cmd) is
    fed = invoke("score", str(trained_run), "--file", str(fifo), "--json")
    writer.join(timeout=10)
    assert fed.exit_code == 0, fed.output + fed.stderr
    assert json.loads(fed.stdout.splitlines()[0])["text"] == "the cat sees the dog"
