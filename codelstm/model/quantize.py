"""Dynamic int8 quantisation of the recurrent and output layers (CPU inference only)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from codelstm.model.network import ByteLM


def quantize_int8(model: ByteLM) -> ByteLM:
    """A copy whose LSTM/GRU and output weights are int8 (activations stay float): a quarter of the
    memory traffic per step. Use only after checking BPC (bench/quantization.py)."""
    q = copy.deepcopy(model).eval()
    return torch.ao.quantization.quantize_dynamic(q, {nn.LSTM, nn.GRU, nn.Linear}, dtype=torch.qint8)
