"""Data-parallel training across processes started by ``torchrun`` (GPUs on one or many nodes, or CPUs).

::

    torchrun --nproc_per_node=4 -m lstmlm train --batch-size 64 ...
    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=8 --rdzv_backend=c10d \\
        --rdzv_endpoint=HOST:29500 -m lstmlm train --batch-size 128 ...

A process is part of a run of W > 1 when ``WORLD_SIZE`` says so (with ``RANK`` and
``LOCAL_RANK``, all set by torchrun). CUDA ranks use NCCL on ``cuda:LOCAL_RANK``; CPU
ranks use gloo. Across nodes, ``--data`` and ``--out`` must be paths every node sees
(a shared filesystem): every rank reads the corpus, and on resume and for the final
test score the run folder that rank 0 wrote.

How the work is split:

- ``--batch-size`` B is the global number of streams and must be divisible by W. Rank r
  trains on streams [r*B/W, (r+1)*B/W) of the batchified train split. Each stream is a
  contiguous stretch of text, so the carried state means what it means in one process,
  and the gradient DDP averages over the equal shards is the gradient of the mean loss
  over all B streams: the union of the ranks is the one-process run with the same B.
- Evaluation: each rank scores its share of the eval streams; the loss sums and token
  counts are summed over the ranks.
- Rank 0 alone holds the run lock, writes the run folder and reports; the other ranks
  wait at collectives, so they never read a half-written file.
- Checkpoints hold the carried state of all B streams (gathered to rank 0), so a run
  resumes with any W that divides B, from the same weights, optimizer and loss scaler
  state, step, data position and carried state.
- Dropout masks are drawn for the global batch from (seed, step, site) and each rank keeps
  its streams' rows (``lstmlm.model.dropout``), so W ranks drop what one process would,
  before and after a resume with another W.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

from lstmlm.errors import LstmlmError

T = TypeVar("T")

# Whether this process has been in a process group: DDP keeps the group alive in C++ past
# ``destroy_process_group`` (torch 2.13), so its gloo worker threads live into Python's
# finalization (see ``lstmlm.cli.main``).
joined_a_group = False


@dataclass(frozen=True)
class Group:
    """This process's place in the run: rank ``rank`` of ``world_size``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_env() -> Group:
    """The group torchrun announces in the environment; a single process without it."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise LstmlmError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (torchrun sets them)") from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise LstmlmError(f"RANK {rank} / WORLD_SIZE {world} / LOCAL_RANK {local}: not a valid process group")
    return Group(rank, world, local) if world > 1 else Group()


def current() -> Group:
    """The group this process has joined (``session``); a single process outside one."""
    if dist.is_available() and dist.is_initialized():
        return Group(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return Group()


def check_batch_size(batch_size: int, group: Group) -> None:
    if batch_size % group.world_size:
        raise LstmlmError(
            f"--batch-size {batch_size} is the global number of streams and must be divisible by the "
            f"{group.world_size} processes; use a multiple of {group.world_size}"
        )


@contextlib.contextmanager
def session(group: Group, device: torch.device) -> Iterator[torch.device]:
    """Join the process group for the duration; yields this rank's device.

    A single process joins nothing. The group is destroyed on the way out, errors included.
    """
    global joined_a_group
    if not group.distributed or dist.is_initialized():
        yield device
        return
    if device.type == "cuda":
        if group.local_rank >= torch.cuda.device_count():
            raise LstmlmError(
                f"LOCAL_RANK {group.local_rank} needs GPU {group.local_rank}, but this node has "
                f"{torch.cuda.device_count()}; start at most that many processes per node"
            )
        device = torch.device("cuda", group.local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise LstmlmError(f"distributed training runs on cuda or cpu, not {device.type}")
    dist.init_process_group(backend, rank=group.rank, world_size=group.world_size)
    joined_a_group = True
    try:
        yield device
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------- collectives (no-ops in one process)


def barrier() -> None:
    if current().distributed:
        dist.barrier()


def sum_over_ranks(values: Tensor) -> Tensor:
    """``values`` summed over all ranks, in place (on this rank's device for NCCL)."""
    if current().distributed:
        dist.all_reduce(values)
    return values


def my_streams(source: Tensor, dim: int = 1) -> Tensor:
    """This rank's share of the parallel streams along ``dim``, in rank order.

    With W dividing the count, rank r gets [r*n/W, (r+1)*n/W); otherwise the first ranks
    get one more (eval splits need not divide). In one process: ``source`` itself.
    """
    group = current()
    if not group.distributed:
        return source
    return torch.tensor_split(source, group.world_size, dim=dim)[group.rank].contiguous()


def all_streams(parts: tuple[Tensor, ...], dim: int = 1) -> tuple[Tensor, ...]:
    """The inverse of ``my_streams`` for equal shards: every rank's part, concatenated along ``dim``."""
    group = current()
    if not group.distributed:
        return parts
    gathered = []
    for part in parts:
        pieces = [torch.empty_like(part) for _ in range(group.world_size)]
        dist.all_gather(pieces, part.contiguous())
        gathered.append(torch.cat(pieces, dim=dim))
    return tuple(gathered)


def in_sync(params: Iterable[Tensor]) -> bool:
    """Whether all ranks hold the same parameters: a checksum per tensor, all-gathered and compared."""
    group = current()
    if not group.distributed:
        return True
    sums = []
    for p in params:
        flat = p.detach().reshape(-1).double()
        position = torch.arange(1, flat.numel() + 1, device=flat.device, dtype=torch.float64)
        sums += [flat.sum(), (flat * flat).sum(), (flat * position).sum()]
    checksum = torch.stack(sums)
    pieces = [torch.empty_like(checksum) for _ in range(group.world_size)]
    dist.all_gather(pieces, checksum)
    return all(torch.equal(piece, pieces[0]) for piece in pieces)


def main_first(work: Callable[[], T]) -> T:
    """Run ``work`` on rank 0, then on the others; if it fails on rank 0, it fails on all.

    For work whose results the others reuse (rank 0 fills the token cache, the others then
    hit it) and for rank 0's own work before the others may look (opening the run folder).
    """
    if not current().distributed:
        return work()
    result, ran_here = _on_main(work, send_result=False)
    return result if ran_here else work()  # type: ignore[return-value]  # ran here: work()'s T


def from_main(work: Callable[[], T]) -> T:
    """``work()`` run on rank 0 and its result handed to every rank (plain data: str, numbers)."""
    if not current().distributed:
        return work()
    return _on_main(work, send_result=True)[0]  # type: ignore[return-value]  # rank 0's T, sent


def _on_main(work: Callable[[], T], *, send_result: bool) -> tuple[T | None, bool]:
    """Rank 0 runs ``work`` and tells the others whether it failed (and, if asked, its result).

    Returns (result, whether this rank ran it); a failure on rank 0 is raised on every rank.
    """
    if current().is_main:
        try:
            result = work()
        except BaseException as e:
            _broadcast([None, _describe(e)])
            raise
        _broadcast([result if send_result else None, None])
        return result, True
    result, failure = _broadcast([None, None])
    if failure is not None:
        raise LstmlmError(failure)
    return result, False


def _broadcast(box: list) -> list:
    dist.broadcast_object_list(box, src=0)
    return box


def _describe(error: BaseException) -> str:
    if isinstance(error, LstmlmError):
        return str(error)
    return f"rank 0 failed ({type(error).__name__}: {error})"
