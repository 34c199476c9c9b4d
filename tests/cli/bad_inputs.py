"""The table of ``test_errors.py``: bad command lines and a piece of the one error line each gives."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import make_untrained_run
from tests.runs.test_folder import hugging_face_folder

THREADS = "a number of threads from 1 to 1024, or auto"


def write_bad_files(tmp: Path, corpus: Path) -> tuple:
    """The broken files and folders the table points at, written under ``tmp``."""
    empty = tmp / "empty.txt"
    empty.write_text("")
    binary = tmp / "binary.txt"
    binary.write_bytes(b"hello \xff\xfe world\n" * 10)
    no_train = tmp / "no_train"
    no_train.mkdir()
    (no_train / "valid.txt").write_text("a b c\n")
    short = tmp / "short"
    short.mkdir()
    for name in ("train", "valid", "test"):
        (short / f"{name}.txt").write_text("one two three\n")
    bad_toml = tmp / "bad.toml"
    bad_toml.write_text("[model\nnhid = ")
    not_a_run = tmp / "not_a_run"
    not_a_run.mkdir()
    lines = {"float_seed": "seed = 1.5", "str_lr": 'lr = "fast"', "bool_epochs": "epochs = true",
             "huge_seed": "seed = 18446744073709551616"}  # fmt: skip
    tomls = {name: tmp / f"{name}.toml" for name in lines}
    for name, line in lines.items():
        tomls[name].write_text(f"[train]\n{line}\n")
    same = tmp / "same.jsonl"  # line 2: one sentence twice (up to spacing)
    pairs = [("a b", "a c"), ("a b", "a  b")]
    same.write_text("".join(json.dumps({"sentence_good": g, "sentence_bad": b}) + "\n" for g, b in pairs))
    vocab_run = make_untrained_run(tmp / "vocab_run", corpus)
    return empty, binary, no_train, short, bad_toml, not_a_run, same, vocab_run, tomls


def bad_inputs(tmp: Path, corpus: Path) -> list[tuple[list[str], str]]:
    empty, binary, no_train, short, bad_toml, not_a_run, same, vocab_run, tomls = write_bad_files(tmp, corpus)
    out = str(tmp / "out")
    hf = hugging_face_folder(tmp / "hf")
    return [
        *[
            (["train", "--data", str(corpus), "--config", str(tomls[name]), "--out", out], expected)
            for name, expected in (
                ("float_seed", "float_seed.toml [train]: seed must be an integer (got 1.5)"),
                ("str_lr", 'str_lr.toml [train]: lr must be a number (got "fast")'),
                ("bool_epochs", "bool_epochs.toml [train]: epochs must be an integer (got true)"),
                ("huge_seed", "--seed must be between 0 and 2**64-1 (got 18446744073709551616)"),
            )
        ],
        (["train", "--data", str(corpus), "--seed", "18446744073709551616", "--out", out], "2**64-1"),
        (["train", "--data", str(corpus), "--seed", "-1", "--out", out], "--seed must be between"),
        (["train", "--data", str(corpus), "--out", str(empty / "run")], "empty.txt/run: Not a directory"),
        (["agreement", str(not_a_run), "--by", "colour"], "colour (the pairs have: UID, agreement"),
        (["agreement", str(not_a_run), "--suite", str(same)], "same.jsonl:2: sentence_good and sentence_bad"),
        (["generate", str(vocab_run), "--agreement"], "vocabulary lacks words of the demo prompts: The, key"),
        (["train", "--data", str(tmp / "missing.txt"), "--out", out], "missing.txt"),
        (["train", "--data", str(empty), "--out", out], "empty"),
        (["train", "--data", str(binary), "--out", out], "UTF-8"),
        (["train", "--data", str(no_train), "--out", out], "train"),
        (["train", "--data", str(short), "--out", out], "too short"),
        (["train", "--data", str(corpus), "--cell", "transformer", "--out", out], "transformer"),
        (["train", "--data", str(corpus), "--emsize", "10", "--nhid", "20", "--out", out], "--tied"),
        (["train", "--data", str(corpus), "--dropout", "1.5", "--out", out], "--dropout"),
        (["train", "--data", str(corpus), "--config", str(bad_toml), "--out", out], "TOML"),
        (
            ["train", "--data", str(corpus), "--cell", "gru", "--forget-bias", "2", "--out", out],
            "forget-bias",
        ),
        (["train", "--out", str(not_a_run), "--resume"], "nothing to resume"),
        (["train", "--data", str(corpus), "--batch-size", "0", "--out", out], "--batch-size"),
        (["eval", str(not_a_run)], "not an lstmlm run"),
        (["eval", str(tmp / "nowhere")], "not found"),
        (["generate", str(not_a_run)], "not an lstmlm run"),
        (["info", str(not_a_run)], "not an lstmlm run"),
        (["view", str(not_a_run)], "not an lstmlm run"),
        (["view", str(vocab_run), "--port", "70000"], "--port"),
        (["view", str(vocab_run), "--text", "a", "--out", str(tmp / "page.pdf")], "an .html file"),
        (["train", "--nope"], "No such option"),
        (["train", "--data", str(corpus), "--epochs", "-1", "--out", out], "--epochs"),
        (["train", "--data", str(corpus), "--optimizer", "lbfgs", "--out", out], "--optimizer"),
        (["train", "--data", str(corpus), "--resume", "--overwrite", "--out", out], "contradict"),
        (["eval", str(not_a_run), "--device", "tpu"], "--device"),
        *[
            ([command, str(vocab_run), *extra, "--threads", threads], f"expected {THREADS}; got '{threads}'")
            for command, extra, threads in (
                ("eval", [], "0"), ("generate", [], "-2"), ("score", ["--text", "a"], "two"),
                ("agreement", [], "1.5"), ("inspect", [], "99999"), ("view", [], "x"),
                ("export", ["--format", "onnx", "--out", str(tmp / "m.onnx")], ""),
            )
        ],  # fmt: skip
        (["train", "--data", str(corpus), "--threads", "0", "--out", out], "--threads: expected a number"),
        (["generate", str(not_a_run), "--top-p", "0"], "--top-p"),
        (["generate", str(not_a_run), "--max-tokens", "0"], "--max-tokens"),
        (["generate", str(not_a_run), "--seed", str(2**70)], "--seed"),
        (["generate", str(not_a_run), "--seed", "-1"], "--seed"),
        (["generate", str(not_a_run), "--temperature", "nan"], "--temperature"),
        (["generate", str(not_a_run), "--top-p", "nan"], "--top-p"),
        (["agreement", str(not_a_run)], "not an lstmlm run"),
        (["agreement", str(not_a_run), "--suite", str(tmp / "missing.jsonl")], "suite file not found"),
        (["agreement", str(not_a_run), "--suite", str(bad_toml)], "not valid JSON"),
        (["agreement", str(not_a_run), "--by", ","], "--by"),
        (["train", "--data", str(corpus), "--precision", "fp8", "--out", out], "--precision"),
        (["train", "--data", str(corpus), "--max-bad-steps", "0", "--out", out], "--max-bad-steps"),
        (["train", "--data", str(corpus), "--anneal-factor", "0.5", "--out", out], "--anneal-factor"),
        (["train", "--data", str(corpus), "--freeze", "embedding,rnn.0,rnn.1,decoder", "--out", out],
         "freezes the whole model"),
        (["train", "--data", str(corpus), "--freeze", "rnn.0,rnn.1,decoder", "--out", out],
         "with tied weights the decoder holds the embedding"),
        (["train", "--data", str(corpus), "--freeze", "rnn.2", "--out", out], "no part 'rnn.2'"),
        (["train", "--data", str(corpus), "--freeze", "encoder", "--out", out], "unknown part 'encoder'"),
        (["train", "--data", str(corpus), "--layer-lr-decay", "0", "--out", out], "must be > 0 (got 0"),
        (["train", "--data", str(corpus), "--layer-lr-decay", "-2.6", "--out", out], "--layer-lr-decay"),
        (["train", "--data", str(corpus), "--schedule", "stlr", "--stlr-cut-frac", "1", "--out", out],
         "--stlr-cut-frac must be > 0 and < 1"),
        (["train", "--data", str(corpus), "--stlr-ratio", "10", "--out", out], "apply to --schedule stlr"),
        (["train", "--data", str(corpus), "--save-every-minutes", "-1", "--out", out], "minutes"),
        (["train", "--data", str(corpus), "--cell", "mlstm", "--nhid", "30", "--emsize", "30", "--heads", "4",
          "--out", out], "does not divide the hidden size 30"),
        (["train", "--data", str(corpus), "--cell", "lstm", "--heads", "2", "--out", out], "--heads applies"),
        (["train", "--data", str(corpus), "--mogrify-rounds", "3", "--out", out],
         "--mogrify-rounds applies to --cell mogrifier"),
        (["train", "--data", str(corpus), "--cell", "mogrifier", "--mogrify-rank", "0", "--out", out],
         "--mogrify-rank must be > 0"),
        (["train", "--data", str(corpus), "--softmax", "mos", "--mos-experts", "0", "--out", out],
         "--mos-experts must be > 0"),
        (["train", "--data", str(corpus), "--mos-experts", "3", "--out", out],
         "--mos-experts applies to --softmax mos"),
        (["train", "--data", str(corpus), "--cell", "mingru", "--weight-drop", "0.5", "--out", out], "W_hh"),
        (["train", "--data", str(corpus), "--cell", "slstm", "--layer-sizes", "8,16", "--no-tied",
          "--out", out], "equal --layer-sizes"),
        (["train", "--data", str(corpus), "--out", str(hf), "--overwrite"], "hf is a non-empty folder"),
        (["train", "--init-from", str(not_a_run), "--out", out], "not_a_run: not an lstmlm run folder"),
        (["train", "--init-from", str(tmp / "nowhere"), "--out", out], "nowhere: run folder not found"),
        (["train", "--init-from", str(vocab_run), "--data", str(corpus), "--out", out],
         "has no best.safetensors"),
        (["train", "--init-from", str(vocab_run), "--vocab", "extend", "--tokenizer", "char", "--out", out],
         "--tokenizer char (the parent's: word) differs"),
        (["train", "--out", str(vocab_run), "--resume", "--init-from", str(vocab_run)],
         "--init-from and --resume contradict"),
        (["train", "--data", str(corpus), "--vocab", "extend", "--out", out], "give --init-from RUN"),
        (["train", "--init-from", str(vocab_run), "--out", str(vocab_run), "--overwrite"], "the same run"),
        (["agreement", str(vocab_run), "--pairs", str(vocab_run / "config.json")], "would replace config"),
        (["export", str(vocab_run), "--format", "torchscript", "--out", str(vocab_run / "train_state.pt")],
         "would replace train_state.pt"),
    ]  # fmt: skip
