"""Where and how reproducibly a process computes: the device, and seeding every RNG."""

from __future__ import annotations

import ctypes
import random
import sys

import numpy as np
import torch

from lstmlm.config import DEVICES
from lstmlm.errors import BadArgument


def resolve_device(name: str, option: str = "--device") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an explicit device must exist.

    ``option`` names the setting in the error (``--device`` for the commands, ``device``
    for the Python API)."""
    if name not in DEVICES:
        raise BadArgument(f"{option} must be one of {', '.join(DEVICES)} (got {name!r})")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BadArgument(f"{option} cuda: no CUDA GPU is available here")
    if name == "mps" and not torch.backends.mps.is_available():
        raise BadArgument(f"{option} mps: Apple MPS is not available here")
    return torch.device(name)


def check_device(device: object, option: str = "device") -> torch.device:
    """A device the Python API was given, known to exist here: a name ``resolve_device``
    takes, with an index for cuda (``"cuda:1"``), or a ``torch.device``."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise BadArgument(f"{option} must be a str such as 'cpu' or 'cuda' (got {type(device).__name__})")
    name, colon, index = device.partition(":")
    resolved = resolve_device(name, option)
    if not colon:
        return resolved
    if name == "auto":
        raise BadArgument(f"{option} {device}: auto takes no index")
    count = torch.cuda.device_count() if name == "cuda" else 1
    if not (index.isascii() and index.isdigit()) or int(index) >= count:
        available = f"{count} CUDA GPU(s)" if name == "cuda" else f"only {name}:0"
        raise BadArgument(f"{option} {device} does not exist here ({available})")
    return torch.device(name, int(index))


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (torch's seeds every device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt options


def keep_freed_memory() -> None:
    """On glibc, keep the memory of freed tensors in the process for the next training step.

    glibc gives every block above its mmap threshold (32 MiB at most) a mapping of its
    own, unmapped when the block is freed, and hands the free top of its heap back to
    the kernel. A step's logits and their gradients (T*B x vocab floats) and the
    vocabulary's weight gradients (vocab x emsize) are then faulted in again, page by
    page, every step: on a 2x650 CPU step at vocab 33k, 170,000 page faults and 15-20%
    of the step's time (35% with the oneDNN decoder, whose conversions add blocks). With
    both thresholds at 1 GiB freed blocks are reused and the resident size stays near
    its peak. Once per process, before training; nothing happens off glibc (musl,
    macOS, Windows).
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return
    if hasattr(libc, "gnu_get_libc_version"):  # glibc, not musl
        for option in (_M_MMAP_THRESHOLD, _M_TRIM_THRESHOLD):
            libc.mallopt(option, 1 << 30)
