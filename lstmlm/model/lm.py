"""The language model: embedding -> recurrent stack -> dropout -> linear decoder.

Weight tying (Press & Wolf 2017; Inan et al. 2017) shares the embedding matrix with
the decoder. The model returns logits; the loss lives in ``train.py``/``evaluate.py``.
The AWD-LSTM regularisers (Merity, Keskar & Socher 2017) are configured in ``ModelConfig``
and off by default: embedding dropout, locked dropout at the three dropout sites, weight
drop inside the recurrent stack, and the AR/TAR penalty ``forward(..., with_penalty=True)``
returns for the training loss.
"""

from __future__ import annotations

from typing import Literal, overload

import torch
from torch import Tensor, nn

from lstmlm.config import ModelConfig
from lstmlm.model.dropout import StreamDropout
from lstmlm.model.recurrent import State, build_recurrent
from lstmlm.model.regularize import EmbeddingDropout, activation_penalty


class LanguageModel(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.ntoken <= 0:
            raise ValueError("ModelConfig.ntoken must be set from the tokenizer")
        self.cfg = cfg
        self.drop_words = EmbeddingDropout(cfg.dropoute, cfg.ntoken)
        self.drop_input = StreamDropout(cfg.input_dropout, locked=cfg.locked_dropout)
        self.drop = StreamDropout(cfg.dropout, locked=cfg.locked_dropout)
        self.encoder = nn.Embedding(cfg.ntoken, cfg.emsize)
        self.rnn = build_recurrent(cfg)
        self.decoder = nn.Linear(cfg.hidden_sizes[-1], cfg.ntoken)
        self._init_weights()
        if cfg.tied:
            self.decoder.weight = self.encoder.weight

    def _init_weights(self) -> None:
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def init_state(self, batch_size: int, device: torch.device | None = None) -> State:
        return self.rnn.init_state(batch_size, device)

    @overload
    def forward(
        self, tokens: Tensor, state: State, *, with_penalty: Literal[False] = False
    ) -> tuple[Tensor, State]: ...

    @overload
    def forward(
        self, tokens: Tensor, state: State, *, with_penalty: Literal[True]
    ) -> tuple[Tensor, State, Tensor]: ...

    def forward(
        self, tokens: Tensor, state: State, *, with_penalty: bool = False
    ) -> tuple[Tensor, State] | tuple[Tensor, State, Tensor]:
        """tokens (T, B) int64 -> logits (T, B, ntoken) and the new state.

        ``with_penalty``: also the AR + TAR penalty (an fp32 scalar, 0 when ``ar_alpha``
        and ``tar_beta`` are 0) for the training loss to add; a keyword of ``forward``
        so that it passes through DDP and ``torch.compile``.
        """
        emb = self.drop_input(self.drop_words(tokens, self.encoder(tokens)))
        out, state = self.rnn(emb, state)
        dropped = self.drop(out)
        logits = self.decoder(dropped)
        if not with_penalty:
            return logits, state
        return logits, state, activation_penalty(out, dropped, self.cfg.ar_alpha, self.cfg.tar_beta)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def detach_state(state: State) -> State:
    """Cut the graph at a BPTT window boundary, keeping the values (``repackage_hidden``)."""
    return tuple(s.detach() for s in state)
