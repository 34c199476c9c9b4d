"""Text sources, tokenizers, token caches and batching."""
