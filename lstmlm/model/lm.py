"""The language model: embedding -> recurrent stack -> dropout -> linear decoder.

Weight tying (Press & Wolf 2017; Inan et al. 2017) shares the embedding matrix with
the decoder. The model returns logits; the loss lives in ``train.py``/``evaluate.py``.
The AWD-LSTM regularisers (Merity, Keskar & Socher 2017) are configured in ``ModelConfig``
and off by default: embedding dropout, locked dropout at the three dropout sites, weight
drop inside the recurrent stack, and the AR/TAR penalty ``forward(..., with_penalty=True)``
returns for the training loss.
"""

from __future__ import annotations

import functools
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
        logits = decode(self.decoder, dropped)
        if not with_penalty:
            return logits, state
        return logits, state, activation_penalty(out, dropped, self.cfg.ar_alpha, self.cfg.tar_beta)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def detach_state(state: State) -> State:
    """Cut the graph at a BPTT window boundary, keeping the values (``repackage_hidden``)."""
    return tuple(s.detach() for s in state)


def decode(decoder: nn.Linear, x: Tensor) -> Tensor:
    """``decoder(x)``: in fp32 on CPU through oneDNN's inner product instead of MKL's sgemm.

    ``nn.Linear`` multiplies fp32 on CPU with MKL's sgemm, which runs its AVX2 code on
    x86 CPUs other than Intel's even where they have AVX-512; oneDNN picks its kernels
    by instruction set. At a word vocabulary the decoder's forward and backward
    (``aten::mkldnn_linear`` has a oneDNN backward too) are most of a step's work: on an
    AVX-512 AMD EPYC they ran 2.0x faster (1.2x with oneDNN held to AVX2), a 2x650 step
    at vocab 11.8k 1.5x (1.1x). Still fp32 (oneDNN's default strict fp32 math); only the
    sums are taken in another order (relative differences about 1e-6 per product), and
    deterministically. Under autocast, off the CPU and in ``torch.compile`` graphs:
    plain ``decoder(x)``.
    """
    if not _onednn_decoder(x, decoder):
        return decoder(x)
    flat = x.reshape(-1, x.size(-1)).to_mkldnn()
    logits = torch._C._nn.mkldnn_linear(flat, decoder.weight, decoder.bias)
    return logits.to_dense().view(*x.shape[:-1], -1)


_is_compiling = getattr(torch.compiler, "is_compiling", None)


def _onednn_decoder(x: Tensor, decoder: nn.Linear) -> bool:
    return (
        x.device.type == "cpu"
        and x.dtype == decoder.weight.dtype == torch.float32
        and x.numel() > 0
        and not torch.is_autocast_enabled("cpu")
        and _is_compiling is not None  # torch < 2.3 cannot tell: plain decoder(x)
        and not _is_compiling()
        and torch.backends.mkldnn.enabled
        and _mkldnn_linear_works()
    )


@functools.cache
def _mkldnn_linear_works() -> bool:
    """Whether this PyTorch build has ``mkldnn_linear`` (a private op), and it agrees with ``linear``."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        # fixed values, not torch.randn: drawing from the global generator here would
        # shift every later dropout mask of a run outside ``masks_for_step``
        w = torch.linspace(-1.0, 1.0, 12).reshape(3, 4)
        x = torch.linspace(-0.5, 0.7, 8).reshape(2, 4)
        y = torch._C._nn.mkldnn_linear(x.to_mkldnn(), w, None).to_dense()
        return torch.allclose(y, x @ w.t(), atol=1e-5)
    except (AttributeError, RuntimeError):
        return False
