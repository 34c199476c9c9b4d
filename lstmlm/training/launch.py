"""Starting and resuming training: the steps between a resolved config and the loop.

``plan_run`` checks what ``--out`` already holds (refusing to clobber a run) and which
settings a resume may change; ``start_training`` prepares the corpus, the tokenizer and
the token caches, the run folder and the seeded model, and hands over to ``train.train``.
With ``--init-from`` the architecture, tokenizer and weights come from a trained run
(``training/init_from.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstmlm.config import RunConfig, replace, resolve, resumable_fields
from lstmlm.config.loading import DATA_PATHS, is_pattern
from lstmlm.data.corpus import Corpus, load_corpus
from lstmlm.data.sources import Progress
from lstmlm.data.tokenizer import Tokenizer, train_tokenizer
from lstmlm.data.tokens import EncodedSplit, batchify, check_length
from lstmlm.errors import LstmlmError
from lstmlm.evaluation.perplexity import Evaluation, evaluate_split, perplexity
from lstmlm.model.lm import LanguageModel
from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs import folder as run_folder
from lstmlm.runs.events import EventCallback, ignore
from lstmlm.runs.load import DataProgress, encode, load_run, stage_progress
from lstmlm.runs.provenance import check_unchanged, record_data, recorded_fingerprints, with_resolved_data
from lstmlm.runtime import distributed
from lstmlm.runtime.device import keep_freed_memory, resolve_device, seed_everything
from lstmlm.runtime.precision import fp32_recurrence_notice, resolve_precision
from lstmlm.runtime.signals import signals_stop_at_once
from lstmlm.training import init_from
from lstmlm.training.resume_state import TrainState
from lstmlm.training.train import Splits, train

# Settings a resumed run may change: none of them alters the model, the data or the
# arithmetic of the steps already taken (declared with the fields, in ``config``).
RESUMABLE_CHANGES = resumable_fields()


@dataclass
class TrainOutcome:
    config: RunConfig
    state: TrainState
    test: Evaluation | None
    corpus_name: str

    @property
    def best_valid_ppl(self) -> float:
        return perplexity(self.state.best_valid_loss)

    @property
    def diverged(self) -> str | None:
        """Why the run counts as diverged (the rule: ``lstmlm.training.loop``); None: it does not."""
        return self.state.diverged


def resume_conflicts(saved: RunConfig, wanted: RunConfig, *, data_checked: bool = False) -> list[str]:
    """Settings that differ between a run's config and a resume request, and may not.

    ``data_checked``: the run recorded its splits' fingerprints, which the resume checks
    against the text (``check_unchanged``), so the data paths may point elsewhere: the
    same text, moved.
    """
    old, new = saved.to_dict(), wanted.to_dict()
    moved = set(DATA_PATHS) if data_checked else set()
    conflicts = []
    for section in old:
        allowed = RESUMABLE_CHANGES.get(section, set()) | (moved if section == "data" else set())
        for key, value in old[section].items():
            if key not in allowed and key != "ntoken" and new[section].get(key) != value:
                conflicts.append(f"{section}.{key} ({value!r} -> {new[section].get(key)!r})")
    return conflicts


def _resumable_flags() -> str:
    names = sorted(name for names in RESUMABLE_CHANGES.values() for name in names)
    return ", ".join("--" + name.replace("_", "-") for name in names)


def plan_run(
    out: Path,
    file_values: dict[str, Any],
    flags: dict[str, dict[str, Any]],
    *,
    resume: bool,
    overwrite: bool,
) -> RunConfig:
    """The config to train with, after checking what ``out`` already holds."""
    if resume and overwrite:
        raise LstmlmError("--resume and --overwrite contradict each other; pick one")
    parent = init_from.requested(file_values, flags)
    if resume and flags.get("train", {}).get("init_from") is not None:
        raise LstmlmError(
            "--init-from and --resume contradict each other: a fine-tuned run resumes from its own "
            "checkpoint; leave --init-from out"
        )
    if out.exists() and not out.is_dir():
        raise LstmlmError(f"--out {out} is a file, not a folder")
    has_run = out.is_dir() and run_folder.is_run(out)
    if resume:
        if not has_run:
            raise LstmlmError(f"nothing to resume: {out} is not an lstmlm run folder")
        saved = with_resolved_data(run_folder.read_config(out))
        base = saved.to_dict()
        for section, values in file_values.items():
            base.setdefault(section, {}).update(values)
        config = with_resolved_data(resolve(base, flags))
        checked = bool(recorded_fingerprints(out))
        conflicts = resume_conflicts(saved, config, data_checked=checked)
        if conflicts:
            moved = not checked and any(
                c.split(" ")[0] in [f"data.{n}" for n in DATA_PATHS] for c in conflicts
            )
            why = "; nor the data's place: the run has no data.json to check the text by" if moved else ""
            raise LstmlmError(
                f"cannot resume {out} with changed settings: {', '.join(conflicts)} "
                f"(only {_resumable_flags()} may change{why})"
            )
        _check_data_present(out, saved, config)
        return config
    if has_run and not overwrite:
        raise LstmlmError(
            f"{out} already holds a run; pass --resume to continue it or --overwrite to replace it"
        )
    if out.is_dir() and not has_run and any(p.name != run_folder.LOCK for p in out.iterdir()):
        raise LstmlmError(
            f"--out {out} is a non-empty folder that is not an lstmlm run: {run_folder.not_a_run(out)}"
        )
    if parent is not None:  # the parent's architecture and tokenizer kind (training/init_from.py)
        file_values, flags = init_from.inherit(out, parent, file_values, flags)
    return with_resolved_data(resolve(file_values, flags))


def _check_data_present(out: Path, saved: RunConfig, config: RunConfig) -> None:
    """A resumed run's local text, when not given anew, must still be where its config says
    (else: how to point to its new place)."""
    for name in DATA_PATHS:
        value = getattr(config.data, name)
        if value != getattr(saved.data, name):
            continue  # given anew: the corpus loader checks it
        for data in value if isinstance(value, list) else [value]:
            if data and Path(data).is_absolute() and not is_pattern(data) and not Path(data).exists():
                flag = "--" + name.replace("_", "-")
                raise LstmlmError(
                    f"{out} was trained on {data}, which is no longer there; if the text moved, "
                    f"resume with {flag} NEW_PLACE (its content is checked against the run's)"
                )


def build_tokenizer(config: RunConfig, corpus: Corpus, *, on_progress: Progress | None = None) -> Tokenizer:
    dc = config.data
    return train_tokenizer(
        dc.tokenizer,
        corpus.splits["train"],
        vocab_size=dc.vocab_size,
        min_freq=dc.min_freq,
        pre_tokenize=dc.pre_tokenize,
        on_progress=on_progress,
    )


def start_training(
    out: Path,
    config: RunConfig,
    *,
    resume: bool,
    overwrite: bool,
    on_event: EventCallback = ignore,
    warn: Callable[[str], None] = lambda message: None,
    on_data: DataProgress | None = None,
) -> TrainOutcome:
    """Prepare data and ``out``, then train into it (holding the run lock while writing).

    Everything that can reject the input (device, corpus, tokenizer, lengths) runs before
    the run folder is touched, so a bad command leaves no half-made run behind.

    Under torchrun every rank calls this (see ``lstmlm.runtime.distributed``): rank 0 reads the
    corpus, trains the tokenizer and fills the token cache first, owns the run folder and
    reports; the other ranks get the tokenizer from it, hit its cache and stay quiet.

    SIGINT/SIGTERM stop at once outside the loop (``SignalExit``) and after a checkpoint
    inside it (``Interrupted``). A start that fails before its first checkpoint removes
    what it wrote, so the same command can be run again.
    """
    with signals_stop_at_once():
        return _start_training(out, config, resume, overwrite, on_event, warn, on_data)


def _start_training(
    out: Path,
    config: RunConfig,
    resume: bool,
    overwrite: bool,
    on_event: EventCallback,
    warn: Callable[[str], None],
    on_data: DataProgress | None,
) -> TrainOutcome:
    group = distributed.from_env()
    distributed.check_batch_size(config.train.batch_size, group)
    device = resolve_device(config.train.device)
    if device.type == "cpu":
        keep_freed_memory()
    notice = fp32_recurrence_notice(resolve_precision(config.train.precision, device), config.model.cell)
    if not group.is_main:
        on_event, warn, on_data = ignore, (lambda message: None), None
    if notice:
        warn(notice)
    with distributed.session(group, device) as device:
        corpus = distributed.main_first(
            lambda: load_corpus(config.data, on_progress=stage_progress(on_data, "read"))
        )
        if "valid" not in corpus.splits:
            raise LstmlmError(f"{corpus.name} has no validation split")
        if resume:
            check_unchanged(out, corpus, tuple(corpus.splits), "resuming needs the text it was trained on")
            for message in init_from.lineage_warnings(out):
                warn(message)
        parent = init_from.read_parent(config) if init_from.starts_from_parent(out, config, resume) else None
        if resume:
            tokenizer = Tokenizer.load(out / run_folder.TOKENIZER)
        elif parent is not None:
            progress, train_text = stage_progress(on_data, "tokenizer"), corpus.splits["train"]
            new_tokenizer = parent.new_tokenizer  # kept or extended once, sent to every rank as its JSON
            tokenizer = Tokenizer.from_json(
                distributed.from_main(lambda: new_tokenizer(config.data, train_text, progress).to_json())
            )
        else:
            progress = stage_progress(on_data, "tokenizer")
            tokenizer = Tokenizer.from_json(  # trained once, sent to every rank as its JSON
                distributed.from_main(lambda: build_tokenizer(config, corpus, on_progress=progress).to_json())
            )
        config = replace(config, model={"ntoken": tokenizer.vocab_size})
        encoded = distributed.main_first(
            lambda: {
                name: encode(corpus, name, tokenizer, on_data, config.model.direction)
                for name in ("train", "valid")
            }
        )
        splits = make_splits(encoded, config)
        seed_everything(config.train.seed)
        model = LanguageModel(config.model)
        lineage = None
        if parent is not None:  # its weights, before the run folder is touched
            parent.load_into(model, tokenizer)
        if parent is not None and not resume:
            lineage = parent.lineage(tokenizer, encoded["train"].ids, config.data.vocab)
            warn(init_from.note(lineage))

        with contextlib.ExitStack() as folder:
            checkpoint = distributed.main_first(
                lambda: _open_run_folder(
                    out,
                    config,
                    tokenizer,
                    corpus,
                    folder,
                    resume=resume,
                    overwrite=overwrite,
                    warn=warn,
                    lineage=lineage,
                )
            )
            state = train(
                config, model, splits, out, on_event=on_event, resume_from=checkpoint, device=device
            )
        distributed.barrier()  # rank 0 has written the run folder
        test = None
        if corpus.splits.get("test"):
            best = load_run(out, best=True, device=device)
            test_ids = distributed.main_first(
                lambda: encode(corpus, "test", tokenizer, on_data, config.model.direction)
            )
            test = evaluate_split(best.model, test_ids, config, "test", tokenizer.kind)
    return TrainOutcome(config, state, test, corpus.name)


def _undo_if_no_checkpoint(out: Path, *, remove_folder: bool) -> Callable[..., bool]:
    """An exit callback for a new run: if it fails before its first checkpoint, remove what it
    wrote (and the folder it made), so the same command can run again. Runs under the lock."""

    def undo(exc_type: type[BaseException] | None, *exc: object) -> bool:
        if exc_type is None or (out / run_folder.MODEL).exists():
            return False
        names = [run_folder.LOCK]
        if (out / run_folder.MARK).exists():  # marked by this start: the run files are its own
            names += run_folder.RUN_FILES
        for name in names:
            with contextlib.suppress(OSError):
                (out / name).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            # the mark goes when nothing else is left: the same command then runs again; a
            # folder with other files keeps it, so that --overwrite can still replace it
            if {p.name for p in out.iterdir()} <= {run_folder.MARK}:
                (out / run_folder.MARK).unlink(missing_ok=True)
                if remove_folder:
                    out.rmdir()
        return False  # the error goes on

    return undo


def _open_run_folder(
    out: Path,
    config: RunConfig,
    tokenizer: Tokenizer,
    corpus: Corpus,
    folder: contextlib.ExitStack,
    *,
    resume: bool,
    overwrite: bool,
    warn: Callable[[str], None],
    lineage: dict[str, Any] | None = None,
) -> ckpt.Checkpoint | None:
    """The checkpoint to resume from. Rank 0 first takes the run lock (held until ``folder``
    closes), clears what ``--overwrite`` replaces (only in a folder lstmlm made, saying what it
    removes), marks a new run and writes the tokenizer, data record, lineage (fine-tuning) and config.
    A new run that fails before its first checkpoint is undone as ``folder`` closes."""
    if not distributed.current().is_main:
        return ckpt.latest_checkpoint(out) if resume else None
    replaced = run_folder.overwritable_files(out) if overwrite else []  # refuses a foreign folder
    new_folder = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    folder.enter_context(run_folder.run_lock(out))
    if not resume:
        folder.push(_undo_if_no_checkpoint(out, remove_folder=new_folder))
        run_folder.mark_run(out)  # first: whatever follows belongs to this run
    run_folder.remove_stale_temp_files(out)
    checkpoint = None
    if replaced:
        warn(f"--overwrite: removing the run in {out}: {', '.join(replaced)}")
        for name in replaced:
            (out / name).unlink(missing_ok=True)
    if resume:
        checkpoint = ckpt.latest_checkpoint(out)
        if checkpoint is None:
            warn(f"{out} has no checkpoint yet; starting from step 0")
        elif checkpoint.problems:
            warn(ckpt.fallback_warning(out, checkpoint))
    else:
        tokenizer.save(out / run_folder.TOKENIZER)
        record_data(out, corpus)
        if lineage is not None:
            run_folder.write_lineage(out, lineage)
    run_folder.write_config(out, config)  # on resume: records the allowed changes (more epochs, ...)
    if resume and not (out / run_folder.MARK).exists():
        run_folder.mark_run(out)  # a run trained before the mark: marked now
    return checkpoint


def make_splits(encoded: dict[str, EncodedSplit], config: RunConfig) -> Splits:
    tc = config.train
    n_train = len(encoded["train"].ids)
    check_length(n_train, tc.batch_size, "train")
    if n_train // tc.batch_size < tc.bptt + 1:
        raise LstmlmError(
            f"the train split has {n_train:,} tokens: too short for one BPTT window in each of "
            f"{tc.batch_size} streams (need {tc.batch_size * (tc.bptt + 1):,}); "
            "add text or lower --batch-size / --bptt"
        )
    check_length(len(encoded["valid"].ids), tc.eval_batch_size, "valid")
    return Splits(
        batchify(encoded["train"].ids, tc.batch_size), batchify(encoded["valid"].ids, tc.eval_batch_size)
    )
