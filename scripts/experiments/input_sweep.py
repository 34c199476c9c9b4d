"""A hostile new user's sweep: about 230 unusual inputs to every lstmlm command and the Python API.

Prepares a tiny corpus and three tiny trained runs in a temp folder, then runs each case in a
folder of its own (a fresh copy of the run ``RUN`` and the corpus ``tiny.txt``, so a destructive
case cannot spoil another) as a fresh process, and sorts what happened against the case's
declared expectation, with no human in the loop:

    ok  as expected: exit 0 and the case's check of the result passed
    a   a clear one-line error where one was expected (counts as ok; listed separately)
    b   a traceback, "internal error", exit 2, more than one line on stderr, or a hang (timeout)
    c   wrong: exit 0 where an error was expected, exit 0 but the check failed, or valid input
        refused (a one-line error where the case expects success)
    d   data loss: a file or folder that was in the case's folder before (the inputs, the run)
        changed or vanished where the command had no business writing (hashed before and after)

A case expects "ok" (success that passes its check), "error" (a non-zero exit, not 2, with one
line on stderr, inputs unchanged) or "either" (one of the two). Lines on stderr that start with ``warning:``
are not counted; ``.lock`` files are not hashed.

    python -m scripts.experiments.input_sweep --out /tmp/sweep              # the core cases, 2 at a time
    python -m scripts.experiments.input_sweep --out /tmp/sweep --all        # and their variations (~430)
    python -m scripts.experiments.input_sweep --out /tmp/sweep --only 'agr_|api_' --keep

Prints the table and writes it to OUT/sweep.md, every case (with stdout/stderr heads) to
OUT/sweep.json. Each case runs with OMP_NUM_THREADS=1, ``HF_HUB_OFFLINE=1`` (a ``--data`` that
is no file is not looked up on the hub), its own ``LSTMLM_CACHE`` and ``HF_HOME`` in the temp
folder and a 4 GiB address-space limit (a huge size fails there instead of filling the
machine's memory). About 10 minutes on a busy 2-core machine with ``--jobs 2``; ``--all`` about 20.
A SIGINT case whose process dies of its second SIGINT after saving counts as exit 130 (what a shell
shows).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import resource
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from hashlib import sha256
from pathlib import Path
from typing import Any

from scripts.common import LSTMLM, thread_env

Arg = str | bytes
TINY = ("--emsize", "16", "--nhid", "16", "--max-steps", "4", "--bptt", "8", "--batch-size", "4")
TINY += ("--eval-batch-size", "2")
LONG = ("--max-steps", "0", "--epochs", "100000", "--save-every", "3")  # trains until stopped
HUGE = str(2**70)
CATEGORIES = ("ok", "a", "b", "c", "d", "harness")
MEMORY_LIMIT = 4 << 30


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class World:
    """The prepared temp folder (``RUN``, ``RUNMV``, ``RUNC``, ``tiny.txt``) and the cases' environment."""

    base: Path
    env: dict[str, str]


@dataclass
class Result:
    rc: int | None
    out: str = ""
    err: str = ""
    seconds: float = 0.0
    timed_out: bool = False
    changed: list[str] = field(default_factory=list)
    problem: str | None = None  # a failed check, or what a special case saw
    category: str = ""
    note: str = ""


Setup = Callable[[Path, World], None]
Check = Callable[[Path, Result, World], "str | None"]


@dataclass(frozen=True, kw_only=True)
class Case:
    id: str
    cmd: str  # what it exercises, for the counts: a command, "api", "signals", "cli"
    args: tuple[Arg, ...] = ()  # argv after `lstmlm` (runner cli), code (api), script (sh)
    expect: str = "error"  # "ok" | "error" | "either"
    check: Check | None = None  # run on success: None when right, else what is wrong
    setup: tuple[Setup, ...] = ()
    writes: tuple[str, ...] = ()  # paths in the case folder the command may change
    stdin: bytes | None = None
    runner: str = "cli"  # cli | api | sh | special
    special: Callable[[Path, World], Result] | None = None
    ok_rc: tuple[int, ...] = (0,)
    timeout: float = 60
    env: tuple[tuple[str, str], ...] = ()  # extra variables; "{dir}" is the case folder
    extra: bool = False  # only with --all: a variation of a core case


def cli(id: str, *args: Arg, expect: str = "error", **kw: Any) -> Case:
    return Case(id=id, cmd=str(args[0]), args=args, expect=expect, **kw)


def train(id: str, *args: Arg, data: Arg | None = "tiny.txt", expect: str = "error", **kw: Any) -> Case:
    """``lstmlm train --data DATA --out out`` with the tiny model, then ``args`` (the last flag wins)."""
    head = ("train", *(("--data", data) if data is not None else ()), "--out", "out", *TINY)
    writes = ("out", *kw.pop("writes", ()))
    return Case(id=id, cmd="train", args=(*head, *args), expect=expect, writes=writes, **kw)


API = """\
import math, sys
from pathlib import Path
import lstmlm
try:
{body}
except lstmlm.LstmlmError as e:
    print(f"{{type(e).__name__}}: {{e}}", file=sys.stderr)
    sys.exit(1)
"""


def api(id: str, body: str, expect: str = "error", load: bool = True, **kw: Any) -> Case:
    """A Python snippet; an ``LstmlmError`` (or subclass) becomes one stderr line and exit 1."""
    code = ("lm = lstmlm.load('RUN', device='cpu')\n" if load else "") + body
    code = API.format(body="\n".join("    " + line for line in code.splitlines()))
    return Case(id=id, cmd="api", args=(code,), expect=expect, runner="api", **kw)


def sh(id: str, cmd: str, script: str, expect: str = "ok", **kw: Any) -> Case:
    """A bash script, with ``lstmlm`` a function running this checkout's lstmlm."""
    return Case(id=id, cmd=cmd, args=(script,), expect=expect, runner="sh", **kw)


def special(id: str, what: str, fn: Callable[[Path, World], Result], expect: str = "ok", **kw: Any) -> Case:
    """A case run by ``fn`` (signals, two writers); ``what`` describes it in the table."""
    return Case(id=id, cmd="signals", args=(what,), expect=expect, runner="special", special=fn, **kw)


# ---------------------------------------------------------------- contents

WORDS = [
    "the",
    "cat",
    "dog",
    "sat",
    "on",
    "mat",
    "a",
    "big",
    "small",
    "red",
    "runs",
    "jumps",
    "keys",
    "are",
    "is",
]


def text(n: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(" ".join(rng.choices(WORDS, k=rng.randint(3, 9))) + "\n" for _ in range(n))


def ntokens(s: str) -> int:
    """Word-tokenizer tokens of ``s`` read as lines: its words and one <eos> per line."""
    return sum(len(line.split()) + 1 for line in s.splitlines())


TINY_TEXT, HUNDRED, MV_TEXT = text(200, 0), text(100, 1), text(150, 9)
BASE60 = text(60, 2)
ODD: dict[str, bytes] = {
    "nul": (BASE60 + "the \x00 cat\n" + text(10, 3)).encode(),
    "invalid_utf8": BASE60.encode() + b"the \xff\xfe cat\n",
    "surrogate": BASE60.encode() + b"the \xed\xa0\x80 cat\n",
    "latin1": (BASE60 + "the caf\xe9 na\xefve cat\n").encode("latin-1"),
    "rtl_emoji": (BASE60 + "\u05e9\u05dc\u05d5\u05dd the \U0001f600 cat \u202e\U0001f408\n").encode(),
    "crlf": BASE60.replace("\n", "\r\n").encode(),
    "bom": b"\xef\xbb\xbf" + BASE60.encode(),
    "cr_only": BASE60.replace("\n", "\r").encode(),
    "line_1mb": (BASE60 + "the cat " * 131072 + "\n").encode(),
    "word_1mb": BASE60.encode() + b"x" * 1_000_000 + b"\n",
    "empty": b"",
    "whitespace": b"   \n\t\t\n \n" * 20,
}
#: the odd files in the core sweep, per command (the others run with --all)
ODD_CORE = {
    "train": {"nul", "invalid_utf8", "crlf", "bom", "empty"},
    "eval": {"nul", "invalid_utf8", "crlf", "bom", "empty"},
    "score": {"nul", "invalid_utf8", "rtl_emoji", "crlf", "bom", "empty"},
}
#: what each odd file should give as train --data, eval --data and score --file
ODD_EXPECT = {
    "nul": ("either", "either", "either"),
    "invalid_utf8": ("error", "error", "error"),
    "surrogate": ("error", "error", "error"),
    "latin1": ("error", "error", "error"),
    "rtl_emoji": ("ok", "ok", "ok"),
    "crlf": ("ok", "ok", "ok"),
    "bom": ("ok", "ok", "ok"),
    "cr_only": ("either", "either", "either"),
    "line_1mb": ("either", "ok", "ok"),
    "word_1mb": ("either", "either", "either"),
    "empty": ("error", "error", "either"),
    "whitespace": ("either", "either", "either"),
}
GOOD_BAD = [
    {"sentence_good": "the keys are red", "sentence_bad": "the keys is red"},
    {"sentence_good": "the cat runs", "sentence_bad": "the cat run"},
    {"sentence_good": "a dog is big", "sentence_bad": "a dog are big"},
]
BLIMP = [
    {
        **pair,
        "field": "morphology",
        "linguistics_term": "subject_verb_agreement",
        "UID": f"uid_{i % 2}",
        "simple_LM_method": True,
        "one_prefix_method": False,
        "two_prefix_method": False,
        "lexically_identical": True,
        "pairID": str(i),
    }
    for i, pair in enumerate(GOOD_BAD * 2)
]
HF_CONFIG = {"architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_size": 16, "vocab_size": 2}
HF_TOKENIZER = {
    "version": "1.0",
    "truncation": None,
    "padding": None,
    "added_tokens": [],
    "normalizer": None,
    "pre_tokenizer": {"type": "Whitespace"},
    "post_processor": None,
    "decoder": None,
    "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "hello": 1}, "unk_token": "[UNK]"},
}


def jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def safetensors_bytes() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + bytes(8)


def big_corpus(seed: int) -> str:
    """About 20 MB of text no cache has seen (reading it takes seconds)."""
    rng = random.Random(seed)
    vocab = ["".join(rng.choices("abcdefghijklmnop", k=6)) for _ in range(3000)]
    lines = [" ".join(rng.choices(vocab, k=12)) for _ in range(5000)]
    return "\n".join(lines * 60) + "\n"


# ---------------------------------------------------------------- setups


def put(name: Arg, data: bytes | str) -> Setup:
    def do(d: Path, w: World) -> None:
        path = d / os.fsdecode(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)

    return do


def put_json(name: str, obj: Any) -> Setup:
    return put(name, json.dumps(obj))


def folder(name: str, mode: int | None = None) -> Setup:
    def do(d: Path, w: World) -> None:
        (d / name).mkdir(parents=True, exist_ok=True)
        if mode is not None:
            (d / name).chmod(mode)

    return do


def from_base(name: str, dest: str | None = None) -> Setup:
    def do(d: Path, w: World) -> None:
        src, dst = w.base / name, d / (dest or name)
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)

    return do


def damage(name: str, how: str) -> Setup:
    """Truncate to half, empty, fill with garbage or delete ``name`` (in the case folder)."""

    def do(d: Path, w: World) -> None:
        path = d / name
        if how == "delete":
            path.unlink()
        elif how == "truncate":
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        else:
            path.write_bytes(
                b"" if how == "empty" else bytes(random.Random(7).randrange(256) for _ in range(4000))
            )

    return do


def edit_json(name: str, fn: Callable[[Any], Any]) -> Setup:
    def do(d: Path, w: World) -> None:
        path = d / name
        path.write_text(json.dumps(fn(json.loads(path.read_text()))))

    return do


def fifo(name: str) -> Setup:
    return lambda d, w: os.mkfifo(d / name)


def symlink(name: str, target: str) -> Setup:
    return lambda d, w: os.symlink(target, d / name)


def lstmlm_setup(*args: str) -> Setup:
    """Run lstmlm in the case folder before the case (an export the case then meets)."""

    def do(d: Path, w: World) -> None:
        subprocess.run([*LSTMLM, *args], cwd=d, env=w.env, capture_output=True, timeout=120, check=True)

    return do


def with_lock_pid(pid: Callable[[], int]) -> Setup:
    return lambda d, w: (d / "RUN" / ".lock").write_text(f"{pid()}\n")


def tokenizer_plus(n: int) -> Setup:
    """RUN's tokenizer.json with ``n`` more words: a vocabulary the weights do not have."""

    def grow(tok: dict[str, Any]) -> dict[str, Any]:
        vocab = tok["model"]["vocab"]
        vocab.update({f"extra{i}": len(vocab) + i for i in range(n)})
        return tok

    return edit_json("RUN/tokenizer.json", grow)


HF_DIR = (
    put_json("hf/config.json", HF_CONFIG),
    put_json("hf/tokenizer.json", HF_TOKENIZER),
    put("hf/model.safetensors", safetensors_bytes()),
)
SHARDS = tuple(put(f"shards/part-{i:03d}.txt", text(50, 10 + i)) for i in range(4))
SPLITS = (
    put("splits/train.txt", text(80, 20)),
    put("splits/valid.txt", text(15, 21)),
    put("splits/test.txt", text(25, 22)),
)


# ---------------------------------------------------------------- checks (None: right)


def quick(argv: list[str], d: Path, w: World, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=d, env=w.env, capture_output=True, text=True, timeout=timeout, errors="replace"
    )


def last_line(s: str) -> str:
    lines = [line for line in s.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


LOAD = "import sys, lstmlm; lstmlm.load(sys.argv[1], device='cpu').generate('the', max_tokens=2, seed=0)"


def loadable(d: Path, w: World, name: str) -> str | None:
    p = quick([sys.executable, "-c", LOAD, name], d, w)
    return None if p.returncode == 0 else f"{name} not loadable: {last_line(p.stderr)}"


def info_step(d: Path, w: World, name: str) -> int | None:
    p = quick([*LSTMLM, "info", name, "--json"], d, w)
    try:
        return int(json.loads(p.stdout)["step"])
    except (ValueError, KeyError, TypeError):
        return None


def all_of(*checks: Check) -> Check:
    def check(d: Path, r: Result, w: World) -> str | None:
        return next((p for c in checks if (p := c(d, r, w))), None)

    return check


def intact(run: Path) -> str | None:
    """A run folder as eval needs it, read without torch: config.json and tokenizer.json parse, and
    each weights file is a whole safetensors file (its header parses, its size is the header's)."""
    try:
        for name in ("config.json", "tokenizer.json"):
            json.loads((run / name).read_text(encoding="utf-8"))
        weights = [run / n for n in ("best.safetensors", "model.safetensors") if (run / n).exists()]
        for path in weights:
            data = path.read_bytes()
            n = int.from_bytes(data[:8], "little")
            header = json.loads(data[8 : 8 + n])
            end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
            if len(data) != 8 + n + end:
                return f"{path.name} is {len(data)} bytes, its header says {8 + n + end}"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"{run.name}: {type(e).__name__}: {e}"[:160]
    return None if weights else f"{run.name} has no weights"


def run_ok(name: str) -> Check:
    """``name`` is a whole run folder (cheap: no torch); ``loads`` loads it for real."""
    return lambda d, r, w: intact(d / name)


def loads(name: str) -> Check:
    return lambda d, r, w: loadable(d, w, name)


def step_is(name: str, step: int) -> Check:
    def check(d: Path, r: Result, w: World) -> str | None:
        got = info_step(d, w, name)
        return None if got == step else f"{name} is at step {got}, not {step}"

    return check


def lines_used(name: str, n: int) -> Check:
    """The run's data.json accounts for all ``n`` lines of its text (train + valid + test)."""

    def check(d: Path, r: Result, w: World) -> str | None:
        try:
            splits = json.loads((d / name / "data.json").read_text())["splits"]
            got = sum(s["lines"] for s in splits.values())
        except (OSError, ValueError, KeyError, TypeError) as e:
            return f"no readable {name}/data.json ({type(e).__name__})"
        return None if got == n else f"trained on {got} lines of the {n} given"

    return all_of(check, run_ok(name))


def out_json(r: Result) -> Any:
    try:
        return json.loads(r.out)
    except ValueError:
        return None


def finite(obj: Any) -> bool:
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(finite(v) for v in obj.values())
    return all(finite(v) for v in obj) if isinstance(obj, list) else True


def json_ok(d: Path, r: Result, w: World) -> str | None:
    obj = out_json(r)
    if obj is None:
        return "stdout is not one JSON object"
    return None if finite(obj) else "a non-finite number in the JSON"


def tokens_about(n: int, tol: float = 0.05) -> Check:
    def check(d: Path, r: Result, w: World) -> str | None:
        obj = out_json(r)
        got = obj.get("tokens") if isinstance(obj, dict) else None
        if not isinstance(got, int):
            return "no tokens in the JSON"
        return None if abs(got - n) <= tol * n else f"scored {got} tokens of the text's {n}"

    return all_of(json_ok, check)


def jsonl_rows(r: Result) -> list[Any] | None:
    try:
        return [json.loads(line) for line in r.out.splitlines() if line.strip()]
    except ValueError:
        return None


def jsonl_count(*ns: int) -> Check:
    def check(d: Path, r: Result, w: World) -> str | None:
        rows = jsonl_rows(r)
        if rows is None:
            return "stdout is not JSONL"
        return None if len(rows) in ns else f"{len(rows)} JSON lines, expected {' or '.join(map(str, ns))}"

    return check


def clean_tokens(d: Path, r: Result, w: World) -> str | None:
    """No carriage return or BOM left inside a scored word or token."""
    for row in jsonl_rows(r) or []:
        for piece in [*row.get("words", []), *row.get("tokens", [])]:
            if any(ch in str(piece.get("word", piece.get("token", ""))) for ch in "\r\ufeff"):
                return f"a word keeps a CR or BOM: {piece!r:.60}"
    return None


def lines_of(data: bytes) -> tuple[int, int]:
    """(all lines, non-blank lines) of a text read as UTF-8 with a BOM and CRLF allowed."""
    lines = data.decode("utf-8-sig", "replace").splitlines()
    return len(lines), sum(1 for line in lines if line.strip())


def vocab_clean(name: str) -> Check:
    def check(d: Path, r: Result, w: World) -> str | None:
        raw = (d / name / "tokenizer.json").read_text(encoding="utf-8", errors="replace")
        vocab = json.loads(raw).get("model", {}).get("vocab", {})
        bad = [k for k in vocab if "\r" in k or "\ufeff" in k]
        return f"the vocabulary has {bad[:3]!r}" if bad else None

    return all_of(check, run_ok(name))


def mentions(word: str) -> Check:
    return lambda d, r, w: None if word in (r.out + r.err).lower() else f"exit 0 without saying {word!r}"


def files_exist(*names: str) -> Check:
    def check(d: Path, r: Result, w: World) -> str | None:
        missing = [n for n in names if not (d / n).is_file() or (d / n).stat().st_size == 0]
        return f"missing or empty: {', '.join(missing)}" if missing else None

    return check


def stdout_has_text(d: Path, r: Result, w: World) -> str | None:
    return None if r.out.strip() else "nothing on stdout"


def pair_count(n: int) -> Check:
    """agreement --json: the groups hold ``n`` pairs in all (for each grouping)."""

    def check(d: Path, r: Result, w: World) -> str | None:
        obj = out_json(r)
        if not isinstance(obj, dict) or not isinstance(obj.get("groups"), list):
            return "no groups in the JSON"
        got = sum(g.get("count", 0) for g in obj["groups"])
        return None if got == n else f"{got} pairs scored of {n}"

    return check


def printed_about(n: int, tol: float = 0.02) -> Check:
    """stdout is one number within ``tol`` of ``n``."""

    def check(d: Path, r: Result, w: World) -> str | None:
        try:
            got = float(r.out.strip())
        except ValueError:
            return f"printed {r.out.strip()[:40]!r}, not a number"
        return None if abs(got - n) <= tol * n else f"{got:g} tokens of the text's {n}"

    return check


def pairs_written(name: str) -> Check:
    def check(d: Path, r: Result, w: World) -> str | None:
        obj = out_json(r)
        total = sum(g.get("count", 0) for g in obj["groups"]) if isinstance(obj, dict) else -1
        path = d / name
        rows = len(path.read_text().splitlines()) if path.is_file() else 0
        return None if rows == total else f"{name} holds {rows} pairs, the JSON counts {total}"

    return check


# ---------------------------------------------------------------- cases: train


def train_data_cases() -> list[Case]:
    """Where the text comes from: the issue's folders, globs and repeats, then odd paths."""
    either = "either"
    return [
        train("train_ok", expect="ok", check=lines_used("out", 200)),
        train("train_default_corpus", data=None, expect="ok", check=run_ok("out")),
        train(
            "train_shards_folder", data="shards", expect=either, setup=SHARDS, check=lines_used("out", 200)
        ),
        train("train_glob", data="shards/*.txt", expect=either, setup=SHARDS, check=lines_used("out", 200)),
        train(
            "train_folder_input_txt",
            data="only",
            expect=either,
            setup=(put("only/input.txt", TINY_TEXT),),
            check=lines_used("out", 200),
        ),
        train(
            "train_two_data",
            "--data",
            "b.txt",
            data="a.txt",
            expect=either,
            setup=(put("a.txt", text(100, 4)), put("b.txt", text(60, 5))),
            check=lines_used("out", 160),
        ),
        train("train_splits_folder", data="splits", expect="ok", setup=SPLITS, check=lines_used("out", 120)),
        train("train_data_missing", data="missing.txt"),
        train("train_data_empty_folder", data="nothing", setup=(folder("nothing"),)),
        train("train_data_file_slash", data="tiny.txt/", expect=either, check=lines_used("out", 200)),
        train("train_data_devnull", data="/dev/null"),
        train("train_data_fifo_no_writer", data="fifo.txt", setup=(fifo("fifo.txt"),), timeout=30),
        train("train_data_hub_offline", data="no-such-user/no-such-dataset"),
        train("train_data_empty_string", data="", expect=either, check=run_ok("out")),
        train("train_data_long_name", data="x" * 300 + ".txt"),
        train("train_data_two_lines", data="two.txt", setup=(put("two.txt", "the cat\na dog\n"),)),
        train(
            "train_data_spaces", data="my corpus.txt", expect="ok", setup=(put("my corpus.txt", TINY_TEXT),)
        ),
        train("train_data_newline_name", data="a\nb.txt", expect="ok", setup=(put("a\nb.txt", TINY_TEXT),)),
        train(
            "train_data_unicode_name",
            data="\u043a\u043e\u0440\u043f\u0443\u0441 \U0001f600.txt",
            expect="ok",
            setup=(put("\u043a\u043e\u0440\u043f\u0443\u0441 \U0001f600.txt", TINY_TEXT),),
            check=lines_used("out", 200),
        ),
        train(
            "train_data_bytes_name",
            data=b"c\xff.txt",
            expect=either,
            setup=(put(b"c\xff.txt", TINY_TEXT),),
            check=lines_used("out", 200),
        ),
        train(
            "train_data_dash_stdin",
            data="-",
            expect=either,
            stdin=TINY_TEXT.encode(),
            check=lines_used("out", 200),
        ),
        train(
            "train_data_tilde",
            data="~/tiny.txt",
            expect=either,
            env=(("HOME", "{dir}"),),
            check=lines_used("out", 200),
        ),
        sh(
            "train_data_process_substitution",
            "train",
            "lstmlm train --data <(cat tiny.txt) --out out " + " ".join(TINY),
            expect=either,
            writes=("out",),
            check=lines_used("out", 200),
        ),
    ]


def train_odd_file_cases() -> list[Case]:
    cases = []
    for name, data in ODD.items():
        expect = ODD_EXPECT[name][0]
        check = vocab_clean("out") if name in ("crlf", "bom") else run_ok("out")
        extra = name not in ODD_CORE["train"]
        cases.append(
            train(
                f"train_file_{name}",
                data="odd.txt",
                expect=expect,
                setup=(put("odd.txt", data),),
                check=check,
                extra=extra,
                timeout=120 if name.endswith("1mb") else 60,
            )
        )
    return cases


def train_out_cases() -> list[Case]:
    """--out, --resume and --overwrite: nothing the user owns may go."""
    out = ("train", "--data", "tiny.txt", *TINY, "--out")
    return [
        cli("train_out_existing_run", *out, "RUN"),
        cli("train_out_is_file", *out, "tiny.txt"),
        cli("train_out_is_file_overwrite", *out, "tiny.txt", "--overwrite"),
        cli(
            "train_out_user_folder_overwrite",
            *out,
            "mine",
            "--overwrite",
            setup=(put("mine/notes.txt", "mine\n"),),
        ),
        cli("train_out_cwd_overwrite", *out, ".", "--overwrite"),
        cli("train_out_hf_overwrite", *out, "hf", "--overwrite", setup=HF_DIR),
        cli("train_out_hf", *out, "hf", setup=HF_DIR),
        cli("train_out_long_name", *out, "r" * 300),
        cli("train_out_empty_string", *out, ""),
        cli(
            "train_out_readonly",
            *out,
            "ro/run",
            expect="either",
            setup=(folder("ro", 0o555),),
            writes=("ro",),
        ),
        cli("train_out_newline", *out, "run\nx", expect="ok", writes=("run\nx",), check=run_ok("run\nx")),
        cli(
            "train_out_unicode",
            *out,
            "\u0440\u0443\u043d \U0001f600",
            expect="ok",
            writes=("\u0440\u0443\u043d \U0001f600",),
        ),
        cli("train_out_nested_missing", *out, "a/b/c", expect="either", writes=("a",), check=run_ok("a/b/c")),
        cli("train_out_dash", *out, "-", expect="either", writes=("-",), check=run_ok("-")),
        cli(
            "train_resume_ok",
            "train",
            "--out",
            "RUN",
            "--resume",
            "--max-steps",
            "25",
            expect="ok",
            writes=("RUN",),
            check=all_of(step_is("RUN", 25), loads("RUN")),
        ),
        cli("train_resume_missing", "train", "--out", "nope", "--resume"),
        cli("train_resume_empty_folder", "train", "--out", "empty", "--resume", setup=(folder("empty"),)),
        cli("train_resume_hf", "train", "--out", "hf", "--resume", setup=HF_DIR),
        cli(
            "train_resume_and_overwrite",
            "train",
            "--out",
            "RUN",
            "--resume",
            "--overwrite",
            "--max-steps",
            "22",
            expect="either",
            writes=("RUN",),
            check=step_is("RUN", 22),
        ),
        cli("train_resume_other_model", "train", "--out", "RUN", "--resume", "--emsize", "32"),
        cli(
            "train_resume_other_text",
            "train",
            "--out",
            "RUN",
            "--resume",
            "--data",
            "a.txt",
            setup=(put("a.txt", text(100, 4)),),
        ),
        cli(
            "train_resume_moved_corpus",
            "train",
            "--out",
            "RUNMV",
            "--resume",
            "--data",
            "new/c.txt",
            "--max-steps",
            "15",
            expect="ok",
            setup=(from_base("RUNMV"), put("new/c.txt", MV_TEXT)),
            writes=("RUNMV",),
            check=all_of(step_is("RUNMV", 15), loads("RUNMV")),
        ),
        cli(
            "train_resume_corpus_gone",
            "train",
            "--out",
            "RUNMV",
            "--resume",
            "--max-steps",
            "15",
            setup=(from_base("RUNMV"),),
        ),
    ]


def train_config_cases() -> list[Case]:
    """--config TOML files, the issue's relative path and a run's config.json, and option clashes."""
    cfg = ("train", "--data", "tiny.txt", "--out", "out", *TINY, "--config")
    w = {"writes": ("out",)}
    return [
        cli(
            "train_toml_relative_data",
            "train",
            "--config",
            "conf/t.toml",
            "--out",
            "out",
            *TINY,
            expect="ok",
            setup=(
                put("conf/t.toml", '[data]\ndata = "x.txt"\n'),
                put("conf/x.txt", HUNDRED),
                put("x.txt", text(37, 8)),
            ),
            check=lines_used("out", 100),
            **w,
        ),
        cli(
            "train_config_run_json",
            "train",
            "--config",
            "RUN/config.json",
            "--out",
            "out",
            "--max-steps",
            "4",
            expect="either",
            check=run_ok("out"),
            **w,
        ),
        cli("train_config_hf_json", *cfg, "hf/config.json", setup=HF_DIR, **w),
        cli("train_config_missing", *cfg, "nope.toml", **w),
        cli("train_config_folder", *cfg, "conf", setup=(folder("conf"),), **w),
        cli(
            "train_config_empty",
            *cfg,
            "c.toml",
            expect="ok",
            setup=(put("c.toml", ""),),
            check=run_ok("out"),
            **w,
        ),
        cli("train_config_syntax", *cfg, "c.toml", setup=(put("c.toml", "[model\nemsize = = 3\n"),), **w),
        cli(
            "train_config_unknown_key", *cfg, "c.toml", setup=(put("c.toml", "[model]\nemsizee = 16\n"),), **w
        ),
        cli(
            "train_config_unknown_table", *cfg, "c.toml", setup=(put("c.toml", "[optimizer]\nlr = 1\n"),), **w
        ),
        cli(
            "train_config_wrong_type",
            *cfg,
            "c.toml",
            setup=(put("c.toml", '[model]\nemsize = "big"\n'),),
            **w,
        ),
        cli("train_config_nan", *cfg, "c.toml", setup=(put("c.toml", "[train]\nlr = nan\n"),), **w),
        cli("train_config_nul", *cfg, "c.toml", setup=(put("c.toml", b"[model]\nemsize = 16\x00\n"),), **w),
        cli(
            "train_config_invalid_utf8",
            *cfg,
            "c.toml",
            setup=(put("c.toml", b"# \xff\n[model]\nemsize = 16\n"),),
            **w,
        ),
        cli(
            "train_config_bom",
            *cfg,
            "c.toml",
            expect="either",
            setup=(put("c.toml", b"\xef\xbb\xbf[model]\nemsize = 16\n"),),
            check=run_ok("out"),
            **w,
        ),
        train("train_lr_diverges", "--lr", "1e30", "--clip", "0", expect="either", check=mentions("diverg")),
        train("train_cell_unknown", "--cell", "lstmx"),
        train("train_cell_upper_case", "--cell", "LSTM", expect="either", check=run_ok("out")),
        train("train_tied_size_mismatch", "--nhid", "8", "--tied", expect="either", check=run_ok("out")),
        train("train_cutoffs_descending", "--softmax", "adaptive", "--cutoffs", "5,3"),
        train("train_cutoffs_garbage", "--softmax", "adaptive", "--cutoffs", "abc"),
        train(
            "train_cutoffs_beyond_vocab",
            "--softmax",
            "adaptive",
            "--cutoffs",
            "1000",
            expect="either",
            check=run_ok("out"),
        ),
        train("train_layer_sizes_zero", "--layer-sizes", "0,16"),
        train("train_layer_sizes_gap", "--layer-sizes", "16,,16"),
        train("train_layer_sizes_negative", "--layer-sizes", "-16"),
        train("train_heads_indivisible", "--cell", "slstm", "--heads", "3"),
        train("train_weight_drop_mingru", "--cell", "mingru", "--weight-drop", "0.5"),
        train("train_char_with_pretokenize", "--tokenizer", "char", "--pre-tokenize", "punct"),
        train(
            "train_bpe_vocab_10",
            "--tokenizer",
            "bpe",
            "--vocab-size",
            "10",
            expect="either",
            check=run_ok("out"),
        ),
        train("train_fp16_on_cpu", "--device", "cpu", "--precision", "fp16"),
        train("train_device_cuda", "--device", "cuda"),
        train("train_device_mps", "--device", "mps"),
        train("train_grad_accum_over_batch", "--grad-accum", "8"),
        train("train_bptt_over_text", "--bptt", "100000", expect="either", check=run_ok("out")),
        train("train_batch_over_text", "--batch-size", "100000", expect="either", check=run_ok("out")),
        train("train_unknown_flag", "--frobnicate"),
        train("train_extra_argument", "extra"),
        train("train_text_column_on_file", "--text-column", "body", expect="either", check=run_ok("out")),
        train("train_tensorboard", "--tensorboard", expect="either", check=run_ok("out")),
    ]


#: train's numeric options: "value:expect" (e error, x either; * in the core sweep); HUGE is 2**70
TRAIN_NUMBERS = {
    "--emsize": "0:e* HUGE:e",
    "--nhid": "-1:e",
    "--nlayers": "0:e",
    "--heads": "0:x",
    "--vocab-size": "-1:e",
    "--min-freq": "-1:e",
    "--bptt": "0:e",
    "--batch-size": "-1:e HUGE:e*",
    "--eval-batch-size": "0:e",
    "--nonmono": "-1:e",
    "--warmup-steps": "-1:e",
    "--grad-accum": "0:e",
    "--epochs": "-1:e",
    "--max-steps": "-1:e 1e3:e*",
    "--patience": "-1:e",
    "--eval-every": "-1:e",
    "--log-every": "0:e",
    "--save-every": "-1:e",
    "--max-bad-steps": "-1:e",
    "--seed": "HUGE:e*",
    "--dropout": "nan:e* 1.5:e",
    "--dropouti": "-1:e",
    "--dropouth": "inf:e",
    "--dropoute": "nan:e",
    "--weight-drop": "1e30:e",
    "--ar-alpha": "-1:e",
    "--tar-beta": "nan:e",
    "--forget-bias": "nan:e",
    "--lr": "nan:e* -1:e inf:e",
    "--weight-decay": "-1:e",
    "--clip": "nan:e inf:x*",
    "--anneal-factor": "0:e",
    "--max-time": "nan:e* -1:e",
    "--save-every-minutes": "-1:e inf:x",
}
EXPECT = {"e": "error", "x": "either", "o": "ok"}


def number_cases(
    prefix: str, table: dict[str, str], make: Callable[[str, str, str, str], Case]
) -> list[Case]:
    cases = []
    for option, spec in table.items():
        for item in spec.split():
            value, code = item.rstrip("*").split(":")
            tag = {"-1": "neg", "HUGE": "huge", "-0.1": "neg", "1e30": "1e30"}.get(
                value, value.replace(".", "_")
            )
            case_id = f"{prefix}_{option.strip('-').replace('-', '_')}_{tag}"
            case = make(case_id, option, HUGE if value == "HUGE" else value, EXPECT[code])
            cases.append(replace(case, extra=not item.endswith("*")))
    return cases


def train_number_cases() -> list[Case]:
    return number_cases(
        "train_num",
        TRAIN_NUMBERS,
        lambda i, opt, value, expect: train(i, opt, value, expect=expect, check=run_ok("out")),
    )


# ---------------------------------------------------------------- cases: eval, generate


def eval_cases() -> list[Case]:
    hundred = (put("hundred.txt", HUNDRED),)
    return [
        cli("eval_ok", "eval", "RUN", "--json", expect="ok", check=json_ok),
        cli(
            "eval_data_whole_file",
            "eval",
            "RUN",
            "--data",
            "hundred.txt",
            "--json",
            expect="ok",
            setup=hundred,
            check=tokens_about(ntokens(HUNDRED)),
        ),
        cli(
            "eval_data_splits_folder",
            "eval",
            "RUN",
            "--data",
            "splits",
            "--json",
            expect="ok",
            setup=SPLITS,
            check=tokens_about(ntokens(text(25, 22))),
        ),
        cli(
            "eval_data_splits_valid",
            "eval",
            "RUN",
            "--data",
            "splits",
            "--split",
            "valid",
            "--json",
            expect="ok",
            setup=SPLITS,
            check=tokens_about(ntokens(text(15, 21))),
        ),
        cli(
            "eval_data_two",
            "eval",
            "RUN",
            "--data",
            "a.txt",
            "--data",
            "hundred.txt",
            "--json",
            expect="either",
            setup=(*hundred, put("a.txt", TINY_TEXT)),
            check=tokens_about(ntokens(HUNDRED + TINY_TEXT)),
        ),
        cli(
            "eval_data_glob",
            "eval",
            "RUN",
            "--data",
            "shards/*.txt",
            "--json",
            expect="either",
            setup=SHARDS,
            check=tokens_about(sum(ntokens(text(50, 10 + i)) for i in range(4))),
        ),
        cli(
            "eval_data_dash_stdin",
            "eval",
            "RUN",
            "--data",
            "-",
            "--json",
            expect="either",
            stdin=HUNDRED.encode(),
            check=tokens_about(ntokens(HUNDRED)),
        ),
        sh(
            "eval_data_process_substitution",
            "eval",
            "lstmlm eval RUN --json --data <(cat hundred.txt)",
            expect="either",
            setup=hundred,
            check=tokens_about(ntokens(HUNDRED)),
        ),
        cli(
            "eval_data_fifo_no_writer",
            "eval",
            "RUN",
            "--data",
            "fifo.txt",
            setup=(fifo("fifo.txt"),),
            timeout=30,
        ),
        cli("eval_data_missing", "eval", "RUN", "--data", "missing.txt"),
        cli("eval_data_folder_no_text", "eval", "RUN", "--data", "RUN"),
        cli(
            "eval_split_train",
            "eval",
            "RUN",
            "--split",
            "train",
            "--json",
            expect="ok",
            check=tokens_about(ntokens("".join(TINY_TEXT.splitlines(True)[:180]))),
        ),
        cli("eval_split_bogus", "eval", "RUN", "--split", "dev"),
        cli("eval_last", "eval", "RUN", "--last", "--json", expect="ok", check=json_ok),
        cli("eval_device_cuda", "eval", "RUN", "--device", "cuda"),
        cli("eval_run_missing", "eval", "nope"),
        cli("eval_run_is_file", "eval", "tiny.txt"),
        cli("eval_run_empty_folder", "eval", "empty", setup=(folder("empty"),)),
        cli("eval_run_hf", "eval", "hf", setup=HF_DIR),
        cli("eval_run_empty_string", "eval", ""),
        cli("eval_run_corpus_gone", "eval", "RUNMV", setup=(from_base("RUNMV"),)),
        cli("eval_dynamic", "eval", "RUN", "--dynamic", "--json", expect="ok", check=json_ok),
        cli("eval_cache", "eval", "RUN", "--cache", "--json", expect="ok", check=json_ok),
        cli("eval_cache_tune", "eval", "RUN", "--cache-tune", "--json", expect="ok", check=json_ok),
        cli(
            "eval_cache_flags_without_cache",
            "eval",
            "RUN",
            "--cache-lambda",
            "0.5",
            "--json",
            expect="either",
            check=json_ok,
        ),
    ]


def eval_odd_file_cases() -> list[Case]:
    return [
        cli(
            f"eval_file_{name}",
            "eval",
            "RUN",
            "--data",
            "odd.txt",
            "--json",
            expect=ODD_EXPECT[name][1],
            setup=(put("odd.txt", data),),
            check=json_ok,
            extra=name not in ODD_CORE["eval"],
            timeout=120 if name.endswith("1mb") else 60,
        )
        for name, data in ODD.items()
    ]


EVAL_NUMBERS = {
    "--dynamic-lr": "nan:e* -1:e inf:x",
    "--dynamic-decay": "nan:e -1:e*",
    "--dynamic-segment": "0:e* -1:e HUGE:x",
    "--cache-window": "0:e -1:e* HUGE:x*",
    "--cache-theta": "nan:e* inf:x",
    "--cache-lambda": "1:e* -0.1:e nan:e",
}


def eval_number_cases() -> list[Case]:
    def make(i: str, opt: str, value: str, expect: str) -> Case:
        method = "--dynamic" if opt.startswith("--dynamic") else "--cache"
        return cli(i, "eval", "RUN", "--json", method, opt, value, expect=expect, check=json_ok)

    return number_cases("eval_num", EVAL_NUMBERS, make)


def generate_cases() -> list[Case]:
    gen = ("generate", "RUN", "--max-tokens", "5", "--seed", "1")
    x = {"expect": "either", "check": stdout_has_text}
    return [
        cli("gen_ok", *gen, expect="ok", check=stdout_has_text),
        sh(
            "gen_same_seed_same_text",
            "generate",
            "a=$(lstmlm generate RUN --seed 3 --max-tokens 9); "
            "b=$(lstmlm generate RUN --seed 3 --max-tokens 9); "
            '[ "$a" = "$b" ] && echo same',
            check=mentions("same"),
        ),
        cli(
            "gen_prompt_rtl_emoji",
            *gen,
            "--prompt",
            "\u05e9\u05dc\u05d5\u05dd the \U0001f600 \u202ecat",
            expect="ok",
            check=stdout_has_text,
        ),
        cli("gen_prompt_invalid_utf8", *gen, "--prompt", b"the \xff\xfe cat", **x),
        cli("gen_prompt_lone_surrogate", *gen, "--prompt", b"the \xed\xa0\x80 cat", **x),
        cli("gen_prompt_empty", *gen, "--prompt", "", **x),
        cli("gen_prompt_whitespace", *gen, "--prompt", " \t ", **x),
        cli("gen_prompt_crlf", *gen, "--prompt", "the cat\r\na dog\r\n", **x),
        cli("gen_prompt_bom", *gen, "--prompt", "\ufeffthe cat", **x),
        cli("gen_prompt_100k", *gen, "--prompt", "the cat " * 12800, **x),
        cli("gen_prompt_unknown_words", *gen, "--prompt", "zebra quokka", expect="ok", check=stdout_has_text),
        cli("gen_agreement", "generate", "RUN", "--agreement", **x),
        cli("gen_agreement_and_prompt", "generate", "RUN", "--agreement", "--prompt", "the cat", **x),
        cli("gen_device_cuda", *gen, "--device", "cuda"),
        cli("gen_run_missing", "generate", "nope"),
        cli("gen_json_flag", *gen, "--json"),
        sh(
            "gen_stdout_closed_early",
            "generate",
            "lstmlm generate RUN --max-tokens 20000 --num-samples 3 | head -c 20 >/dev/null; echo done",
            check=mentions("done"),
        ),
    ]


GEN_NUMBERS = {
    "--max-tokens": "0:e* -1:e 1e3:e",
    "--temperature": "nan:e* -1:e inf:x* 1e30:x",
    "--top-k": "-1:e* HUGE:x",
    "--top-p": "nan:e 1.5:e* -0.1:e 0:x",
    "--seed": "-1:x HUGE:x*",
    "--num-samples": "0:e* -1:e",
}


def generate_number_cases() -> list[Case]:
    def make(i: str, opt: str, value: str, expect: str) -> Case:
        return cli(
            i, "generate", "RUN", "--max-tokens", "5", opt, value, expect=expect, check=stdout_has_text
        )

    return number_cases("gen_num", GEN_NUMBERS, make)


# ---------------------------------------------------------------- cases: agreement, score


def agreement_cases() -> list[Case]:
    agr = ("agreement", "RUN", "--json", "--suite")
    gb = (put("gb.jsonl", jsonl(GOOD_BAD)),)
    suite = {"setup": gb}
    n = len(GOOD_BAD)
    return [
        cli("agr_default", "agreement", "RUN", "--json", expect="ok", check=json_ok),
        cli(
            "agr_pairs_file",
            "agreement",
            "RUN",
            "--json",
            "--pairs",
            "p.jsonl",
            expect="ok",
            check=pairs_written("p.jsonl"),
        ),
        cli("agr_good_bad_only", *agr, "gb.jsonl", expect="ok", check=pair_count(n), **suite),
        cli(
            "agr_blimp_shaped",
            *agr,
            "blimp.jsonl",
            expect="ok",
            setup=(put("blimp.jsonl", jsonl(BLIMP)),),
            check=pair_count(len(BLIMP)),
        ),
        cli(
            "agr_blimp_by_uid",
            *agr,
            "blimp.jsonl",
            "--by",
            "UID",
            expect="ok",
            setup=(put("blimp.jsonl", jsonl(BLIMP)),),
            check=pair_count(len(BLIMP)),
        ),
        cli("agr_by_empty", *agr, "gb.jsonl", "--by", "", expect="either", check=pair_count(n), **suite),
        cli("agr_by_commas", *agr, "gb.jsonl", "--by", ",,", expect="either", check=pair_count(n), **suite),
        cli("agr_by_unknown_field", "agreement", "RUN", "--by", "nope"),
        cli("agr_pairs_onto_run_config", "agreement", "RUN", "--pairs", "RUN/config.json"),
        cli("agr_pairs_onto_suite", *agr, "gb.jsonl", "--pairs", "gb.jsonl", **suite),
        cli("agr_pairs_is_folder", "agreement", "RUN", "--pairs", "RUN"),
        cli("agr_pairs_missing_folder", "agreement", "RUN", "--pairs", "nope/p.jsonl"),
        cli("agr_suite_missing", *agr, "nope.jsonl"),
        cli("agr_suite_empty_string", *agr, ""),
        cli("agr_suite_empty_file", *agr, "e.jsonl", setup=(put("e.jsonl", ""),)),
        cli(
            "agr_suite_bad_json",
            *agr,
            "s.jsonl",
            setup=(put("s.jsonl", '{"sentence_good": "the cat runs",\n'),),
        ),
        cli(
            "agr_suite_no_bad_field",
            *agr,
            "s.jsonl",
            setup=(put("s.jsonl", '{"sentence_good": "the cat runs"}\n'),),
        ),
        cli(
            "agr_suite_not_strings",
            *agr,
            "s.jsonl",
            setup=(put("s.jsonl", '{"sentence_good": 1, "sentence_bad": null}\n'),),
        ),
        cli(
            "agr_suite_json_array",
            *agr,
            "s.json",
            expect="either",
            setup=(put_json("s.json", GOOD_BAD),),
            check=pair_count(n),
        ),
        cli(
            "agr_suite_empty_sentences",
            *agr,
            "s.jsonl",
            expect="either",
            setup=(put("s.jsonl", '{"sentence_good": "", "sentence_bad": ""}\n'),),
            check=json_ok,
        ),
        cli(
            "agr_suite_bom",
            *agr,
            "s.jsonl",
            expect="ok",
            setup=(put("s.jsonl", b"\xef\xbb\xbf" + jsonl(GOOD_BAD).encode()),),
            check=pair_count(n),
        ),
        cli(
            "agr_suite_crlf",
            *agr,
            "s.jsonl",
            expect="ok",
            setup=(put("s.jsonl", jsonl(GOOD_BAD).replace("\n", "\r\n")),),
            check=pair_count(n),
        ),
        cli(
            "agr_suite_blank_lines",
            *agr,
            "s.jsonl",
            expect="ok",
            setup=(put("s.jsonl", "\n" + jsonl(GOOD_BAD).replace("\n", "\n\n")),),
            check=pair_count(n),
        ),
        cli(
            "agr_suite_invalid_utf8",
            *agr,
            "s.jsonl",
            setup=(put("s.jsonl", b'{"sentence_good": "the \xff cat", "sentence_bad": "a"}\n'),),
        ),
        cli("agr_suite_folder", *agr, "shards", setup=SHARDS),
        cli("agr_suite_run_folder", *agr, "RUN"),
        cli(
            "agr_suite_dash_stdin",
            *agr,
            "-",
            expect="either",
            stdin=jsonl(GOOD_BAD).encode(),
            check=pair_count(n),
        ),
        cli("agr_suite_hub_offline", *agr, "nyu-mll/blimp:anaphor_gender_agreement"),
        cli("agr_suite_long_range", *agr, "long-range", expect="ok", check=json_ok),
        cli("agr_device_cuda", "agreement", "RUN", "--device", "cuda"),
    ]


def score_cases() -> list[Case]:
    sc = ("score", "RUN", "--json")
    n_all, n_text = lines_of(HUNDRED.encode())
    return [
        cli("score_texts", *sc, "--text", "the cat", "--text", "a dog", expect="ok", check=jsonl_count(2)),
        cli(
            "score_stdin_dash",
            *sc,
            "--file",
            "-",
            expect="ok",
            stdin=b"the cat\na dog\nthe keys are red\n",
            check=jsonl_count(3),
        ),
        cli(
            "score_file",
            *sc,
            "--file",
            "h.txt",
            expect="ok",
            setup=(put("h.txt", HUNDRED),),
            check=jsonl_count(n_all, n_text),
        ),
        cli(
            "score_file_context",
            *sc,
            "--context",
            "--file",
            "h.txt",
            expect="ok",
            setup=(put("h.txt", HUNDRED),),
            check=jsonl_count(n_all, n_text),
        ),
        cli("score_nothing_given", *sc, expect="either"),
        cli(
            "score_text_and_file",
            *sc,
            "--text",
            "the cat",
            "--file",
            "h.txt",
            expect="either",
            setup=(put("h.txt", "a dog\n"),),
            check=jsonl_count(1, 2),
        ),
        cli("score_text_empty", *sc, "--text", "", expect="either", check=jsonl_count(1, 0)),
        cli("score_text_invalid_utf8", *sc, "--text", b"the \xff cat", expect="either", check=jsonl_count(1)),
        cli(
            "score_text_lone_surrogate",
            *sc,
            "--text",
            b"the \xed\xa0\x80 cat",
            expect="either",
            check=jsonl_count(1),
        ),
        cli(
            "score_text_rtl_emoji",
            *sc,
            "--text",
            "\u05e9\u05dc\u05d5\u05dd the \U0001f600",
            expect="ok",
            check=jsonl_count(1),
        ),
        cli("score_text_100k", *sc, "--text", "the cat " * 12800, expect="either", check=jsonl_count(1)),
        cli(
            "score_text_newline_inside",
            *sc,
            "--text",
            "the cat\na dog",
            expect="either",
            check=jsonl_count(1, 2),
        ),
        cli("score_file_missing", *sc, "--file", "nope.txt"),
        cli("score_file_folder", *sc, "--file", "RUN"),
        cli("score_file_devnull", *sc, "--file", "/dev/null", expect="either", check=jsonl_count(0)),
        cli("score_file_fifo_no_writer", *sc, "--file", "fifo.txt", setup=(fifo("fifo.txt"),), timeout=30),
        sh(
            "score_file_process_substitution",
            "score",
            "lstmlm score RUN --json --file <(printf 'the cat\\na dog\\n')",
            check=jsonl_count(2),
        ),
        cli("score_device_cuda", *sc, "--text", "the cat", "--device", "cuda"),
    ]


def score_odd_file_cases() -> list[Case]:
    cases = []
    for name, data in ODD.items():
        counts = (*lines_of(data), *((1,) if name == "cr_only" else ()))  # CR alone: a newline or not
        check = all_of(jsonl_count(*counts), clean_tokens)
        case = cli(
            f"score_file_{name}",
            "score",
            "RUN",
            "--json",
            "--file",
            "odd.txt",
            expect=ODD_EXPECT[name][2],
            setup=(put("odd.txt", data),),
            check=check,
            extra=name not in ODD_CORE["score"],
            timeout=120 if name.endswith("1mb") else 60,
        )
        cases.append(case)
    return cases


# ---------------------------------------------------------------- cases: inspect, plot, info, export


def inspect_cases() -> list[Case]:
    ins = ("inspect", "RUN", "--text", "the cat sat", "--json")
    x = {"expect": "either", "check": json_ok}
    return [
        cli("insp_ok", *ins, expect="ok", check=json_ok),
        cli("insp_npz", *ins, "--npz", "t.npz", expect="ok", check=files_exist("t.npz")),
        cli("insp_npz_onto_input", *ins, "--npz", "tiny.txt", **x),
        cli("insp_npz_missing_folder", *ins, "--npz", "nope/t.npz"),
        cli(
            "insp_plot",
            "inspect",
            "RUN",
            "--text",
            "the cat",
            "--plot",
            "g.png",
            expect="ok",
            check=files_exist("g.png"),
        ),
        cli("insp_plot_bad_extension", "inspect", "RUN", "--text", "the cat", "--plot", "g.txt"),
        cli("insp_plot_onto_run_config", "inspect", "RUN", "--text", "the cat", "--plot", "RUN/config.json"),
        cli("insp_text_empty", "inspect", "RUN", "--text", "", "--json", **x),
        cli(
            "insp_text_rtl_emoji",
            "inspect",
            "RUN",
            "--text",
            "\u05e9\u05dc\u05d5\u05dd \U0001f600",
            "--json",
            **x,
        ),
        cli("insp_text_invalid_utf8", "inspect", "RUN", "--text", b"the \xff cat", "--json", **x),
        cli("insp_no_text", "inspect", "RUN", "--json", **x),
        cli("insp_find_units", "inspect", "RUN", "--find-units", "--json", **x),
        cli("insp_find_units_and_text", "inspect", "RUN", "--find-units", "--text", "the cat", "--json", **x),
        cli("insp_find_units_suite_missing", "inspect", "RUN", "--find-units", "--suite", "nope.jsonl"),
        cli("insp_ablate_garbage", "inspect", "RUN", "--find-units", "--ablate", "abc"),
        cli("insp_ablate_negative", "inspect", "RUN", "--find-units", "--ablate", "-1"),
        cli("insp_ablate_1e30", "inspect", "RUN", "--find-units", "--ablate", "1e30"),
        cli("insp_layer_99", *ins, "--layer", "99"),
        cli("insp_layer_negative", *ins, "--layer", "-1", **x),
        cli("insp_layer_huge", *ins, "--layer", HUGE),
        cli("insp_top_0", *ins, "--top", "0"),
        cli("insp_top_huge", *ins, "--top", HUGE, **x),
        cli("insp_device_cuda", *ins, "--device", "cuda"),
    ]


def plot_info_cases() -> list[Case]:
    return [
        cli("plot_ok", "plot", "RUN", "--out", "c.png", expect="ok", check=files_exist("c.png")),
        cli(
            "plot_svg_same_run_twice",
            "plot",
            "RUN",
            "RUN",
            "--out",
            "c.svg",
            expect="ok",
            check=files_exist("c.svg"),
        ),
        cli(
            "plot_label_emoji",
            "plot",
            "RUN",
            "--label",
            "\U0001f600 \u05e9",
            "--out",
            "c.png",
            expect="ok",
            check=files_exist("c.png"),
        ),
        cli("plot_bad_extension", "plot", "RUN", "--out", "c.txt"),
        cli("plot_labels_mismatch", "plot", "RUN", "RUN", "--label", "a", "--out", "c.png"),
        cli("plot_onto_run_config", "plot", "RUN", "--out", "RUN/config.json"),
        cli("plot_onto_folder", "plot", "RUN", "--out", "RUN"),
        cli(
            "plot_onto_input_png",
            "plot",
            "RUN",
            "--out",
            "RUN/best.png",
            expect="either",
            check=files_exist("RUN/best.png"),
        ),
        cli(
            "plot_missing_folder",
            "plot",
            "RUN",
            "--out",
            "nope/c.png",
            expect="either",
            check=files_exist("nope/c.png"),
        ),
        cli("plot_run_missing", "plot", "nope", "--out", "c.png"),
        cli("plot_not_a_run", "plot", "shards", "--out", "c.png", setup=SHARDS),
        cli(
            "plot_metrics_empty",
            "plot",
            "RUN",
            "--out",
            "c.png",
            expect="either",
            setup=(damage("RUN/metrics.jsonl", "empty"),),
            check=files_exist("c.png"),
        ),
        cli(
            "plot_metrics_garbage",
            "plot",
            "RUN",
            "--out",
            "c.png",
            expect="either",
            setup=(damage("RUN/metrics.jsonl", "garbage"),),
            check=files_exist("c.png"),
        ),
        cli("plot_out_dash", "plot", "RUN", "--out", "-", expect="either"),
        cli("info_ok", "info", "RUN", expect="ok", check=stdout_has_text),
        cli("info_json", "info", "RUN", "--json", expect="ok", check=json_ok),
        cli("info_missing", "info", "nope"),
        cli("info_file", "info", "tiny.txt"),
        cli("info_hf_folder", "info", "hf", setup=HF_DIR),
        cli("info_empty_folder", "info", "empty", setup=(folder("empty"),)),
        cli("info_dash", "info", "-"),
        cli(
            "info_unicode_path",
            "info",
            "\u0440\u0443\u043d \U0001f600",
            "--json",
            expect="ok",
            setup=(from_base("RUN", "\u0440\u0443\u043d \U0001f600"),),
            check=json_ok,
        ),
        cli("info_symlink_loop", "info", "loop", setup=(symlink("loop", "loop"),)),
        cli("info_no_run", "info"),
        Case(id="cli_unknown_command", cmd="cli", args=("frobnicate",)),
        Case(id="cli_no_arguments", cmd="cli", args=(), expect="either"),
        Case(id="cli_version", cmd="cli", args=("--version",), expect="either"),
    ]


def export_cases() -> list[Case]:
    ts = ("export", "RUN", "--format", "torchscript", "--out")
    first = lstmlm_setup("export", "RUN", "--format", "torchscript", "--out", "deploy/m.pt")
    first_other = lstmlm_setup("export", "RUNC", "--format", "torchscript", "--out", "deploy/m.pt")
    onnx_files = ("deploy/m.onnx", "deploy/m.onnx.json", "deploy/m.step.onnx", "deploy/m.tokenizer.json")
    return [
        cli(
            "exp_torchscript",
            *ts,
            "m.pt",
            "--json",
            expect="ok",
            check=all_of(json_ok, files_exist("m.pt", "m.pt.json", "m.tokenizer.json")),
        ),
        cli(
            "exp_two_formats_one_folder",
            "export",
            "RUN",
            "--format",
            "onnx",
            "--out",
            "deploy/m.onnx",
            expect="either",
            setup=(folder("deploy"), first),
            check=files_exist("deploy/m.pt", *onnx_files),
            timeout=120,
        ),
        cli(
            "exp_two_runs_one_name",
            "export",
            "RUN",
            "--format",
            "onnx",
            "--out",
            "deploy/m.onnx",
            expect="either",
            setup=(from_base("RUNC"), folder("deploy"), first_other),
            check=files_exist(*onnx_files),
            timeout=120,
        ),
        cli("exp_last", *ts, "m.pt", "--last", expect="ok", check=files_exist("m.pt")),
        cli("exp_onto_run_weights", *ts, "RUN/model.safetensors"),
        cli(
            "exp_into_run_folder",
            *ts,
            "RUN/x.pt",
            expect="either",
            check=all_of(files_exist("RUN/x.pt"), run_ok("RUN")),
        ),
        cli(
            "exp_onto_run_tokenizer",
            "export",
            "RUN",
            "--format",
            "torchscript",
            "--out",
            "RUN/tokenizer.pt",
            expect="either",
            check=run_ok("RUN"),
        ),
        cli("exp_missing_folder", *ts, "nope/m.pt"),
        cli("exp_out_is_folder", *ts, "deploy", setup=(folder("deploy"),)),
        cli("exp_wrong_extension", *ts, "m.onnx", expect="either", check=files_exist("m.onnx")),
        cli("exp_no_extension", *ts, "m", expect="either"),
        cli("exp_out_dash", *ts, "-", expect="either"),
        cli("exp_format_unknown", "export", "RUN", "--format", "tflite", "--out", "m.tflite"),
        cli("exp_run_missing", "export", "nope", "--format", "torchscript", "--out", "m.pt"),
    ]


# ---------------------------------------------------------------- cases: damaged runs


def damaged_cases() -> list[Case]:
    ev = ("eval", "RUN", "--json")
    resume = ("train", "--out", "RUN", "--resume", "--max-steps", "25")
    rw = {"writes": ("RUN",), "check": all_of(step_is("RUN", 25), loads("RUN"))}
    weights = ("best", "model", "model.prev")

    def model(**kw: Any) -> Setup:
        return edit_json("RUN/config.json", lambda c: {**c, "model": {**c["model"], **kw}})

    return [
        cli(
            "dmg_best_truncated",
            *ev,
            expect="either",
            setup=(damage("RUN/best.safetensors", "truncate"),),
            check=json_ok,
        ),
        cli(
            "dmg_best_empty",
            *ev,
            expect="either",
            setup=(damage("RUN/best.safetensors", "empty"),),
            check=json_ok,
        ),
        cli(
            "dmg_best_garbage",
            *ev,
            expect="either",
            setup=(damage("RUN/best.safetensors", "garbage"),),
            check=json_ok,
        ),
        cli(
            "dmg_best_missing",
            *ev,
            expect="ok",
            setup=(damage("RUN/best.safetensors", "delete"),),
            check=json_ok,
        ),
        cli(
            "dmg_all_weights_truncated",
            *ev,
            setup=tuple(damage(f"RUN/{n}.safetensors", "truncate") for n in weights),
        ),
        cli(
            "dmg_all_weights_missing",
            *ev,
            setup=tuple(damage(f"RUN/{n}.safetensors", "delete") for n in weights),
        ),
        cli("dmg_best_hf_weights", *ev, setup=(put("RUN/best.safetensors", safetensors_bytes()),)),
        cli("dmg_config_empty", *ev, setup=(damage("RUN/config.json", "empty"),)),
        cli("dmg_config_hf", *ev, setup=(put_json("RUN/config.json", HF_CONFIG),)),
        cli("dmg_config_null", *ev, setup=(put("RUN/config.json", "null"),)),
        cli("dmg_config_array", *ev, setup=(put("RUN/config.json", "[1, 2]"),)),
        cli("dmg_config_missing", *ev, setup=(damage("RUN/config.json", "delete"),)),
        cli("dmg_config_nhid_changed", *ev, setup=(model(nhid=32),)),
        cli("dmg_config_cell_unknown", *ev, setup=(model(cell="lstmx"),)),
        cli("dmg_config_ntoken_huge", *ev, setup=(model(ntoken=10**12),)),
        cli("dmg_tokenizer_garbage", *ev, setup=(damage("RUN/tokenizer.json", "garbage"),)),
        cli("dmg_tokenizer_empty", *ev, setup=(damage("RUN/tokenizer.json", "empty"),)),
        cli("dmg_tokenizer_missing", *ev, setup=(damage("RUN/tokenizer.json", "delete"),)),
        cli(
            "dmg_tokenizer_bigger_vocab",
            "score",
            "RUN",
            "--text",
            "the extra5 cat",
            setup=(tokenizer_plus(100),),
        ),
        cli("dmg_tokenizer_hf", *ev, setup=(put_json("RUN/tokenizer.json", HF_TOKENIZER),)),
        cli("dmg_gen_tokenizer_garbage", "generate", "RUN", setup=(damage("RUN/tokenizer.json", "garbage"),)),
        cli("dmg_agr_config_hf", "agreement", "RUN", setup=(put_json("RUN/config.json", HF_CONFIG),)),
        cli(
            "dmg_score_config_empty",
            "score",
            "RUN",
            "--text",
            "the cat",
            setup=(damage("RUN/config.json", "empty"),),
        ),
        cli(
            "dmg_inspect_weights_missing",
            "inspect",
            "RUN",
            "--text",
            "the",
            setup=tuple(damage(f"RUN/{n}.safetensors", "delete") for n in weights),
        ),
        cli(
            "dmg_info_best_truncated",
            "info",
            "RUN",
            "--json",
            expect="either",
            setup=(damage("RUN/best.safetensors", "truncate"),),
            check=json_ok,
        ),
        cli("dmg_info_config_empty", "info", "RUN", setup=(damage("RUN/config.json", "empty"),)),
        cli(
            "dmg_export_best_truncated",
            "export",
            "RUN",
            "--format",
            "torchscript",
            "--out",
            "m.pt",
            setup=(damage("RUN/best.safetensors", "truncate"),),
        ),
        cli("dmg_run_symlink_loop", "eval", "loop", setup=(symlink("loop", "loop"),)),
        cli(
            "dmg_resume_state_truncated",
            *resume,
            expect="either",
            setup=(damage("RUN/train_state.pt", "truncate"),),
            **rw,
        ),
        cli(
            "dmg_resume_states_truncated",
            *resume,
            setup=(damage("RUN/train_state.pt", "truncate"), damage("RUN/train_state.prev.pt", "truncate")),
        ),
        cli(
            "dmg_resume_model_truncated",
            *resume,
            expect="either",
            setup=(damage("RUN/model.safetensors", "truncate"),),
            **rw,
        ),
        cli(
            "dmg_resume_state_missing",
            *resume,
            expect="either",
            setup=(damage("RUN/train_state.pt", "delete"),),
            **rw,
        ),
        cli(
            "dmg_resume_metrics_garbage",
            *resume,
            expect="either",
            setup=(damage("RUN/metrics.jsonl", "garbage"),),
            **rw,
        ),
        cli(
            "dmg_resume_data_json_garbage",
            *resume,
            expect="either",
            setup=(damage("RUN/data.json", "garbage"),),
            **rw,
        ),
        cli(
            "dmg_eval_data_json_garbage",
            *ev,
            expect="either",
            setup=(damage("RUN/data.json", "garbage"),),
            check=json_ok,
        ),
        cli("dmg_resume_lock_live_pid", *resume, expect="either", setup=(with_lock_pid(os.getpid),), **rw),
        cli(
            "dmg_resume_lock_dead_pid", *resume, expect="ok", setup=(with_lock_pid(lambda: 4_000_000),), **rw
        ),
        cli("dmg_resume_config_hf", *resume, setup=(put_json("RUN/config.json", HF_CONFIG),)),
    ]


# ---------------------------------------------------------------- cases: the Python API


def api_cases() -> list[Case]:
    x = {"expect": "either"}
    cuda = "import torch\nif torch.cuda.is_available():\n    print('skipped: a GPU is here'); sys.exit(0)\n"
    lf_crlf = (put("lf.txt", BASE60), put("crlf.txt", ODD["crlf"]))
    equal = "a, b = lm.perplexity(Path('lf.txt')), lm.perplexity(Path('crlf.txt'))\n"
    equal += "print(a.tokens == b.tokens and abs(a.loss - b.loss) < 1e-6)"
    return [
        api(
            "api_generate",
            "print(ascii(lm.generate('the cat', max_tokens=5, seed=1)))",
            expect="ok",
            check=stdout_has_text,
        ),
        api("api_load_cuda", cuda + "lstmlm.load('RUN', device='cuda')", load=False),
        api("api_load_tpu", "lstmlm.load('RUN', device='tpu')", load=False),
        api("api_load_weights_worst", "lstmlm.load('RUN', weights='worst')", load=False),
        api(
            "api_load_weights_last",
            "print(lstmlm.load('RUN', weights='last').generate('the', max_tokens=2))",
            load=False,
            expect="ok",
        ),
        api("api_load_missing", "lstmlm.load('nope')", load=False),
        api("api_load_config_file", "lstmlm.load('RUN/config.json')", load=False),
        api("api_load_hf", "lstmlm.load('hf')", load=False, setup=HF_DIR),
        api(
            "api_load_truncated_weights",
            "lstmlm.load('RUN')",
            load=False,
            setup=(
                damage("RUN/best.safetensors", "truncate"),
                damage("RUN/model.safetensors", "truncate"),
                damage("RUN/model.prev.safetensors", "truncate"),
            ),
        ),
        api("api_generate_temperature_nan", "lm.generate('the', temperature=float('nan'))"),
        api("api_generate_temperature_negative", "lm.generate('the', temperature=-1.0)"),
        api(
            "api_generate_temperature_inf",
            "print(ascii(lm.generate('the', max_tokens=3, temperature=float('inf'))))",
            **x,
        ),
        api(
            "api_generate_stream_nan",
            "print(ascii(''.join(lm.generate('the', max_tokens=3, stream=True, temperature=float('nan')))))",
        ),
        api("api_generate_seed_2_70", "lm.generate('the', max_tokens=3, seed=2**70)"),
        api("api_generate_seed_negative", "print(ascii(lm.generate('the', max_tokens=3, seed=-1)))", **x),
        api("api_generate_top_k_negative", "lm.generate('the', max_tokens=3, top_k=-1)"),
        api("api_generate_top_p_2", "lm.generate('the', max_tokens=3, top_p=2.0)"),
        api("api_generate_max_tokens_0", "print(ascii(lm.generate('the', max_tokens=0)))", **x),
        api("api_generate_max_tokens_negative", "lm.generate('the', max_tokens=-1)"),
        api("api_generate_lone_surrogate", "print(ascii(lm.generate('the \\ud800 cat', max_tokens=3)))", **x),
        api("api_generate_nul", "print(ascii(lm.generate('the \\x00 cat', max_tokens=3)))", **x),
        api("api_next_token_probs_k_negative", "lm.next_token_probs('the', k=-1)"),
        api("api_next_token_probs_k_0", "print(ascii(lm.next_token_probs('the', k=0)))", **x),
        api(
            "api_next_token_probs_k_huge",
            "print(len(lm.next_token_probs('the', k=10**9)))",
            expect="either",
            check=lambda d, r, w: (
                None if r.out.strip().isdigit() and int(r.out) <= 17 else f"{r.out.strip()!r} tokens"
            ),
        ),
        api("api_next_token_probs_empty_prefix", "print(ascii(lm.next_token_probs('', k=3)))", **x),
        api(
            "api_perplexity_latin1_file",
            "lm.perplexity(Path('latin1.txt'))",
            setup=(put("latin1.txt", ODD["latin1"]),),
        ),
        api("api_perplexity_missing_file", "lm.perplexity(Path('nope.txt'))"),
        api("api_perplexity_folder", "lm.perplexity(Path('RUN'))"),
        api("api_perplexity_empty_text", "print(lm.perplexity('').perplexity)", **x),
        api(
            "api_perplexity_file_tokens",
            "print(lm.perplexity(Path('h.txt')).tokens)",
            expect="ok",
            setup=(put("h.txt", HUNDRED),),
            check=printed_about(ntokens(HUNDRED)),
        ),
        api("api_perplexity_crlf_equals_lf", equal, expect="ok", setup=lf_crlf, check=mentions("true")),
        api("api_score_two", "print(len(lm.score(['the cat', 'a dog'])))", expect="ok", check=mentions("2")),
        api("api_score_empty_list", "print(lm.score([]))", **x),
        api("api_score_lone_surrogate", "print(len(lm.score(['the \\ud800'])))", **x),
    ]


# ---------------------------------------------------------------- cases: signals and two writers


def spawn(args: tuple[str, ...], d: Path, w: World, name: str) -> subprocess.Popen[bytes]:
    """Start lstmlm in the background, its output to NAME.out / NAME.err in the case folder."""
    with open(d / f"{name}.out", "wb") as out, open(d / f"{name}.err", "wb") as err:
        return subprocess.Popen(
            [*LSTMLM, *args],
            cwd=d,
            env=w.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )


def finish(p: subprocess.Popen[bytes], timeout: float) -> tuple[int | None, bool]:
    """Wait for ``p``; past ``timeout`` kill its process group. (exit code, timed out)."""
    try:
        return p.wait(timeout), False
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        return p.wait(), True


def wait_for(ready: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ready():
            return True
        time.sleep(0.05)
    return False


def reading(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open or mapped."""
    target = str(path.resolve())
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
        if any(
            os.readlink(f"/proc/{pid}/fd/{fd}") == target
            for fd in fds
            if os.path.exists(f"/proc/{pid}/fd/{fd}")
        ):
            return True
        return target in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def outputs(d: Path, name: str) -> tuple[str, str]:
    return tuple((d / f"{name}.{ext}").read_bytes().decode("utf-8", "replace") for ext in ("out", "err"))  # type: ignore[return-value]


def stop(p: subprocess.Popen[bytes], sig: int, twice: bool = False) -> tuple[int | None, bool, float]:
    """Send ``sig`` (twice, 0.2 s apart) and wait up to 30 s: (exit code, timed out, seconds to stop)."""
    start = time.monotonic()
    if p.poll() is None:
        p.send_signal(sig)
    if twice:
        time.sleep(0.2)
        if p.poll() is None:
            p.send_signal(sig)
    rc, hung = finish(p, 30)
    return rc, hung, time.monotonic() - start


def resumable(d: Path, w: World, name: str) -> str | None:
    """``train --resume`` continues the run in ``name`` by two steps."""
    step = info_step(d, w, name)
    if step is None:
        return f"lstmlm info {name} fails after the signal"
    p = quick([*LSTMLM, "train", "--out", name, "--resume", "--max-steps", str(step + 2)], d, w)
    if p.returncode != 0:
        return f"resume fails: {last_line(p.stderr)}"
    got = info_step(d, w, name)
    return None if got == step + 2 else f"resume ended at step {got}, not {step + 2}"


def signal_while_reading(sig: int) -> Callable[[Path, World], Result]:
    def run(d: Path, w: World) -> Result:
        big = d / "big.txt"
        big.write_text(big_corpus(sig))
        p = spawn(("train", "--data", "big.txt", "--out", "R", *TINY), d, w, "train")
        try:
            seen = wait_for(lambda: reading(p.pid, big) or p.poll() is not None, 90) and p.poll() is None
            rc, hung, took = stop(p, sig)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        problems = [] if seen else ["never saw train reading big.txt"]
        problems += [f"stopped {took:.1f} s after the signal"] if took > 10 else []
        if (d / "R").exists():
            problems.append(f"left R/ behind ({', '.join(sorted(os.listdir(d / 'R')))[:80]})")
        return Result(rc, *outputs(d, "train"), took, hung, problem="; ".join(problems) or None)

    return run


def signal_while_training(sig: int, twice: bool = False) -> Callable[[Path, World], Result]:
    def run(d: Path, w: World) -> Result:
        p = spawn(("train", "--data", "tiny.txt", "--out", "R", *TINY, *LONG), d, w, "train")
        try:
            saved = wait_for(lambda: (d / "R" / "train_state.pt").exists() or p.poll() is not None, 90)
            time.sleep(0.5)
            rc, hung, took = stop(p, sig, twice)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        problems = [] if saved and rc is not None else ["never saw a checkpoint"]
        problems += [f"stopped {took:.1f} s after the signal"] if took > 10 else []
        problems += [p for p in [resumable(d, w, "R")] if p]
        return Result(rc, *outputs(d, "train"), took, hung, problem="; ".join(problems) or None)

    return run


def interrupt_generate(d: Path, w: World) -> Result:
    p = spawn(("generate", "RUN", "--max-tokens", "100000000"), d, w, "generate")
    try:
        wait_for(lambda: (d / "generate.out").stat().st_size > 0 or p.poll() is not None, 60)
        time.sleep(0.5)
        rc, hung, took = stop(p, signal.SIGINT)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    out, err = outputs(d, "generate")
    return Result(
        rc, out[-2000:], err, took, hung, problem=f"stopped {took:.1f} s after SIGINT" if took > 10 else None
    )


def second_writer(*flags: str) -> Callable[[Path, World], Result]:
    """A second ``train --out R FLAGS`` while a first one trains there: refused, the first unharmed."""

    def run(d: Path, w: World) -> Result:
        first = spawn(("train", "--data", "tiny.txt", "--out", "R", *TINY, *LONG), d, w, "first")
        try:
            wait_for(lambda: (d / "R" / "train_state.pt").exists() or first.poll() is not None, 90)
            argv = [*LSTMLM, "train", "--data", "tiny.txt", "--out", "R", *TINY, *flags]
            second = execute(argv, d, w.env, None, 90)
            alive = first.poll() is None
            rc, hung, took = stop(first, signal.SIGINT)
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
        problems = [] if alive else [f"the first train died: {last_line(outputs(d, 'first')[1])}"]
        problems += [] if rc == 130 else [f"the first train exited {rc} on SIGINT"]
        problems += [p for p in [loadable(d, w, "R")] if p]
        second.problem = "; ".join(problems) or None
        second.changed = [] if (d / "R" / "config.json").exists() else ["R/config.json"]
        return second

    return run


def signal_cases() -> list[Case]:
    reading = "train --data big.txt (20 MB), {} once it reads the file: exit {} in seconds, no R/ left"
    training = "train [long], {} after a checkpoint: exit {} in seconds, then resume +2 steps"
    second = "train --out R while another trains there; second with {}: refused, the first unharmed"
    return [
        special(
            "sig_int_while_reading",
            reading.format("SIGINT", 130),
            signal_while_reading(signal.SIGINT),
            ok_rc=(130,),
        ),
        special(
            "sig_term_while_reading",
            reading.format("SIGTERM", 143),
            signal_while_reading(signal.SIGTERM),
            ok_rc=(143,),
        ),
        special(
            "sig_int_while_training",
            training.format("SIGINT", 130),
            signal_while_training(signal.SIGINT),
            ok_rc=(130,),
        ),
        special(
            "sig_term_while_training",
            training.format("SIGTERM", 143),
            signal_while_training(signal.SIGTERM),
            ok_rc=(143,),
        ),
        special(
            "sig_int_twice_while_training",
            training.format("SIGINT twice", 130),
            signal_while_training(signal.SIGINT, twice=True),
            ok_rc=(130,),
        ),
        special(
            "sig_int_generate",
            "generate RUN --max-tokens 1e8, SIGINT while it streams: exit 130 in seconds",
            interrupt_generate,
            ok_rc=(130,),
        ),
        special(
            "two_trains_overwrite", second.format("--overwrite"), second_writer("--overwrite"), expect="error"
        ),
        special("two_trains_resume", second.format("--resume"), second_writer("--resume"), expect="error"),
    ]


#: variations of a core case, run only with --all (besides the number and odd-file tables' own)
EXTRA_IDS = """
    train_default_corpus train_data_file_slash train_data_devnull train_data_empty_string
    train_data_long_name train_data_two_lines train_data_newline_name train_data_bytes_name
    train_data_hub_offline train_out_is_file train_out_hf train_out_empty_string train_out_newline
    train_out_unicode train_out_nested_missing train_out_dash train_resume_missing
    train_resume_empty_folder train_resume_hf train_resume_other_model train_config_folder
    train_config_empty train_config_unknown_table train_config_wrong_type train_config_nan
    train_config_nul train_config_invalid_utf8 train_config_bom train_cell_upper_case
    train_cutoffs_garbage train_cutoffs_beyond_vocab train_layer_sizes_gap train_layer_sizes_negative
    train_weight_drop_mingru train_char_with_pretokenize train_bpe_vocab_10 train_device_mps
    train_batch_over_text train_extra_argument train_text_column_on_file train_tensorboard
    eval_data_splits_valid eval_split_bogus eval_last eval_device_cuda eval_run_is_file
    eval_run_empty_folder eval_run_empty_string eval_cache eval_cache_flags_without_cache
    gen_prompt_whitespace gen_prompt_bom gen_prompt_unknown_words gen_agreement_and_prompt
    gen_device_cuda gen_json_flag
    agr_by_commas agr_pairs_missing_folder agr_suite_empty_string agr_suite_not_strings
    agr_suite_json_array agr_suite_empty_sentences agr_suite_blank_lines agr_suite_folder
    agr_suite_run_folder agr_suite_long_range agr_device_cuda
    score_file_context score_text_empty score_text_rtl_emoji score_text_newline_inside
    score_file_devnull score_device_cuda
    insp_npz_onto_input insp_plot insp_text_empty insp_text_rtl_emoji insp_find_units_and_text
    insp_ablate_negative insp_ablate_1e30 insp_layer_negative insp_layer_huge insp_top_huge
    insp_device_cuda
    plot_svg_same_run_twice plot_label_emoji plot_onto_input_png info_dash info_file
    exp_last exp_onto_run_tokenizer exp_no_extension exp_out_dash exp_run_missing
    dmg_best_empty dmg_best_garbage dmg_all_weights_truncated dmg_config_null dmg_config_array
    dmg_config_cell_unknown dmg_tokenizer_empty dmg_tokenizer_missing dmg_gen_tokenizer_garbage
    dmg_agr_config_hf dmg_score_config_empty dmg_inspect_weights_missing dmg_info_best_truncated
    dmg_run_symlink_loop dmg_resume_model_truncated dmg_resume_state_missing
    dmg_resume_data_json_garbage dmg_resume_config_hf
    api_load_tpu api_load_weights_last api_generate_temperature_negative
    api_generate_temperature_inf api_generate_seed_negative api_generate_max_tokens_0
    api_generate_max_tokens_negative api_next_token_probs_k_0 api_next_token_probs_empty_prefix
    api_perplexity_empty_text api_score_two api_score_lone_surrogate
"""
EXTRA = frozenset(EXTRA_IDS.split())


def all_cases(full: bool = True) -> list[Case]:
    """Every case (``full``), or the core sweep: without the EXTRA ids and the tables' extras."""
    groups = (train_data_cases, train_odd_file_cases, train_out_cases, train_config_cases, train_number_cases)
    groups += (eval_cases, eval_odd_file_cases, eval_number_cases, generate_cases, generate_number_cases)
    groups += (agreement_cases, score_cases, score_odd_file_cases, inspect_cases, plot_info_cases)
    groups += (export_cases, damaged_cases, api_cases, signal_cases)
    cases = [case for group in groups for case in group()]
    ids = Counter(case.id for case in cases)
    assert all(n == 1 for n in ids.values()), [i for i, n in ids.items() if n > 1]
    assert ids.keys() >= EXTRA, sorted(EXTRA - ids.keys())
    cases = [replace(case, extra=True) if case.id in EXTRA else case for case in cases]
    return [case for case in cases if full or not case.extra]


# ---------------------------------------------------------------- running and sorting


def execute(argv: list[Arg], cwd: Path, env: dict[str, str], stdin: bytes | None, timeout: float) -> Result:
    start = time.monotonic()
    p = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = p.communicate(stdin, timeout=timeout)
        hung = False
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        hung = True
    decode = lambda b: b.decode("utf-8", "replace")  # noqa: E731
    return Result(p.returncode, decode(out), decode(err), time.monotonic() - start, hung)


def argv_of(case: Case) -> list[Arg]:
    if case.runner == "api":
        return [sys.executable, "-c", case.args[0]]
    if case.runner == "sh":
        prelude = f'lstmlm() {{ {shlex.quote(sys.executable)} -m lstmlm "$@"; }}\n'
        return ["bash", "-c", prelude + str(case.args[0])]
    return [*LSTMLM, *case.args]


def snapshot(root: Path, skip: tuple[str, ...]) -> dict[str, str]:
    """Every file, folder and link under ``root`` (paths relative) with its hash or kind."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if name.endswith(".lock") or any(rel == s or rel.startswith(s + "/") for s in skip):
                continue
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode):
                seen[rel] = sha256(path.read_bytes()).hexdigest()
            else:
                seen[rel] = (
                    "link " + os.readlink(path)
                    if stat.S_ISLNK(mode)
                    else "folder"
                    if stat.S_ISDIR(mode)
                    else "other"
                )
    return seen


def run_case(case: Case, w: World) -> Result:
    d = w.base / "cases" / case.id
    try:
        d.mkdir(parents=True)
        shutil.copytree(w.base / "RUN", d / "RUN")
        shutil.copy2(w.base / "tiny.txt", d / "tiny.txt")
        for setup in case.setup:
            setup(d, w)
        before = snapshot(d, case.writes)
    except (OSError, subprocess.SubprocessError) as e:
        return Result(None, category="harness", note=f"setup failed: {type(e).__name__}: {e}"[:200])
    env = {**w.env, **{k: v.format(dir=d) for k, v in case.env}}
    if case.special is not None:
        r = case.special(d, w)
    else:
        r = execute(argv_of(case), d, env, case.stdin, case.timeout)
    after = snapshot(d, case.writes)
    r.changed += [p for p, h in before.items() if after.get(p) != h]
    if r.rc in case.ok_rc and case.check and case.expect != "error" and not r.timed_out and r.problem is None:
        try:
            r.problem = case.check(d, r, w)
        except Exception as e:  # a check that cannot read what it checks: the result is wrong
            r.problem = f"check could not read the result: {type(e).__name__}: {e}"[:200]
    r.category, r.note = categorise(case, r)
    return r


def error_lines(err: str) -> list[str]:
    return [line.strip() for line in err.splitlines() if line.strip() and not line.startswith("warning:")]


def categorise(case: Case, r: Result) -> tuple[str, str]:
    """(category, note) of a finished case; see the module docstring."""
    lines = error_lines(r.err)
    first = lines[0] if lines else ""
    then = f" | {first}" if first else ""
    if r.changed:
        return "d", f"changed or gone: {', '.join(r.changed[:4])}{then}"
    if r.timed_out:
        return "b", f"no exit after {r.seconds:.0f} s{then}"
    if "Traceback (most recent call last)" in r.err:
        return "b", f"traceback: {last_line(r.err)}"
    rc = r.rc
    if rc is not None and rc < 0 and 128 - rc in case.ok_rc and case.ok_rc != (0,):
        rc = 128 - rc  # killed by the very signal a signal case sent: a shell shows 128 + signal
        first = f"killed by signal {-r.rc} (shell status {rc}){then}"
    elif "internal error" in r.err.lower() or rc == 2 or (rc is not None and rc < 0):
        return "b", f"exit {rc}: {first}"
    if rc in case.ok_rc:
        if case.expect == "error":
            return "c", f"exit {rc} where an error was expected{then}"
        return ("c", r.problem) if r.problem else ("ok", first)
    if rc == 0:
        return "c", f"exit 0, expected exit {'/'.join(map(str, case.ok_rc))}" + (
            f" | {r.problem}" if r.problem else ""
        )
    if len(lines) != 1:
        return "b", f"{len(lines)} lines on stderr (exit {rc}): {first}"
    if case.expect == "ok" or case.ok_rc != (0,):
        return "c", f"refused (exit {rc}): {first}"
    return ("c", f"{r.problem}{then}") if r.problem else ("a", first)


# ---------------------------------------------------------------- the world


def prepare(base: Path) -> World:
    """tiny.txt and three runs: RUN (word, checkpoints every 5 steps, so .prev files exist), RUNMV
    (its corpus since moved away) and RUNC (char tokenizer), trained at once."""
    env = thread_env(1, LSTMLM_CACHE=str(base / "cache"), HF_HOME=str(base / "hf"), COLUMNS="120")
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONWARNINGS="ignore::DeprecationWarning")
    env.pop("LSTMLM_DEBUG", None)
    (base / "tiny.txt").write_text(TINY_TEXT)
    (base / "mv").mkdir()
    (base / "mv" / "c.txt").write_text(MV_TEXT)
    runs = {
        "RUN": ("--data", "tiny.txt", "--max-steps", "20", "--save-every", "5"),
        "RUNMV": ("--data", "mv/c.txt", "--max-steps", "10", "--save-every", "5"),
        "RUNC": ("--data", "tiny.txt", "--tokenizer", "char", "--max-steps", "4"),
    }
    w = World(base, env)
    procs = {
        name: spawn(("train", *TINY, *args, "--out", name), base, w, name) for name, args in runs.items()
    }
    for name, p in procs.items():
        if finish(p, 300)[0] != 0:
            sys.exit(f"preparing {name} failed:\n{outputs(base, name)[1]}")
    shutil.rmtree(base / "mv")  # RUNMV's corpus has moved (cases get it as new/c.txt)
    return w


# ---------------------------------------------------------------- report


def show(case: Case) -> str:
    """The case's input, short: TINY and LONG as [tiny] and [long], odd characters escaped."""
    if case.runner == "special":
        return str(case.args[0])
    if case.runner == "api":
        body = case.args[0].split("try:\n", 1)[1].split("\nexcept lstmlm.LstmlmError")[0]
        lines = [
            line.strip()
            for line in body.splitlines()
            if line.strip() and "lm = lstmlm.load('RUN'" not in line
        ]
        return "py: " + "; ".join(lines)
    if case.runner == "sh":
        return "sh: " + str(case.args[0])
    words = " ".join(
        shlex.quote(a) if isinstance(a, str) and a.isprintable() else ascii(a) for a in case.args
    )
    words = words.replace(" ".join(TINY), "[tiny]").replace(" ".join(LONG), "[long]")
    text = "lstmlm " + words + (" < stdin" if case.stdin is not None else "")
    return text


def cell(s: str, width: int) -> str:
    s = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in s)
    s = s if len(s) <= width else s[: width - 1] + "…"
    return s.replace("|", "\\|")


def table(cases: list[Case], results: list[Result]) -> str:
    rows = ["| case | input | exit | cat | note |", "|---|---|---|---|---|"]
    for case, r in zip(cases, results, strict=True):
        rc = "timeout" if r.timed_out else "-" if r.rc is None else str(r.rc)
        rows.append(f"| {case.id} | `{cell(show(case), 90)}` | {rc} | {r.category} | {cell(r.note, 110)} |")
    return "\n".join(rows)


def summary(cases: list[Case], results: list[Result]) -> str:
    counts = Counter(r.category for r in results)
    line = ", ".join(
        f"{cat} {counts.get(cat, 0)}" for cat in CATEGORIES if cat != "harness" or counts.get(cat)
    )
    per = Counter(case.cmd for case in cases)
    return f"**{len(cases)} cases**: {line}\n\nCases per command: " + ", ".join(
        f"{k} {v}" for k, v in per.most_common()
    )


def per_command(cases: list[Case], results: list[Result]) -> str:
    cats = [c for c in CATEGORIES if any(r.category == c for r in results)]
    rows = ["| command | cases | " + " | ".join(cats) + " |", "|---" * (len(cats) + 2) + "|"]
    for cmd in dict.fromkeys(case.cmd for case in cases):
        mine = [r.category for case, r in zip(cases, results, strict=True) if case.cmd == cmd]
        rows.append(f"| {cmd} | {len(mine)} | " + " | ".join(str(mine.count(c)) for c in cats) + " |")
    return "\n".join(rows)


def write(out: Path, cases: list[Case], results: list[Result], seconds: float) -> str:
    out.mkdir(parents=True, exist_ok=True)
    text = "# lstmlm input sweep\n\n" + summary(cases, results) + f" ({seconds:.0f} s)\n\n"
    text += per_command(cases, results) + "\n\n" + table(cases, results) + "\n"
    (out / "sweep.md").write_text(text)
    records = [
        {
            "id": case.id,
            "command": case.cmd,
            "input": show(case),
            "expect": case.expect,
            "exit": r.rc,
            "timed_out": r.timed_out,
            "category": r.category,
            "note": r.note,
            "problem": r.problem,
            "changed": r.changed,
            "seconds": round(r.seconds, 2),
            "stdout": r.out[:1000],
            "stderr": r.err[-3000:],
        }
        for case, r in zip(cases, results, strict=True)
    ]
    (out / "sweep.json").write_text(json.dumps({"seconds": seconds, "cases": records}, indent=1) + "\n")
    return text


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="folder for sweep.md and sweep.json")
    p.add_argument("--jobs", type=int, default=2, help="cases at once, one thread each (default 2)")
    p.add_argument("--all", action="store_true", help="also the variations (about twice the cases and time)")
    p.add_argument("--only", default="", help="run the cases whose id matches this regular expression")
    p.add_argument("--keep", action="store_true", help="keep the temp folder (its path is printed)")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, resource.getrlimit(resource.RLIMIT_AS)[1]))
    # children get SIGINT's default action even where this sweep was started with it ignored (nohup,
    # a background job), as from a terminal: otherwise a command that counts on Python's
    # KeyboardInterrupt would ignore the sweep's SIGINT
    signal.signal(signal.SIGINT, signal.default_int_handler)
    cases = [case for case in all_cases(args.all) if re.search(args.only, case.id)]
    base = Path(tempfile.mkdtemp(prefix="input_sweep_"))
    start = time.monotonic()
    try:
        w = prepare(base)
        shared = snapshot(base, ("cases", "cache", "hf"))  # what every case's RUN copy points back to
        print(f"{len(cases)} cases in {base}", file=sys.stderr, flush=True)
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(lambda case: run_case(case, w), cases))
        after = snapshot(base, ("cases", "cache", "hf"))
        lost = [path for path, digest in shared.items() if after.get(path) != digest]
    finally:
        if args.keep:
            print(f"kept {base}", file=sys.stderr)
        else:
            for path in (base, *base.rglob("*")):
                if path.is_dir() and not path.is_symlink():
                    path.chmod(0o755)
            shutil.rmtree(base, ignore_errors=True)
    print(write(args.out, cases, results, time.monotonic() - start))
    if lost:  # no case names these: a command wrote outside its case folder
        print(f"warning: the shared folder changed during the sweep: {', '.join(lost)}", file=sys.stderr)


if __name__ == "__main__":
    main()
