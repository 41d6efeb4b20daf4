"""The byte-level recurrent language model: embedding -> stacked LSTM/GRU -> linear over 256 bytes."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from codelstm.model.config import DOC_SEPARATOR, ModelConfig

@contextmanager
def use_onednn(enabled: bool) -> Iterator[None]:
    """Run a block with oneDNN's LSTM kernels on or off, whatever the process-wide setting.

    On a CPU the choice is per call shape: oneDNN reads a sequence 2-3x faster than ATen but makes a
    one-byte step about 10x slower (bench/step_time.py). Every caller that cares names its choice, so
    threads that set it concurrently (the server's worker, the neuron explorer) cannot leave a wrong
    one behind for each other. torch's own `mkldnn.flags()` would also reset TF32 and warn each time.
    """
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = enabled
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run a block on `count` intra-op threads: on a small CPU one thread steps a few rows fastest
    (no fork-join), while a batch of dozens of rows runs nearly twice as fast on two."""
    before = torch.get_num_threads()
    if count != before:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if count != before:
            torch.set_num_threads(before)


def native_bfloat16() -> bool:
    """Whether oneDNN runs bfloat16 natively here (AVX-512 BF16, AMX). Only then is it a speed-up: an LSTM
    step or training batch takes about half the float32 time; elsewhere bfloat16 is emulated and slower."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


# LSTM state is (h, c), each (num_layers, B, H); GRU state is h alone, kept as a 1-tuple for uniformity.
State = tuple[torch.Tensor, ...]


class ByteLM(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim)
        rnn_cls = nn.LSTM if config.cell == "lstm" else nn.GRU
        self.rnn = rnn_cls(
            config.embed_dim,
            config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, config.vocab_size)
        if config.cell == "lstm":
            self._init_forget_bias(1.0)

    @torch.no_grad()
    def _init_forget_bias(self, value: float) -> None:
        """Start with the forget gate open (Jozefowicz et al., 2015): long memory is learned far more easily."""
        h = self.config.hidden_size
        for name, param in self.rnn.named_parameters():
            if name.startswith("bias_ih"):
                param[h:2 * h].fill_(value)  # gate order in nn.LSTM: input, forget, cell, output

    @property
    def dtype(self) -> torch.dtype:
        return self.embed.weight.dtype  # the embedding is never quantised, unlike head and rnn

    @property
    def device(self) -> torch.device:
        return self.embed.weight.device  # the embedding is never quantised, unlike head and rnn

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """Zero state: what a fresh document starts from."""
        device = device or self.device
        cfg = self.config
        shape = (cfg.num_layers, batch_size, cfg.hidden_size)
        n = 2 if cfg.cell == "lstm" else 1
        return tuple(torch.zeros(shape, device=device, dtype=self.dtype) for _ in range(n))

    def _rnn(self, x: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        if state is None:
            out, new = self.rnn(x)
        elif self.config.cell == "lstm":
            out, new = self.rnn(x, (state[0], state[1]))
        else:
            out, new = self.rnn(x, state[0])
        return out, (tuple(new) if isinstance(new, tuple) else (new,))

    def _rnn_resetting(self, idx: torch.Tensor, x: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        """Run the RNN, zeroing a lane's state right before each NUL (document start).

        Training streams carry state across documents; without the reset, the fresh zero state that
        inference starts every file from would be a state the model never saw. The sequence is split only
        at columns holding a NUL, which in code corpora is a few per batch.
        """
        if state is None:
            return self._rnn(x, None)
        is_sep = idx == DOC_SEPARATOR  # (B, T)
        columns = torch.nonzero(is_sep.any(dim=0)).flatten().tolist()
        if not columns:
            return self._rnn(x, state)
        outs = []
        bounds = [0, *columns, idx.size(1)]
        for start, end in zip(bounds[:-1], bounds[1:]):
            if start in columns:
                keep = (~is_sep[:, start]).to(x.dtype).view(1, -1, 1)
                state = tuple(s * keep for s in state)
            if end > start:
                out, state = self._rnn(x[:, start:end], state)
                outs.append(out)
        return torch.cat(outs, dim=1), state

    def forward(
        self, idx: torch.Tensor, state: State | None = None, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, State]:
        """Sequence API for training and prefill: idx (B, T) bytes -> logits (B, T, 256), loss in nats, state."""
        assert idx.dim() == 2, f"idx must be (B, T), got {tuple(idx.shape)}"
        x = self.embed(idx)  # (B, T, E)
        out, state = self._rnn_resetting(idx, x, state)  # (B, T, H)
        logits = self.head(self.drop(out))  # (B, T, 256)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))
        return logits, loss, state

    def step(self, byte_ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Single-step API for incremental inference: byte_ids (B,) -> logits (B, 256), new state."""
        logits, _, state = self.forward(byte_ids.view(-1, 1), state)
        return logits[:, 0], state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
