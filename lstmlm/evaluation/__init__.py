"""``lstmlm eval``: scoring a run on a split, or on all of a text it is given, with the state
carried across windows.

- ``perplexity.py``: perplexity (and bits per char/byte) over a whole split, or a text as one stream;
- ``methods.py``: "evaluate this run on this split with these methods": static, the
  continuous cache and dynamic evaluation (``evaluate_run``, which the CLI calls);
- ``settings.py``: the cache's and dynamic evaluation's settings, each declared once (no torch);
- ``dynamic.py`` (Krause et al. 2018) and ``continuous_cache.py`` (Grave et al. 2017).
"""
