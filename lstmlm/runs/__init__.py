"""The run folder and its formats: what ``lstmlm train`` writes and every other command reads.

- ``folder.py``: the files' names, ``config.json``, the writer lock, what a run holds (no torch);
- ``checkpoint.py``: crash-proof (weights, train state) pairs with their ``.prev`` fallback;
- ``events.py``, ``metrics.py``: the typed training events and ``metrics.jsonl``;
- ``provenance.py``: which text a run was trained on, so the data cannot drift;
- ``load.py``: ``load_run`` (config, tokenizer, weights on a device) and a run's splits, encoded.

No training and no evaluation here: both import this room, never the other way round.
"""
