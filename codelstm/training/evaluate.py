"""Bits per byte on held-out documents, each read from its start with a fresh state (SPEC section 7)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from codelstm.model.config import DOC_SEPARATOR
from codelstm.model.network import ByteLM

LOG2E = 1.0 / math.log(2.0)


@torch.no_grad()
def document_nll_bits(model: ByteLM, docs: list[bytes], batch_docs: int = 32, chunk: int = 512) -> tuple[float, int]:
    """(total -log2 p over every byte of every doc, byte count). A doc is fed after a NUL, its start marker."""
    was_training = model.training
    model.eval()
    device = model.device
    total_bits, total_bytes = 0.0, 0
    order = sorted(range(len(docs)), key=lambda i: len(docs[i]))
    for start in range(0, len(order), batch_docs):
        group = [docs[i] for i in order[start:start + batch_docs]]
        longest = max(len(d) for d in group)
        seq = torch.full((len(group), longest + 1), DOC_SEPARATOR, dtype=torch.long)
        mask = torch.zeros((len(group), longest), dtype=torch.bool)
        for row, doc in enumerate(group):
            seq[row, 1:len(doc) + 1] = torch.frombuffer(bytearray(doc), dtype=torch.uint8).long()
            mask[row, :len(doc)] = True
        seq, mask = seq.to(device), mask.to(device)
        state = None
        for pos in range(0, longest, chunk):
            x = seq[:, pos:pos + chunk]
            y = seq[:, pos + 1:pos + chunk + 1]
            m = mask[:, pos:pos + chunk]
            logits, _, state = model(x[:, : y.size(1)], state)
            nll = F.cross_entropy(logits.float().reshape(-1, 256), y.reshape(-1), reduction="none")
            total_bits += float((nll * m.reshape(-1)).sum()) * LOG2E
        total_bytes += int(mask.sum())
    model.train(was_training)
    return total_bits, total_bytes


def bits_per_byte(model: ByteLM, docs: list[bytes], **kw) -> float:
    bits, n = document_nll_bits(model, docs, **kw)
    return bits / max(n, 1)
