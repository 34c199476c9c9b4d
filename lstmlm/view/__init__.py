"""``lstmlm view``: the model's gates, cell state, units and predictions in a browser.

``payloads`` builds what the page shows (docs/view.md), ``search`` finds a pattern of
units in a corpus split, ``page`` assembles the one-file page from ``assets/``,
``server`` serves it with its JSON endpoints, and ``app`` ties them to a run.
"""
