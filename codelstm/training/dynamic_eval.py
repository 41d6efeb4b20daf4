"""Dynamic evaluation (Krause et al., ICML 2018): the LSTM goes on learning the document it reads.

After predicting each chunk of a document the network takes one gradient step on that chunk, then
decays back towards the shipped weights, so it adapts to the file's names and habits without
drifting. Two variants, for issue 12's question of what pays for its latency and memory:

- `full`: every weight adapts: about 13 MB of weights per document for the bundled model, and a
  request can no longer share its batched LSTM step with other documents' requests;
- `head_bias`: only the output layer's bias adapts: a 256-number delta per document, which keeps
  requests batchable (each row adds its own bias to the shared logits).

Scores come out in the form the mixer takes (`codelstm.model.scoring.Scores`), so the context models
can be mixed in on top. The model is left as it came.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from codelstm.model.config import DOC_SEPARATOR
from codelstm.model.network import ByteLM, use_onednn
from codelstm.model.scoring import Scores

Variant = Literal["full", "head_bias"]


@dataclass(frozen=True)
class DynamicSettings:
    variant: Variant = "full"
    learning_rate: float = 0.01  # plain SGD on the chunk's mean loss in nats
    decay: float = 0.02  # per step, the share of the way back to the shipped weights
    chunk: int = 128  # bytes predicted before each update


def dynamic_scores(model: ByteLM, doc: bytes, settings: DynamicSettings) -> Scores:
    """The LSTM's scores of `doc` read from a fresh state while adapting to it (float32 model, eval mode)."""
    shipped = {name: p.detach().clone() for name, p in model.named_parameters()}
    adapted = [p for name, p in model.named_parameters() if settings.variant == "full" or name == "head.bias"]
    adapted_ids = {id(p) for p in adapted}
    for p in model.parameters():
        p.requires_grad_(id(p) in adapted_ids)
    model.eval()  # no dropout; gradients still flow
    ids = torch.frombuffer(bytearray(bytes([DOC_SEPARATOR]) + doc), dtype=torch.uint8).long()
    target_logprob: list[np.ndarray] = []
    top: list[np.ndarray] = []
    state = None
    try:
        for pos in range(0, len(doc), settings.chunk):
            y = ids[pos + 1:pos + settings.chunk + 1]
            x = ids[pos:pos + len(y)].view(1, -1)
            with use_onednn(False):  # ATen's kernel has the backward pass on every CPU
                logits, _, new_state = model(x, state)
            logprobs = F.log_softmax(logits[0].float(), dim=-1)
            chosen = logprobs.gather(1, y.view(-1, 1)).flatten()
            target_logprob.append(chosen.detach().numpy().astype(np.float32))
            top.append(logprobs.detach().exp().max(dim=1).values.numpy().astype(np.float32))
            model.zero_grad(set_to_none=True)
            (-chosen.mean()).backward()
            with torch.no_grad():
                for name, p in model.named_parameters():
                    if id(p) in adapted_ids:
                        p.sub_(settings.learning_rate * p.grad)
                        p.add_(settings.decay * (shipped[name] - p))
            state = tuple(s.detach() for s in new_state)
    finally:
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(shipped[name])
                p.requires_grad_(False)
                p.grad = None
    return np.concatenate(target_logprob), np.concatenate(top)
