"""The device, the process group and memory: the system around the training and inference parts.

- ``device_rows``: what runs: the GPU (name, compute capability, memory), torch, CUDA and
  cuDNN versions, bf16 support, the TF32 defaults; on CPU the threads and native bf16.
- ``nccl_rows``: lstmlm's ``train()`` in a 1-process NCCL group (gloo on CPU), in a child
  process (``ddp_child``) with a timeout, so that a hang in the group cannot stop the check.
  lstmlm treats a world of one as no group at all (``Group.distributed`` is world_size > 1),
  so the child marks it distributed: the model is wrapped in DDP and every collective of
  lstmlm (the step verdict's all-reduce, the state's all-gather at a save, the weights'
  checksum, rank 0's broadcast) runs through the backend. Goal: trains, loss falls, ranks
  in sync.
- ``memory_rows``: the largest peak of the parts and the device's total memory.
"""

from __future__ import annotations

import json
import sys

import torch

from scripts.gpu.context import Context, last_line, peak_resident_mib
from scripts.gpu.table import OK, Row, judged, number, one_line

DDP_TIMEOUT = 180.0


def device_rows(ctx: Context) -> list[Row]:
    """What the check runs on; a CUDA check without a CUDA device fails here (and skips the rest)."""
    if ctx.missing_device:
        why = f"torch {torch.__version__} sees no CUDA device (a CUDA build: make install TORCH=torch)"
        return [Row("device", "the device", goal="a CUDA device", verdict=f"FAIL: {why}")]
    if not ctx.cuda:
        from lstmlm.runtime.precision import native_bf16_rnn

        bf16 = "native bf16" if native_bf16_rnn("lstm") else "no native bf16"
        figure = f"CPU, {torch.get_num_threads()} threads, {bf16}, torch {torch.__version__}"
        return [Row("device", "the device", figure, "present", OK)]
    props = torch.cuda.get_device_properties(ctx.device)
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
    figure = (
        f"{props.name} sm_{props.major}{props.minor}, {props.total_memory / 2**30:.0f} GiB; torch "
        f"{torch.__version__}, CUDA {torch.version.cuda}, cuDNN {cudnn}; bf16 {'yes' if bf16 else 'no'}; "
        f"TF32 cuDNN {torch.backends.cudnn.allow_tf32}, matmul {torch.backends.cuda.matmul.allow_tf32}"
    )
    data = {"name": props.name, "total_mib": props.total_memory / 2**20, "bf16": bf16, "cudnn": cudnn}
    return [
        Row(
            "device",
            "the device",
            figure,
            "a CUDA device with cuDNN",
            judged(cudnn is not None, "no cuDNN"),
            data=data,
        )
    ]


def nccl_rows(ctx: Context) -> list[Row]:
    """The 1-process group: ``ddp_child`` trains through DDP and reports a JSON object."""
    backend = "nccl" if ctx.cuda else "gloo"
    what = f"1-process {backend} group: DDP train()" + ("" if ctx.cuda else " (NCCL: CUDA)")
    out = ctx.scratch("ddp") / "result.json"
    command = [
        sys.executable,
        "-m",
        "scripts.gpu.ddp_child",
        "--device",
        ctx.device.type,
        "--backend",
        backend,
        "--out",
        str(out),
        *(["--smoke"] if ctx.smoke else []),
    ]
    done = ctx.child(command, DDP_TIMEOUT)
    if not out.is_file():
        raise RuntimeError(
            f"ddp_child exited {done.returncode} without a result: {one_line(last_line(done))}"
        )
    result = json.loads(out.read_text())
    if "error" in result:
        raise RuntimeError(f"in the child: {result['error']}")
    fell = result["last_loss"] < 0.95 * result["first_loss"]
    ok = fell and result["ranks_in_sync"] and result["ddp_wrapped"] and result["broadcast"] == "ok"
    figure = (
        f"loss {result['first_loss']:.2f}→{result['last_loss']:.2f}, {number(result['tokens_per_s'])} tok/s, "
        f"DDP {'yes' if result['ddp_wrapped'] else 'no'}, in sync {result['ranks_in_sync']}, "
        f"broadcast {result['broadcast']}"
    )
    goal = "trains, loss falls, in sync"
    return [Row("NCCL", what, figure, goal, judged(ok), peak_mib=result.get("peak_mib"), data=result)]


def memory_rows(ctx: Context, rows: list[Row]) -> list[Row]:
    """The largest per-part peak (device memory; on CPU this process's peak resident size)."""
    if not ctx.cuda:
        figure = f"peak resident {peak_resident_mib():,.0f} MiB (this process; no device allocator on CPU)"
        return [Row("memory", "peak", figure, "reported", OK)]
    peaks = [(row.peak_mib, f"{row.part} {row.what}") for row in rows if row.peak_mib is not None]
    total = torch.cuda.get_device_properties(ctx.device).total_memory / 2**20
    if not peaks:
        return [Row("memory", "peak", "no part measured", "reported", OK)]
    peak, where = max(peaks)
    figure = f"{peak:,.0f} MiB of {total:,.0f} ({peak / total:.0%}) in {where}"
    return [
        Row(
            "memory",
            "peak allocated",
            figure,
            "< 90% of the device",
            judged(peak < 0.9 * total),
            peak_mib=peak,
        )
    ]
