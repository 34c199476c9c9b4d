"""The language model: embedding -> recurrent stack -> dropout -> linear decoder.

Weight tying (Press & Wolf 2017; Inan et al. 2017) shares the embedding matrix with
the decoder. The output layer is a full softmax, an adaptive one (``model/adaptive.py``) or a
mixture of softmaxes (``model/mixture.py``); ``forward`` returns the logits (the latter two:
log-probabilities), or with ``targets`` each position's loss.
The AWD-LSTM regularisers (Merity, Keskar & Socher 2017) are configured in ``ModelConfig``
and off by default: embedding dropout, locked dropout at the three dropout sites, weight
drop inside the recurrent stack, and the AR/TAR penalty ``forward(..., with_penalty=True)``
returns for the training loss.
"""

from __future__ import annotations

from typing import Literal, overload

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlm.config import ModelConfig
from lstmlm.model.adaptive import AdaptiveSoftmax
from lstmlm.model.dropout import StreamDropout
from lstmlm.model.fast.output_linear import fast_linear
from lstmlm.model.mixture import MixtureOfSoftmaxes
from lstmlm.model.normalized import NormalizedOutput
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
        self.decoder = _output_layer(cfg)
        self._init_weights()
        if cfg.decoder_is_embedding:
            self.decoder.weight = self.encoder.weight

    def _init_weights(self) -> None:
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        if isinstance(self.decoder, nn.Linear):
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
            nn.init.zeros_(self.decoder.bias)

    def init_state(self, batch_size: int, device: torch.device | None = None) -> State:
        """The zero state for ``batch_size`` streams: a tuple of fp32 tensors, each
        (nlayers, batch_size, width), what ``forward`` takes and returns as ``state``.

        By cell (H = nhid, the widest layer with ``layer_sizes``; a narrower layer uses
        the first units of its row):

        - LSTM types (``lstm``, ``lstm-eq``, ``peephole``, ``coupled``, ``depth-gated``):
          ``(h, c)``, hidden and cell state, each (nlayers, B, H);
        - ``gru``, ``gru-eq``, ``rnn-tanh``, ``rnn-relu``, ``mingru``, ``minlstm``: ``(h,)``;
        - ``slstm``: ``(h, c, n, m)``, hidden, cell, normalizer and stabilizer, each
          (nlayers, B, H);
        - ``mlstm``: ``(C, n, m, x)``, flattened per stream: the matrix memory
          (nlayers, B, heads·d²), its normalizer (nlayers, B, heads·d), the stabilizer
          (nlayers, B, heads) and the convolution's last 3 inputs (nlayers, B, 3H), with
          d = 2H/heads.

        ``forward(tokens, None)`` starts from this state. To read a text in pieces, pass
        each call the state the previous one returned (``detach_state`` it first when
        training through the pieces); its batch must be the tokens' B.
        """
        return self.rnn.init_state(batch_size, device)

    @overload
    def forward(
        self,
        tokens: Tensor,
        state: State | None,
        *,
        targets: Tensor | None = None,
        with_penalty: Literal[False] = False,
    ) -> tuple[Tensor, State]: ...

    @overload
    def forward(
        self,
        tokens: Tensor,
        state: State | None,
        *,
        targets: Tensor | None = None,
        with_penalty: Literal[True],
    ) -> tuple[Tensor, State, Tensor]: ...

    def forward(
        self,
        tokens: Tensor,
        state: State | None,
        *,
        targets: Tensor | None = None,
        with_penalty: bool = False,
    ) -> tuple[Tensor, State] | tuple[Tensor, State, Tensor]:
        """tokens (T, B) int64 -> logits (T, B, ntoken) and the new state.

        ``state`` is what ``init_state`` describes (the one a previous call returned, to
        carry on), or ``None`` for the zero state.

        With ``targets`` (T, B): each position's loss -log p(target) (T, B, fp32) instead of
        the logits; the adaptive softmax and the mixture compute it without the whole (mixed)
        distribution.
        ``with_penalty``: also the AR + TAR penalty (an fp32 scalar, 0 when ``ar_alpha``
        and ``tar_beta`` are 0) for the training loss to add. Both are keywords of
        ``forward`` so that they pass through DDP and ``torch.compile``.
        """
        out, state = self._recurrent(tokens, state)
        dropped = self.drop(out)
        result = self.logits(dropped) if targets is None else self.token_loss(dropped, targets)
        if not with_penalty:
            return result, state
        return result, state, activation_penalty(out, dropped, self.cfg.ar_alpha, self.cfg.tar_beta)

    def features(self, tokens: Tensor, state: State | None) -> tuple[Tensor, State]:
        """The output layer's input (T, B, nhid): the last layer's dropped output, and the new state."""
        out, state = self._recurrent(tokens, state)
        return self.drop(out), state

    def _recurrent(self, tokens: Tensor, state: State | None) -> tuple[Tensor, State]:
        return self.rnn(self.drop_input(self.drop_words(tokens, self.encoder(tokens))), state)

    def logits(self, features: Tensor) -> Tensor:
        """(..., nhid) -> (..., ntoken) scores whose log-softmax is the model's log-probabilities
        (the adaptive softmax and the mixture of softmaxes return the log-probabilities themselves)."""
        if isinstance(self.decoder, NormalizedOutput):
            return self.decoder.log_prob(features, self._tied_embedding())
        return fast_linear(features, self.decoder.weight, self.decoder.bias)

    def token_loss(self, features: Tensor, targets: Tensor) -> Tensor:
        """-log p(target) per position, fp32, shaped like ``targets``."""
        if isinstance(self.decoder, NormalizedOutput):
            return self.decoder.nll(features, targets, self._tied_embedding())
        logits = self.logits(features).flatten(0, -2).float()
        return F.cross_entropy(logits, targets.reshape(-1), reduction="none").view(targets.shape)

    def _tied_embedding(self) -> Tensor | None:
        return self.encoder.weight if self.cfg.tied else None

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _output_layer(cfg: ModelConfig) -> nn.Linear | NormalizedOutput:
    if cfg.softmax == "adaptive":
        return AdaptiveSoftmax(cfg.hidden_sizes[-1], cfg.ntoken, cfg.cutoff_values, tied=cfg.tied)
    if cfg.softmax == "mos":
        return MixtureOfSoftmaxes(
            cfg.hidden_sizes[-1], cfg.ntoken, cfg.emsize, cfg.mos_experts, tied=cfg.tied
        )
    return nn.Linear(cfg.hidden_sizes[-1], cfg.ntoken)


def detach_state(state: State) -> State:
    """Cut the graph at a BPTT window boundary, keeping the values (``repackage_hidden``)."""
    return tuple(s.detach() for s in state)
