"""Per-byte activations of every recurrent layer, read from the real model by stepping it byte by byte.

The neuron explorer colours text by what one unit of the network does at each byte: the hidden state h,
the cell state c, and the LSTM's input (i), forget (f) and output (o) gates and candidate (g). h and c
come from `ByteLM.step`, the same call incremental inference makes, so they cannot drift from the model
that serves completions. nn.LSTM does not expose its gates, so they are derived from that same module's
weight tensors (gate order i, f, g, o) applied to the layer's input and previous h, then checked against
the stepped states: c_t == f*c_{t-1} + i*g and h_t == o*tanh(c_t). A mismatch raises instead of showing
made-up numbers.

Value at byte t is the state after reading byte t. A trace starts, like every document the model reads,
from the zero state and a NUL (the NUL's own step is not reported); a NUL inside the text starts a new
document, exactly as in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from codelstm.model.config import DOC_SEPARATOR
from codelstm.model.network import ByteLM, use_onednn

LSTM_QUANTITIES = ("h", "c", "i", "f", "o", "g")  # g: the candidate (cell input) tanh(W x + U h + b)
GRU_QUANTITIES = ("h",)


class TraceError(ValueError):
    """The model cannot be traced as asked (quantised weights, a quantity the cell lacks); one line for the user."""


class GateMismatch(RuntimeError):
    """Gates derived from the weights do not reproduce the model's own states: the derivation has drifted."""


@dataclass
class Trace:
    """Activations of one text: layers[k][q] is a (T, H) float32 tensor, T = len(data)."""

    data: bytes
    cell: str
    hidden_size: int
    layers: list[dict[str, torch.Tensor]]
    max_gate_error: float  # largest |c - (f*c_prev + i*g)| / (1 + |c| + |c_prev|) or |h - o*tanh(c)|; 0 for GRU

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def quantities(self) -> tuple[str, ...]:
        return LSTM_QUANTITIES if self.cell == "lstm" else GRU_QUANTITIES


def supported_quantities(model: ByteLM) -> tuple[str, ...]:
    return LSTM_QUANTITIES if model.config.cell == "lstm" else GRU_QUANTITIES


def _check_traceable(model: ByteLM) -> None:
    if not isinstance(model.rnn, (nn.LSTM, nn.GRU)) or not hasattr(model.rnn, "weight_ih_l0"):
        raise TraceError("this model's recurrent weights are quantised; trace the float checkpoint instead")


@torch.no_grad()
def step_states(model: ByteLM, data: bytes,
                on_step: Callable[[int], None] | None = None) -> tuple[torch.Tensor, ...]:
    """Step the model over NUL + data; returns per-step states, each (T+1, num_layers, H), step 0 = the NUL.

    `on_step(bytes_read)` is called every 256 bytes (a progress bar's hook)."""
    ids = torch.frombuffer(bytearray(bytes([DOC_SEPARATOR]) + data), dtype=torch.uint8).long().to(model.device)
    state = None
    collected: list[tuple[torch.Tensor, ...]] = []
    with use_onednn(False):  # oneDNN makes a batch-1 step ~10x slower on CPU; same numbers
        for t in range(ids.numel()):
            _, state = model.step(ids[t:t + 1], state)  # (num_layers, 1, H) each
            collected.append(tuple(s[:, 0] for s in state))
            if on_step is not None and t % 256 == 0:
                on_step(t)
    return tuple(torch.stack([c[k] for c in collected]).float() for k in range(len(collected[0])))


def check_lstm_cell(layer: int, i: torch.Tensor, f: torch.Tensor, g: torch.Tensor, o: torch.Tensor,
                    c: torch.Tensor, c_prev: torch.Tensor, h: torch.Tensor, tolerance: float) -> float:
    """Raise GateMismatch unless c == f*c_prev + i*g and h == o*tanh(c); returns the worst error.

    The c error is relative to the cell's magnitude: cells of a trained model reach the hundreds,
    where float32 rounding of f*c_prev alone is ~1e-5."""
    err_c = ((c - (f * c_prev + i * g)).abs() / (1.0 + c.abs() + c_prev.abs())).max().item()
    err_h = (h - o * torch.tanh(c)).abs().max().item()
    if not max(err_c, err_h) <= tolerance:  # also catches NaN
        raise GateMismatch(f"layer {layer}: gates derived from the weights miss the model's states by "
                           f"{err_c:.2e} (c, relative) / {err_h:.2e} (h); tolerance {tolerance:.0e}")
    return max(err_c, err_h)


@torch.no_grad()
def trace(model: ByteLM, data: bytes, tolerance: float = 1e-4,
          on_step: Callable[[int], None] | None = None) -> Trace:
    """All activations of every layer for `data` (bytes), with the gates verified against the stepped states."""
    _check_traceable(model)
    if not data:
        raise TraceError("nothing to trace: the text is empty")
    cfg = model.config
    states = step_states(model, data, on_step)
    hs = states[0]  # (T+1, L, H), row 0 is the state after the leading NUL
    if cfg.cell != "lstm":
        layers = [{"h": hs[1:, k].contiguous()} for k in range(cfg.num_layers)]
        return Trace(data, cfg.cell, cfg.hidden_size, layers, 0.0)
    cs = states[1]
    ids = torch.frombuffer(bytearray(bytes([DOC_SEPARATOR]) + data), dtype=torch.uint8).long().to(model.device)
    x = model.embed(ids).float()  # (T+1, E): layer 0's input
    # The state each step starts from: zero before the first NUL, and zero again before any later NUL
    # (ByteLM resets a lane's state at a document separator).
    zero = torch.zeros_like(hs[:1])
    keep = (ids[1:] != DOC_SEPARATOR).float().view(-1, 1, 1)
    h_prev = torch.cat([zero, hs[:-1] * keep])  # (T+1, L, H)
    c_prev = torch.cat([torch.zeros_like(cs[:1]), cs[:-1] * keep])
    rnn = model.rnn
    H = cfg.hidden_size
    layers: list[dict[str, torch.Tensor]] = []
    worst = 0.0
    for k in range(cfg.num_layers):
        w_ih, w_hh = getattr(rnn, f"weight_ih_l{k}").float(), getattr(rnn, f"weight_hh_l{k}").float()
        bias = getattr(rnn, f"bias_ih_l{k}").float() + getattr(rnn, f"bias_hh_l{k}").float() if rnn.bias else 0.0
        pre = x @ w_ih.T + h_prev[:, k] @ w_hh.T + bias  # (T+1, 4H), nn.LSTM gate order i, f, g, o
        i, f, g, o = (pre[:, j * H:(j + 1) * H] for j in range(4))
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c, h = cs[:, k], hs[:, k]
        worst = max(worst, check_lstm_cell(k, i, f, g, o, c, c_prev[:, k], h, tolerance))
        layers.append({name: t[1:].contiguous() for name, t in
                       (("h", h), ("c", c), ("i", i), ("f", f), ("o", o), ("g", g))})
        x = h  # the next layer reads this layer's h (dropout is off in eval mode)
    return Trace(data, cfg.cell, H, layers, worst)
