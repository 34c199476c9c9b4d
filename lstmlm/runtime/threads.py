"""How many CPU threads a command computes with, and how idle threads wait.

Measured on a 2-core AMD EPYC with the demo model (``scripts/bench/busy_machine.py``,
docs/benchmarks.md): with PyTorch's defaults (one thread per logical CPU, and OpenMP
worker threads that *spin* while they wait for work) two runs at once took 17x the time
of one alone, and a run beside two busy processes kept 0.12x of its quiet speed. A
spinning worker holds a core that the thread it waits for needs, so every parallel
region waits for the scheduler. Letting idle workers sleep (``OMP_WAIT_POLICY=PASSIVE``)
took the pair to 1.7x and the busy case to 0.40x at the same quiet speed. One thread
instead would have been fair too, but 0.66x as fast on a quiet machine.

So the policy is:

* **the wait policy**: ``OMP_WAIT_POLICY=PASSIVE``, unless the user set one. OpenMP
  reads it once, when torch loads it, so ``prefer_sleeping_workers`` runs before the
  command line imports torch (it cannot change a process that has already loaded torch;
  from Python, set the variable before ``import torch``);
* **the thread count**: ``--threads N`` or ``$LSTMLM_THREADS``, else ``$OMP_NUM_THREADS``
  as the user set it, else the physical cores this process may run on (SMT siblings
  share a core's arithmetic units, and a second thread on them only adds waiting),
  divided among the ranks of a data-parallel run on this machine.

Nothing here imports torch at module level: the command line imports this module before
torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from lstmlm.errors import BadArgument

THREADS_VARIABLE = "LSTMLM_THREADS"
MAX_THREADS = 1024
WAIT_POLICY = ("OMP_WAIT_POLICY", "PASSIVE")
CPU_TOPOLOGY = Path("/sys/devices/system/cpu")
CPU_QUOTA = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" or "max <period>"


def prefer_sleeping_workers() -> None:
    """Idle OpenMP workers sleep instead of spinning, unless the user chose a wait policy.

    Only takes effect before torch is imported (OpenMP reads it when it loads).
    """
    name, value = WAIT_POLICY
    os.environ.setdefault(name, value)


def parse_threads(text: str, source: str = "--threads") -> int | None:
    """A thread count from the command line or the environment: a whole number from 1 to
    ``MAX_THREADS``, or ``auto`` (None: the default policy)."""
    value = text.strip()
    if value.lower() == "auto":
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_THREADS:
        expected = f"a number of threads from 1 to {MAX_THREADS}, or auto"
        raise BadArgument(f"{source}: expected {expected}; got {text!r}")
    return int(value)


def chosen_threads(requested: int | None = None) -> int:
    """The thread count of the policy above: ``requested`` (from ``--threads``) if given."""
    if requested is not None:
        return requested
    from_variable = os.environ.get(THREADS_VARIABLE, "")
    if from_variable.strip():
        given = parse_threads(from_variable, f"${THREADS_VARIABLE}")
        if given is not None:
            return given
    omp = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if omp.isdigit() and int(omp) > 0:
        return int(omp)
    ranks_here = os.environ.get("LOCAL_WORLD_SIZE", "1")
    cores = min(physical_cores(), cpu_quota() or MAX_THREADS)
    return max(1, cores // max(1, int(ranks_here) if ranks_here.isdigit() else 1))


def use_threads(requested: int | None = None) -> int:
    """Set torch's intra-op threads by the policy; returns the count."""
    import torch

    threads = chosen_threads(requested)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def physical_cores(cpus: set[int] | None = None, topology: Path = CPU_TOPOLOGY) -> int:
    """Physical cores among ``cpus`` (default: the CPUs this process may run on).

    Two logical CPUs are one core when they share a package and a core id; where the
    topology cannot be read, every logical CPU counts as a core.
    """
    if cpus is None:
        cpus = _allowed_cpus()
    cores = set()
    for cpu in cpus:
        try:
            package = (topology / f"cpu{cpu}" / "topology" / "physical_package_id").read_text().strip()
            core = (topology / f"cpu{cpu}" / "topology" / "core_id").read_text().strip()
        except OSError:
            return len(cpus)
        cores.add((package, core))
    return max(1, len(cores))


def cpu_quota(limit: Path = CPU_QUOTA) -> int | None:
    """The CPUs' worth of time a container's cgroup allows (``docker --cpus 2``: 2), rounded
    up; None where there is no limit or it cannot be read."""
    try:
        quota, period = limit.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if not (quota.isdigit() and period.isdigit() and int(period) > 0):
        return None  # "max": no limit
    return max(1, -(-int(quota) // int(period)))


def _allowed_cpus() -> set[int]:
    affinity = getattr(os, "sched_getaffinity", None)  # Linux; not on macOS or Windows
    if affinity is not None:
        return set(affinity(0))
    return set(range(os.cpu_count() or 1))
