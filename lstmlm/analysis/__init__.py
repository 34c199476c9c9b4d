"""``lstmlm inspect`` and ``lstmlm plot``: looking inside a trained model.

- ``traces.py``: per-token gate and cell-state traces through the equation cells;
- ``units.py``: the units that carry a subject's number and gender, and what zeroing them does;
- ``plots.py``: training curves and trace heatmaps (matplotlib, imported on use).
"""
