"""A one-byte LSTM step written out for beam search: the same function as `ByteLM.step`, in fewer, larger calls.

A search step feeds a handful of rows (the live beams of the requests in a batch) one byte each. torch's
`nn.LSTM` then spends most of its time on per-call work around small matrix products: on the 2-core VM a
5-row step of the 2x384 model takes about 1.1 ms on either kernel (ATen float32, oneDNN bfloat16), where
the products themselves need a third of that (bench/step_time.py). Written out:

- the first layer's input product depends only on the byte, so `embedding @ W_ih + biases` is a
  (256, 4H) table looked up per row;
- every later layer's two products are one, over [h_below, h_own] against [W_ih | W_hh];
- the gates are computed in float32 whatever the weights' dtype, and the state is kept in that dtype;
- in bfloat16 the weights are packed once into oneDNN's own layout (`mkldnn._reorder_linear_weight`, the
  op torch's compiler packs with): `F.linear` on a plain bfloat16 weight repacks it on every call, which at
  a few rows took up to half the product's time (bench/step_time.py). Where the op is missing (another
  torch build), `F.linear` as before.

Each row is computed alone (a matrix product sums over the inputs in one order per row), so in
bfloat16 a row's result is bitwise the same whatever its batch-mates, as the server promises
(tests/model/test_stepper.py).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from codelstm.model.network import ByteLM, State, use_onednn

_PACKED_PRODUCT = (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
                   and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


def _product_for(weight: torch.Tensor, pack: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """x -> x @ weight.T; with `pack`, on a copy of `weight` packed into oneDNN's layout (marked `packed`) unless
    the op refuses it, else `F.linear` on the plain weight."""
    if pack:
        try:
            packed = torch.ops.mkldnn._reorder_linear_weight(weight, None)

            def product(x: torch.Tensor) -> torch.Tensor:
                return torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")

            product(torch.zeros(1, weight.size(1), dtype=weight.dtype))  # fails here, not in a request
            product.packed = True
            return product
        except (RuntimeError, TypeError):
            pass
    return lambda x: F.linear(x, weight)


class LstmStepper:
    """`step(byte_ids, state) -> (logits, state)` for an LSTM `ByteLM` in float32 or bfloat16.

    Built from the model's weights once: the model must not change afterwards (the server's never does).
    """

    def __init__(self, model: ByteLM, packed: bool = True) -> None:
        """`packed`: step bfloat16 on oneDNN-packed weights where the op exists (False: plain products, to compare)."""
        if not self.supports(model):
            raise ValueError("the written-out step needs a float32 or bfloat16 LSTM model (not GRU, not int8)")
        rnn, dtype = model.rnn, model.dtype
        self.dtype = dtype
        self.hidden_size = model.config.hidden_size
        # bfloat16 products are fast only on oneDNN; float32 ones are faster on MKL (bench/step_time.py)
        self.onednn = dtype == torch.bfloat16
        # pack where asked, in bfloat16, on a CPU whose torch has the ops
        pack = packed and self.onednn and _PACKED_PRODUCT and model.head.weight.device.type == "cpu"
        with torch.no_grad():
            embed = model.embed.weight.float()
            self.first_input = (embed @ rnn.weight_ih_l0.float().T + rnn.bias_ih_l0.float()
                                + rnn.bias_hh_l0.float()).contiguous()  # (256, 4H)
            self.recurrent = [rnn.weight_hh_l0.detach().contiguous()]  # (4H, H): layer 0's own state
            self.biases = [None]
            for layer in range(1, model.config.num_layers):
                w_ih, w_hh = getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"weight_hh_l{layer}")
                self.recurrent.append(torch.cat([w_ih, w_hh], dim=1).detach().contiguous())  # (4H, 2H)
                self.biases.append((getattr(rnn, f"bias_ih_l{layer}") + getattr(rnn, f"bias_hh_l{layer}")).float())
            self.head_weight = model.head.weight.detach().contiguous()
            self.head_bias = model.head.bias.detach().float()
            self._products = [_product_for(w, pack) for w in [*self.recurrent, self.head_weight]]
        self.packed = all(getattr(product, "packed", False) for product in self._products)  # every product packed


    @staticmethod
    def supports(model: ByteLM) -> bool:
        """Plain LSTM weights only: a quantised model's layers are not `nn.LSTM`/`nn.Linear` any more."""
        return (type(model.rnn) is nn.LSTM and type(model.head) is nn.Linear
                and model.dtype in (torch.float32, torch.bfloat16) and model.rnn.bias)

    @torch.no_grad()
    def __call__(self, byte_ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """byte_ids (B,) -> logits (B, 256) in float32 (the search takes log-softmax in float32 anyway), and the
        new (h, c), each (layers, B, H) in the model's dtype."""
        rows = byte_ids.numel()
        if state is None:
            zeros = torch.zeros(len(self.recurrent), rows, self.hidden_size, dtype=self.dtype,
                                device=self.head_weight.device)
            state = (zeros, zeros)
        h_in, c_in = state
        hs, cs = [], []
        with use_onednn(self.onednn):
            below = None
            for layer, product in enumerate(self._products[:-1]):
                if layer == 0:
                    gates = self.first_input[byte_ids] + product(h_in[0]).float()
                else:
                    gates = product(torch.cat([below, h_in[layer]], dim=1)).float() + self.biases[layer]
                i, f, g, o = gates.chunk(4, dim=1)  # nn.LSTM's gate order
                c = torch.sigmoid(f) * c_in[layer].float() + torch.sigmoid(i) * torch.tanh(g)
                below = (torch.sigmoid(o) * torch.tanh(c)).to(self.dtype)
                hs.append(below)
                cs.append(c.to(self.dtype))
            logits = self._products[-1](below).float() + self.head_bias
        return logits, (torch.stack(hs), torch.stack(cs))
