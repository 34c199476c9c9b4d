"""Speed paths that wrap the readable cells without replacing them.

- ``scan.py``, ``scan_loops.py``: the equation cells over a whole sequence, hand-written backward;
- ``packed_linear.py``, ``output_linear.py``: the recurrent and output products through oneDNN
  or MKL, whichever ``kernel_choice.py`` timed faster on this machine;
- ``fused_step.py``: one token through a fused stack and the output layer, for sampling.

Tests compare each path against the cell's own ``step`` equations.
"""
