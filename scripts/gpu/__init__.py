"""The GPU check: every CUDA path of lstmlm exercised in one run that prints one table.

``python -m scripts.gpu.check`` (``make gpu-check``) on a lent GPU, in at most ~8 minutes;
``--smoke`` runs the same code paths on CPU in about a minute, as a test
(``tests/scripts/test_gpu_check.py``), so the script cannot rot before a GPU is lent.
What it runs and its goals: ``docs/gpu.md``.

- ``check.py``: the arguments, the parts in order, each run under a guard and the budget;
- ``table.py``: a row of the table, the verdicts, the table as text and JSON;
- ``context.py``: the sizes (real and smoke), the device, timers, memory, the small corpus;
- ``training_parts.py``: the cells × precisions, speed against a bare cuDNN loop, weight drop;
- ``inference_parts.py``: generation against the bandwidth bound, the cache and dynamic
  evaluation, export parity;
- ``cli_parts.py``: what runs through ``python -m lstmlm``: the real run, ``--compile``;
- ``system_parts.py``: the device, the 1-process NCCL group (``ddp_child.py``), peak memory.
"""
