"""Fine-tuning against training from scratch, at the same training time on the target text.

The parent is a WikiText-2 model (``valid.txt`` as its training text, ``test.txt`` as its
test); the target is PTB (``ptb.valid.txt`` as training text, ``ptb.test.txt`` scored).
Every target run gets the same wall-clock training budget (``--minutes``, 2 threads on a
quiet machine: as much CPU time), the same architecture (the parent's), seed and
optimizer; they differ only in where the weights start and in the ULMFiT pieces:

    scratch          random weights, a vocabulary from the PTB text
    scratch-extend   random weights, extend's vocabulary: fine-tuned from a parent trained
                     for one step (the fair yardstick for extend: same vocabulary, same
                     cost per step)
    keep             --init-from the parent, its vocabulary (PTB words it lacks: <unk>)
    extend           --init-from, the parent's vocabulary plus PTB's (new rows: the mean row)
    +stlr            slanted triangular learning rates (Howard & Ruder 2018, eq. 3)
    +layer-decay     discriminative rates, lr / 2.6 per layer down (ibid., sec. 3.2)
    +unfreeze        gradual unfreezing, one more layer every --unfreeze-every steps
    ulmfit           all three

Vocabularies differ between the runs, so the table gives, beside test perplexity, the
share of PTB's test tokens each model reads as ``<unk>``: predicting the one ``<unk>``
class is easier than predicting the word itself, which flatters a smaller vocabulary.

    python -m scripts.experiments.finetune_experiment [--parent-minutes 6] [--minutes 2]
        [--variants scratch keep extend ulmfit] [--work DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import lstmlm
from scripts.common import SHARED_DATA

WIKITEXT, PTB = SHARED_DATA / "wikitext-2", SHARED_DATA / "ptb"
PIECES: dict[str, dict[str, Any]] = {
    "stlr": {"schedule": "stlr"},
    "layer-decay": {"layer_lr_decay": 2.6},
    "unfreeze": {},  # filled from --unfreeze-every
}
VARIANTS: tuple[str, ...] = ("scratch", "scratch-extend", "keep", "extend")
VARIANTS += ("+stlr", "+layer-decay", "+unfreeze", "ulmfit", "ulmfit-keep")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--parent-minutes", type=float, default=6.0, help="the parent's training minutes")
    p.add_argument("--minutes", type=float, default=2.0, help="each target run's training minutes")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--nhid", type=int, default=256, help="hidden and embedding size (tied)")
    p.add_argument("--nlayers", type=int, default=2)
    p.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate of every run")
    p.add_argument("--unfreeze-every", type=int, default=100, help="steps between unfreezing layers")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", type=Path, help="keep the runs here (default: a temporary folder)")
    p.add_argument("--reuse-parent", action="store_true", help="use the parent already in --work")
    return p.parse_args()


def common(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "emsize": args.nhid, "nhid": args.nhid, "nlayers": args.nlayers, "tied": True, "dropout": 0.3,
        "optimizer": "adamw", "lr": args.lr, "bptt": 35, "batch_size": 20, "eval_every": 200,
        "epochs": 1000, "threads": args.threads, "overwrite": True,
    }  # fmt: skip


def target_options(variant: str, parent: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The options of one target run beside ``common``."""
    if variant == "scratch":
        return {}
    if variant == "scratch-extend":
        untrained = parent.parent / "untrained-parent"
        return {"init_from": str(untrained), "init_weights": "last", "vocab": "extend"}
    pieces = {"stlr", "layer-decay", "unfreeze"} if variant.startswith("ulmfit") else set()
    if variant.startswith("+"):
        pieces = {variant[1:]}
    options: dict[str, Any] = {"init_from": str(parent), "vocab": "keep" if "keep" in variant else "extend"}
    for piece in sorted(pieces):
        options.update(PIECES[piece] or {"unfreeze_every": args.unfreeze_every})
    return options


def unk_share(lm: lstmlm.Model, text: str) -> float:
    """The share of the text's tokens that ``lm`` reads as ``<unk>`` (PTB's own "<unk>" words included)."""
    ids = [i for line in text.splitlines() for i in lm.tokenizer.encode(line)]
    return sum(1 for i in ids if i == lm.tokenizer.unk_id) / max(1, len(ids))


def main() -> None:
    args = parse_args()
    if not (WIKITEXT / "valid.txt").is_file() or not (PTB / "ptb.valid.txt").is_file():
        print(f"skipped: needs {WIKITEXT} and {PTB}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        parent = work / "parent"
        if not (args.reuse_parent and (parent / "best.safetensors").is_file()):
            lstmlm.train(
                data=str(WIKITEXT / "valid.txt"), test_data=str(WIKITEXT / "test.txt"), out=parent,
                max_time=args.parent_minutes, **common(args),
            )  # fmt: skip
        if "scratch-extend" in args.variants:  # the parent's vocabulary, weights of one step
            lstmlm.train(
                data=str(WIKITEXT / "valid.txt"),
                test_data=str(WIKITEXT / "test.txt"),
                out=work / "untrained-parent",
                **{**common(args), "max_steps": 1, "eval_every": 0},
            )  # fmt: skip  (the parent's very text, so its very vocabulary)
        ptb_test = (PTB / "ptb.test.txt").read_text(encoding="utf-8")
        rows = []
        for variant in args.variants:
            lm = lstmlm.train(
                data=str(PTB / "ptb.valid.txt"), test_data=str(PTB / "ptb.test.txt"), out=work / variant,
                max_time=args.minutes, **common(args), **target_options(variant, parent, args),
            )  # fmt: skip
            test = lm.evaluate("test")
            rows.append((variant, test["perplexity"], unk_share(lm, ptb_test), lm.run.config.model.ntoken))
    report(rows, args)


def report(rows: list[tuple[str, float, float, int]], args: argparse.Namespace) -> None:
    print(
        f"parent: WikiText-2 valid, {args.parent_minutes:g} min; target: PTB valid -> PTB test, "
        f"{args.minutes:g} min each; {args.nlayers}x{args.nhid} tied LSTM, AdamW {args.lr:g}"
    )
    scratch = dict((name, ppl) for name, ppl, _, _ in rows).get("scratch")
    print(f"{'variant':<14} {'test ppl':>9} {'vs scratch':>11} {'<unk> share':>12} {'vocab':>7}")
    for name, ppl, unk, vocab in rows:
        ratio = f"{ppl / scratch:.3f}" if scratch else "-"
        print(f"{name:<14} {ppl:>9.1f} {ratio:>11} {unk:>12.1%} {vocab:>7,}")


if __name__ == "__main__":
    main()
