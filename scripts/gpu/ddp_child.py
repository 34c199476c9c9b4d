"""The GPU check's 1-process group: lstmlm's ``train()`` through DDP and its collectives.

    python -m scripts.gpu.ddp_child --device cuda --backend nccl --out RESULT.json [--smoke]

Joins a process group of one (NCCL on CUDA, gloo on CPU) and, since lstmlm takes a world
of one for no group (``Group.distributed``), counts it as distributed while ``train()``
runs, so that DDP wraps the model and the all-reduce, all-gather and broadcast run through
the backend. Writes one JSON object (the figures, or ``error``) and leaves with ``os._exit``:
gloo's threads outlive the group (see ``lstmlm.cli.main``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from lstmlm.model.lm import LanguageModel
from lstmlm.runtime import distributed
from lstmlm.training import train as train_module
from scripts.gpu.context import REAL, SMOKE, WIKITEXT, Context, small_config
from scripts.gpu.table import failure
from scripts.gpu.training_parts import train_collecting


class _CountedAsDistributed(distributed.Group):
    """A group of one that lstmlm treats as distributed."""

    @property
    def distributed(self) -> bool:
        return True


@contextlib.contextmanager
def world_of_one_distributed() -> Iterator[list[DistributedDataParallel]]:
    """Within: lstmlm sees the joined 1-process group as distributed; yields the DDP wrappers made."""
    made: list[DistributedDataParallel] = []

    class CountedDDP(DistributedDataParallel):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    saved = distributed.current, train_module.DistributedDataParallel
    distributed.current = lambda: _CountedAsDistributed(dist.get_rank(), dist.get_world_size(), 0)
    train_module.DistributedDataParallel = CountedDDP  # type: ignore[misc]
    try:
        yield made
    finally:
        distributed.current, train_module.DistributedDataParallel = saved  # type: ignore[misc]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def train_in_group(ctx: Context) -> dict[str, Any]:
    """A small LSTM trained by ``train()`` in the group; the figures of the run."""
    s = ctx.sizes
    corpus = ctx.corpus()
    config = small_config(ctx, "lstm", 0.2, s.ddp_steps)
    torch.manual_seed(1)
    with world_of_one_distributed() as made:
        broadcast = distributed.from_main(
            lambda: "ok"
        )  # rank 0's result to every rank: broadcast_object_list
        trained = train_collecting(ctx, config, LanguageModel(config.model), corpus.splits(s.cell_batch, 8))
    first, last, _ = trained.loss_fell(corpus.tokenizer.vocab_size)
    return {
        "backend": dist.get_backend(),
        "first_loss": first,
        "last_loss": last,
        "tokens_per_s": trained.tokens_per_s(s.cell_batch * s.cell_bptt),
        "ranks_in_sync": bool(trained.end and trained.end.ranks_in_sync),
        "ddp_wrapped": bool(made),
        "broadcast": broadcast,
        "valid_ppl": trained.valid_ppl,
        "peak_mib": torch.cuda.max_memory_allocated(ctx.device) / 2**20 if ctx.cuda else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--backend", default="nccl", choices=("nccl", "gloo"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any]
    try:
        device = torch.device("cuda", 0) if args.device == "cuda" else torch.device("cpu")
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(
            args.backend, init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1
        )
        distributed.joined_a_group = True
        with tempfile.TemporaryDirectory(prefix="lstmlm-ddp-child-") as tmp:
            sizes = SMOKE if args.smoke else REAL
            ctx = Context(args.smoke, device, sizes, Path(tmp), WIKITEXT, time.monotonic() + 600, sys.stderr)
            try:
                result = train_in_group(ctx)
            finally:
                dist.destroy_process_group()
    except Exception as e:
        traceback.print_exc()
        result = {"error": failure(e).removeprefix("FAIL: ")}
    args.out.write_text(json.dumps(result) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if "error" not in result else 1)


if __name__ == "__main__":
    main()
