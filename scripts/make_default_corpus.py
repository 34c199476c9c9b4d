"""Write the default agreement corpus and minimal-pair suites to ``data/default/``.

The generator (``lstmlm.data.grammar``) is the source of truth: re-running this script
reproduces the committed files byte for byte.

    python -m scripts.make_default_corpus [--out data/default]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lstmlm.data.grammar.sentences import corpus_text, default_corpus
from lstmlm.data.grammar.suites import default_suites, jsonl_text
from scripts.common import ROOT

DEFAULT_OUT = ROOT / "data" / "default"


def render(corpus: dict[str, list[str]], suites: dict[str, list[dict]]) -> dict[str, str]:
    """File name -> text for the corpus splits and the suites."""
    files = {f"{split}.txt": corpus_text(lines) for split, lines in corpus.items()}
    files.update({f"{name}.jsonl": jsonl_text(pairs) for name, pairs in suites.items()})
    return files


def default_files() -> dict[str, str]:
    """The committed files, freshly generated."""
    return render(default_corpus(), default_suites())


def write_files(files: dict[str, str], out: Path) -> None:
    """Write UTF-8 files with ``\\n`` line ends (identical bytes on every platform)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8", newline="\n")


def describe(name: str, text: str) -> str:
    """One line of sizes: bytes, lines, words, vocabulary."""
    lines = text.splitlines()
    head = f"{name:28} {len(text.encode()):>9,} bytes {len(lines):>7,} lines"
    if not name.endswith(".txt"):
        return head
    words = [w for line in lines for w in line.split()]
    return f"{head} {len(words):>9,} words {len(set(words)):>6,} types"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: data/default)")
    args = parser.parse_args(argv)
    files = default_files()
    write_files(files, args.out)
    for name, text in files.items():
        print(describe(name, text))
    total = sum(len(text.encode()) for text in files.values())
    print(f"{'total':28} {total:>9,} bytes -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
