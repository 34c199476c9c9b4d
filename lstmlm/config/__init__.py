"""Every setting of a run, declared once: the ``train`` flags, the TOML keys and ``config.json``.

- ``fields.py``: ``option()`` (a field that is a flag and a key: default, help, choices,
  whether a resume may change it), the shared choices, and the value checks;
- ``model.py``, ``sections.py``: ``ModelConfig``, ``DataConfig``, ``TrainConfig`` and the
  ``RunConfig`` that combines them, each validated in ``__post_init__``;
- ``loading.py``: a TOML file or a dict into a ``RunConfig``, merged with flags.

No torch here: the CLI reads settings before it imports anything heavy.
"""

from lstmlm.config.fields import (
    CELLS,
    CUSTOM_CELLS,
    DEFAULT_HEADS,
    DEFAULT_MOGRIFY_ROUNDS,
    DEVICES,
    FUSED_CELLS,
    LSTM_TYPE_CELLS,
    MIN_CELLS,
    PRE_TOKENIZERS,
    PRECISIONS,
    XLSTM_CELLS,
)
from lstmlm.config.loading import load_toml, replace, resolve, resumable_fields, settable_fields
from lstmlm.config.model import ModelConfig
from lstmlm.config.sections import SECTIONS, DataConfig, RunConfig, TrainConfig

__all__ = [
    "CELLS",
    "CUSTOM_CELLS",
    "DEFAULT_HEADS",
    "DEFAULT_MOGRIFY_ROUNDS",
    "DEVICES",
    "FUSED_CELLS",
    "LSTM_TYPE_CELLS",
    "MIN_CELLS",
    "PRECISIONS",
    "PRE_TOKENIZERS",
    "SECTIONS",
    "XLSTM_CELLS",
    "DataConfig",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
    "load_toml",
    "replace",
    "resolve",
    "resumable_fields",
    "settable_fields",
]
