"""Recurrent cells, stacks and the language model."""
