"""The language model: embedding -> recurrent stack -> dropout -> linear decoder.

Weight tying (Press & Wolf 2017; Inan et al. 2017) shares the embedding matrix with
the decoder. The model returns logits; the loss lives in ``train.py``/``evaluate.py``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lstmlm.config import ModelConfig
from lstmlm.model.dropout import StreamDropout
from lstmlm.model.recurrent import State, build_recurrent


class LanguageModel(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.ntoken <= 0:
            raise ValueError("ModelConfig.ntoken must be set from the tokenizer")
        self.cfg = cfg
        self.drop = StreamDropout(cfg.dropout)
        self.encoder = nn.Embedding(cfg.ntoken, cfg.emsize)
        self.rnn = build_recurrent(cfg)
        self.decoder = nn.Linear(cfg.nhid, cfg.ntoken)
        self._init_weights()
        if cfg.tied:
            self.decoder.weight = self.encoder.weight

    def _init_weights(self) -> None:
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def init_state(self, batch_size: int, device: torch.device | None = None) -> State:
        return self.rnn.init_state(batch_size, device)

    def forward(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        # tokens: (T, B) int64 -> logits: (T, B, ntoken)
        emb = self.drop(self.encoder(tokens))
        out, state = self.rnn(emb, state)
        return self.decoder(self.drop(out)), state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def detach_state(state: State) -> State:
    """Cut the graph at a BPTT window boundary, keeping the values (``repackage_hidden``)."""
    return tuple(s.detach() for s in state)
