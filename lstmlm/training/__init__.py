"""``lstmlm train``: only the train command (and the Python API's training, when it exists)
imports this room.

Read the loop in this order:

1. ``launch.py``: from a resolved config to a run folder, a corpus, a tokenizer and token
   ids (``start_training``), or back into a run that stopped (``--resume``);
2. ``train.py``: ``train`` sets up a ``Loop`` and drives it window by window;
3. ``loop.py``: the session's state and its pieces: step, account, log, evaluate, save;
4. ``step.py``: one BPTT window: forward, backward, clip, the non-finite verdict;
5. ``schedule.py`` (windows, steps, the lr at each step) and ``optim.py`` (SGD, AdamW,
   NT-ASGD's averaged weights), with ``layer_groups.py`` (ULMFiT's per-layer lr and freezing);
6. ``resume_state.py``: what a checkpoint holds besides the weights, for an exact resume;
7. ``tensorboard.py``: the optional TensorBoard log of the same events.
"""
