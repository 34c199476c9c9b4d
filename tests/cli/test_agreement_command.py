"""``lstmlm agreement`` on any minimal-pair file with the plain command: lstmlm's suites group by
construction and attractors, a BLiMP file by its own fields, a bare file as one row; only a
``--by`` the user typed must name fields the pairs have."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import invoke, one_line_error

GOOD_BAD = [
    ("the cat sees the dog .", "the cat see the dog ."),
    ("the dogs sees the cat .", "the dog sees the cat ."),
]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def blimp_file(folder: Path) -> Path:
    """A file shaped as BLiMP's: UID, linguistics_term, field, pairID beside the two sentences."""
    uids = ("regular_plural_subject_verb_agreement_1", "distractor_agreement_relational_noun")
    records = [
        {"sentence_good": good, "sentence_bad": bad, "field": "morphology",
         "linguistics_term": "subject_verb_agreement", "UID": uid, "simple_LM_method": True, "pairID": str(i)}
        for uid in uids for i, (good, bad) in enumerate(GOOD_BAD)
    ]  # fmt: skip
    return write_jsonl(folder / "blimp.jsonl", records)


def agreement(run: Path, *args: str) -> dict[str, Any]:
    result = invoke("agreement", str(run), "--json", "--device", "cpu", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_blimp_file_groups_by_its_own_fields(trained_run: Path, tmp_path: Path) -> None:
    scored = agreement(trained_run, "--suite", str(blimp_file(tmp_path)))
    assert scored["by"] == ["linguistics_term", "UID"]
    assert [row["UID"] for row in scored["groups"]] == sorted(
        ["regular_plural_subject_verb_agreement_1", "distractor_agreement_relational_noun"]
    )
    assert [row["count"] for row in scored["groups"]] == [2, 2] and scored["overall"]["count"] == 4
    by_field = agreement(trained_run, "--suite", str(blimp_file(tmp_path)), "--by", "field")
    assert [row["field"] for row in by_field["groups"]] == ["morphology"]


def test_a_bare_file_and_by_nothing_give_one_row_of_all_pairs(trained_run: Path, tmp_path: Path) -> None:
    bare = write_jsonl(
        tmp_path / "bare.jsonl", [{"sentence_good": g, "sentence_bad": b} for g, b in GOOD_BAD]
    )
    for suite, by in ((bare, ()), (blimp_file(tmp_path), ("--by", ""))):
        scored = agreement(trained_run, "--suite", str(suite), *by)
        assert scored["by"] == [] and len(scored["groups"]) == 1
        (row,) = scored["groups"]
        overall = scored["overall"]
        assert (row["count"], row["sentence_accuracy"]) == (overall["count"], overall["sentence_accuracy"])
    table = invoke("agreement", str(trained_run), "--suite", str(bare), "--device", "cpu")
    assert table.exit_code == 0 and "overall: sentence" in table.stdout, table.output


def test_the_default_suite_groups_by_construction_and_attractors(trained_run: Path) -> None:
    from lstmlm.scoring.suites import load_suite

    scored = agreement(trained_run)
    assert scored["by"] == ["construction", "attractors"]
    pairs, _ = load_suite("default")
    conditions = sorted({(p.fields["construction"], p.fields["attractors"]) for p in pairs}, key=str)
    assert sorted(((r["construction"], r["attractors"]) for r in scored["groups"]), key=str) == conditions
    assert scored == agreement(trained_run, "--by", "construction,attractors")


def test_a_typed_unknown_field_is_an_error(trained_run: Path, tmp_path: Path) -> None:
    result = invoke(
        "agreement", str(trained_run), "--suite", str(blimp_file(tmp_path)), "--by", "construction"
    )
    one_line_error(
        result, "--by: no pair in", "has the field(s) construction", "UID, field, linguistics_term"
    )
