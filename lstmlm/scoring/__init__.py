"""``lstmlm agreement`` and ``lstmlm score``: what a model thinks of given sentences.

- ``suites.py``: where ``--suite`` finds its minimal pairs (the grammar's, a JSONL file, a dataset);
- ``pairs.py``: reading and scoring minimal pairs, and the demo's agreement prompts;
- ``accuracy.py``: accuracy by group, with Wilson intervals;
- ``surprisal.py``: per-token and per-word log-probabilities of lines of text.
"""
