"""Where tensors run: the device and seeding (``device.py``), the forward pass's precision and
the CPU's bf16 probe (``precision.py``), data-parallel process groups (``distributed.py``),
how many CPU threads compute and how idle ones wait (``threads.py``, no torch at import),
and how SIGINT/SIGTERM stop a command (``signals.py``, no torch).

Below ``model/``, ``training/`` and ``evaluation/``: nothing here imports them.
"""
