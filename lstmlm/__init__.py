"""lstmlm: train, evaluate, sample and understand recurrent word-level language models."""

__version__ = "0.1.0"
