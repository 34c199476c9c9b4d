"""The one reporting layer: rich output for people, plain JSON for machines.

Library code never prints; it returns values or calls ``on_event``. Commands hand those
to the functions here. Human output goes to stdout; warnings and errors to stderr.
"""

from __future__ import annotations

import json
import math
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def error(message: str) -> None:
    """One red line on stderr; ``message`` is plain text (``[train]`` is not markup)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def info(message: str) -> None:
    console.print(message, soft_wrap=True)


def print_json(value: Any) -> None:
    """Exactly one JSON object on stdout, nothing else."""
    print(json.dumps(value, indent=2, sort_keys=True, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if abs(value) >= 1e5:
        return f"{value:.3g}"
    return f"{value:,.{digits}f}"


def key_value_table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left", box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    return table


def evaluation_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """``eval``'s payload as table rows: static, then the cache, dynamic and dynamic + cache."""
    rows = [{**payload, "method": "static"}]
    split = payload["split"]
    if "cache" in payload:
        s = payload["cache"]["settings"]
        rows.append(
            {**payload["cache"], "split": split, "method": f"cache (θ {s['theta']:g}, λ {s['lambda']:g})"}
        )
    if "dynamic" in payload:
        d = payload["dynamic"]
        rows.append({**d, "split": split, "method": f"dynamic ({d['settings']['method']}, one stream)"})
        if "with_cache" in d:
            rows.append({**d["with_cache"], "split": split, "method": "dynamic + cache"})
    return rows


def evaluation_table(results: list[dict[str, Any]]) -> Table:
    table = Table(title="Evaluation", title_justify="left")
    methods = any("method" in r for r in results) and len(results) > 1
    columns = ["split", *(["method"] if methods else []), "tokens", "loss", "perplexity"]
    columns += [k for k in ("bits_per_char", "bits_per_byte") if any(r.get(k) for r in results)]
    columns += ["change"] if methods else []
    columns += ["tok/s"] if any("tokens_per_s" in r for r in results) else []
    for column in columns:
        table.add_column(
            column.replace("_", " "), justify="left" if column in ("split", "method") else "right"
        )
    for r in results:
        table.add_row(*[_evaluation_cell(r, column) for column in columns])
    return table


def _evaluation_cell(row: dict[str, Any], column: str) -> str:
    if column in ("split", "method"):
        return str(row.get(column, ""))
    if column == "tokens":
        return f"{row['tokens']:,}"
    if column == "change":
        return f"{100 * row['change']:+.1f}%" if "change" in row else ""
    if column == "tok/s":
        return f"{row['tokens_per_s']:,.0f}" if "tokens_per_s" in row else ""
    return fmt(row.get(column), 2 if column == "perplexity" else 4)


def evaluation_source(payload: dict[str, Any]) -> str:
    """What ``eval`` scored, in words: the text (a split of it, or all of it) and the tokens."""
    corpus, tokens = escape(str(payload.get("corpus", "?"))), f"{payload['tokens']:,} tokens"
    if payload["split"] == "whole":
        return f"scored: all of {corpus}, {tokens}"
    own = "the run's own data, " if payload.get("source") == "run" else ""
    return f"scored: the {payload['split']} split of {own}{corpus}, {tokens}"


def _pct(value: float | None) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}%"


def _interval(interval: tuple[float, float] | None) -> str:
    return "" if interval is None else f"[{100 * interval[0]:.0f}–{100 * interval[1]:.0f}]"


def _accuracy_style(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "dim"
    return "green" if value >= 0.9 else "yellow" if value >= 0.7 else "red"


def agreement_table(title: str, rows: list[dict[str, Any]], keys: list[str]) -> Table:
    """Accuracy by group: count, sentence rule and prefix rule with 95% Wilson intervals."""
    table = Table(title=title, title_justify="left")
    for key in keys:
        table.add_column(key, justify="right" if key in ("attractors", "distance") else "left")
    table.add_column("pairs", justify="right")
    table.add_column("sentence acc (95% CI)", justify="right")
    table.add_column("prefix acc (95% CI)", justify="right")
    for row in rows:
        sentence, prefix = row["sentence_accuracy"], row["prefix_accuracy"]
        table.add_row(
            *[str(row[k]) for k in keys],
            str(row["count"]),
            f"[{_accuracy_style(sentence)}]{_pct(sentence)}[/] {_interval(row['sentence_ci95'])}",
            f"[{_accuracy_style(prefix)}]{_pct(prefix)}[/] {_interval(row['prefix_ci95'])}",
        )
    return table


def agreement_demo(rows: list[Any]) -> None:
    """The seed's examples: competing forms' probabilities and a sampled continuation."""
    console.print("[bold]Agreement: does the model remember the subject's number and gender?[/]")
    for row in rows:
        verdict = "[green]✓[/]" if row.ok else "[red]✗[/]"
        good = "green" if row.ok else "red"
        console.print(
            f"{verdict} [dim]{row.what}[/]\n"
            f"  {row.prompt} [{good}]{row.correct}[/] {row.p_correct:.3f}  vs  "
            f"[dim]{row.wrong}[/] {row.p_wrong:.3f}\n"
            f"  [dim]sample:[/] {row.prompt} [italic]{row.continuation}[/]",
            soft_wrap=True,
        )
    right = sum(row.ok for row in rows)
    style = "green" if right == len(rows) else "yellow"
    console.print(f"[{style}]{right}/{len(rows)} prompts prefer the agreeing form[/]")


def surprisal_tables(scores: list[Any], unk_token: str | None) -> None:
    """``lstmlm score``: one table per sentence (word, surprisal in bits, and its tokens where
    the tokenizer split a word) and the sentence's total log-probability."""
    for score in scores:
        split = any([t.token for t in w.tokens] != [w.word] for w in score.words)
        console.print(f"[bold]{escape(score.text)}[/]", soft_wrap=True)
        table = Table()
        table.add_column("word")
        table.add_column("surprisal (bits)", justify="right")
        if split:
            table.add_column("tokens", style="dim")
        for word in score.words:
            pieces = [t.token for t in word.tokens]
            shown = f"[red]{escape(word.word)}[/]" if unk_token in pieces else escape(word.word)
            row = [shown, f"{word.surprisal_bits:.2f}"]
            table.add_row(*row, *([escape(" ".join(pieces))] if split else []))
        table.add_row("[dim]<eos>[/]", f"{score.tokens[-1].surprisal_bits:.2f}", *([""] if split else []))
        console.print(table)
        console.print(
            f"  log P = {score.logprob:.3f} nats = {score.surprisal_bits:.2f} bits over "
            f"{len(score.tokens)} tokens ({len(score.words)} words + <eos>)"
        )


def score_source(source: str, scores: list[Any], *, context: bool) -> str:
    """What ``score`` scored, in words: where the lines came from, how many, their tokens."""
    tokens = sum(len(score.tokens) for score in scores)
    read = "one text, the state carried" if context else "each line fresh"
    where = {"text": "--text", "stdin": "stdin"}.get(source, escape(source))
    return f"scored: all of {where}, {len(scores):,} lines ({read}), {tokens:,} tokens"


GATE_COLUMNS = {
    "forget_gate": "forget",
    "input_gate": "input",
    "output_gate": "output",
    "depth_gate": "depth",
    "reset_gate": "reset",
    "update_gate": "update",
    "stabilizer": "m",  # xLSTM: the stabilizer state, and the norm of each head's matrix memory
    "memory_norm": "‖C‖",
}


def _pre_tokenization(config: dict[str, Any]) -> str:
    """`` (wikitext pre-tokenization)`` where the word tokenizer does not cut at whitespace alone."""
    choice = config["data"].get("pre_tokenize", "whitespace")
    return "" if choice == "whitespace" else f" ({choice} pre-tokenization)"


def trace_table(trace: Any, layer: int, top: int) -> Table:
    """Per token: the mean of each gate, the mean |state| and the most active units."""
    values = trace.layers[layer]
    state = "cell" if "cell" in values else "hidden"
    gates = [name for name in GATE_COLUMNS if name in values]
    table = Table(title=f"Layer {layer}: gates (mean over units) and the most active {state} units",
                  title_justify="left")  # fmt: skip
    table.add_column("token")
    for name in gates:
        table.add_column(GATE_COLUMNS[name], justify="right")
    table.add_column(f"mean |{state}|", justify="right")
    table.add_column(f"top {state} units (unit: value)")
    for t, token in enumerate(trace.tokens):
        row = values[state][t]
        strongest = sorted(range(len(row)), key=lambda u: -abs(row[u]))[:top]
        table.add_row(
            token,
            *[f"{values[name][t].mean():.2f}" for name in gates],
            f"{abs(row).mean():.3f}",
            "  ".join(f"{u}: {row[u]:+.2f}" for u in strongest),
        )
    return table


def units_table(finding: Any, shown: int) -> Table:
    """The ``shown`` best units of a ``units.UnitFinding``."""
    classes = finding.classes
    table = Table(
        title=f"{finding.kind} units: {classes[0]} vs {classes[1]} subjects, {len(finding.pairs)} items "
        "(fit on half, accuracy on the other half)",
        title_justify="left",
    )
    for column in ("rank", "layer", "unit", "held-out acc", "effect size (d)"):
        table.add_column(column, justify="right")
    for rank, u in enumerate(finding.ranking[:shown], start=1):
        table.add_row(
            str(rank),
            str(u.layer),
            str(u.unit),
            f"[{_accuracy_style(u.accuracy)}]{_pct(u.accuracy)}[/]",
            f"{u.effect_size:+.2f}",
        )
    return table


def ablation_table(finding: Any) -> Table:
    """Agreement accuracy of a ``units.UnitFinding`` with its top-k units zeroed, vs k random ones."""
    table = Table(
        title=f"Ablation: {finding.kind} agreement accuracy ({_pct(finding.accuracy)} intact) "
        "with units zeroed",
        title_justify="left",
    )
    for column in ("k", "top-k units zeroed", "k random units zeroed"):
        table.add_column(column, justify="right")
    for row in finding.ablations:
        table.add_row(str(row.k), _pct(row.top_accuracy), _pct(row.random_accuracy))
    return table


# ---------------------------------------------------------------- command results


def layers_text(m: Any) -> str:
    """``2x650``, or ``1150/1150/400`` for per-layer sizes."""
    return "/".join(map(str, m.hidden_sizes)) if m.layer_sizes else f"{m.nlayers}x{m.nhid}"


def run_info(summary: Any) -> None:
    """``lstmlm info``: a ``run_folder.RunSummary`` as two tables, the run and its config."""
    config = summary.config
    m = config["model"]
    files = ", ".join(f"{k} ({v / 1e6:.2f} MB)" for k, v in summary.files.items() if not k.startswith("."))
    shape = (
        f"layers {m['layer_sizes'].replace(',', '/')}"
        if m.get("layer_sizes")
        else f"{m['nlayers']} layer(s) x {m['nhid']}"
    )
    rows = [
        ("model", f"{m['cell']}, {shape}, emsize {m['emsize']}, "
                  f"dropout {m['dropout']}, {'tied' if m['tied'] else 'untied'}"
                  f"{', reads backward (right to left)' if m.get('direction') == 'backward' else ''}"),
        *([("regularisers", _regularisers(m))] if _regularisers(m) else []),
        ("parameters", f"{summary.parameters:,}"),
        ("tokenizer", f"{summary.tokenizer}{_pre_tokenization(config)}, vocabulary {summary.vocab_size:,}"),
        ("data", _data_shown(config["data"]["data"])),
        *([("fine-tuned from", _lineage(summary.lineage))] if summary.lineage else []),
        ("steps", f"{summary.step:,}"),
        ("best valid ppl", fmt(summary.best_valid_ppl)),
        ("files", files),
    ]  # fmt: skip
    console.print(key_value_table(f"Run {summary.run}", rows))
    settings = [
        (f"{section}.{key}", repr(value))
        for section, values in config.items()
        for key, value in values.items()
    ]
    console.print(key_value_table("Config", settings))


def _lineage(lineage: dict[str, Any]) -> str:
    """A fine-tuned run's parent (``lineage.json``): where, which weights, the vocabulary mode."""
    vocab = f"vocabulary {lineage.get('vocab')}"
    if lineage.get("vocab") == "extend":
        vocab += f" ({lineage.get('shared_tokens', 0):,} shared, {lineage.get('added_tokens', 0):,} added)"
    return (
        f"{lineage['parent']} ({lineage.get('weights_file')}, step {lineage.get('step')}, "
        f"sha256 {str(lineage.get('sha256'))[:12]}…), {vocab}"
    )


def _data_shown(data: str | list[str] | None) -> str:
    """A config's ``data``: one source, several (a list), or none (the embedded corpus)."""
    if isinstance(data, list):
        return " + ".join(data)
    return data or "default agreement corpus"


def _regularisers(m: dict[str, Any]) -> str:
    """The AWD-LSTM settings (Merity et al. 2017) of a config's model section that are on."""
    names = {"dropouti": "dropouti", "dropouth": "dropouth", "dropoute": "dropoute",
             "weight_drop": "weight drop", "ar_alpha": "AR", "tar_beta": "TAR"}  # fmt: skip
    parts = ["locked dropout"] if m.get("locked_dropout") else []
    parts += [f"{label} {m[key]}" for key, label in names.items() if m.get(key)]
    return ", ".join(parts)


def agreement_result(
    title: str, rows: list[dict[str, Any]], keys: list[str], overall: dict[str, Any]
) -> None:
    """``lstmlm agreement``: accuracy by group, then the overall line."""
    console.print(agreement_table(title, rows, keys))
    prefix = overall["prefix_accuracy"]
    info(
        f"overall: sentence {100 * overall['sentence_accuracy']:.1f}% of {overall['count']} pairs"
        + (f", prefix {100 * prefix:.1f}%" if prefix is not None else "")
    )
    if overall["unk_tokens"]:
        warn(f"{overall['unk_tokens']} tokens of the suite are <unk> for this run's tokenizer")
