"""The LSTM's view of whole documents: how likely it found each actual byte, and how sure it was.

The mixer needs, for every position of a document, the LSTM's probability of the byte that came and its
largest probability there (`gather_evidence`); evaluation and mixer fitting need it for many documents,
and a completion over a whole prefix needs it together with the state at the end (`read_scored`).
"""

from __future__ import annotations

import numpy as np
import torch

from codelstm.model.config import DOC_SEPARATOR
from codelstm.model.network import ByteLM, State, use_onednn

PADDING = 0x20  # what fills a row after its last document (its scores are never read)
Scores = tuple[np.ndarray, np.ndarray]  # per position: log-probability of the actual byte, largest probability


@torch.no_grad()
def lstm_scores_many(model: ByteLM, docs: list[bytes], lanes: int = 16, chunk: int = 1024,
                     progress: bool = False) -> list[Scores]:
    """Each doc's scores, as if read alone from a fresh state after a NUL.

    Documents are packed back to back into `lanes` rows (the model zeroes a row's state at each NUL, so
    every document starts fresh): a CPU reads 16 rows at little more than the cost of one, while a single
    sequence waits on one matrix-vector product after another.
    """
    rows: list[list[int]] = [[] for _ in range(min(lanes, max(len(docs), 1)))]
    sizes = [0] * len(rows)
    for i in sorted(range(len(docs)), key=lambda i: -len(docs[i])):  # longest first onto the emptiest row
        row = sizes.index(min(sizes))
        rows[row].append(i)
        sizes[row] += len(docs[i]) + 1
    longest = max(sizes)
    # rows that end early are padded with blanks, not NULs: the model splits its pass at every column that
    # holds a NUL (a document start), and a padding of NULs would split it at every byte
    seq = torch.full((len(rows), longest + 1), PADDING, dtype=torch.long)
    where: dict[int, tuple[int, int]] = {}
    for r, members in enumerate(rows):
        offset = 0
        for i in members:
            seq[r, offset] = DOC_SEPARATOR
            seq[r, offset + 1:offset + 1 + len(docs[i])] = torch.frombuffer(bytearray(docs[i]), dtype=torch.uint8).long()
            where[i] = (r, offset)  # the NUL before doc i sits at `offset`
            offset += len(docs[i]) + 1
    seq = seq.to(model.device)
    target_logprob = torch.empty(len(rows), longest)
    top = torch.empty(len(rows), longest)
    state = None
    from tqdm import tqdm

    for pos in tqdm(range(0, longest, chunk), desc="LSTM", unit="chunk", disable=not progress, dynamic_ncols=True):
        x, y = seq[:, pos:pos + chunk], seq[:, pos + 1:pos + chunk + 1]
        x = x[:, :y.size(1)]
        with use_onednn(True):
            logits, _, state = model(x, state)
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        target_logprob[:, pos:pos + y.size(1)] = logprobs.gather(2, y.unsqueeze(-1)).squeeze(-1).cpu()
        top[:, pos:pos + y.size(1)] = logprobs.max(dim=2).values.exp().cpu()
    out = []
    for i, doc in enumerate(docs):
        r, offset = where[i]
        out.append((target_logprob[r, offset:offset + len(doc)].numpy().copy(),
                    top[r, offset:offset + len(doc)].numpy().copy()))
    return out


@torch.no_grad()
def read_scored(model: ByteLM, text: bytes, chunk: int = 4096) -> tuple[State, torch.Tensor, Scores]:
    """Read `text` from a fresh state (after a NUL) like `prefill`: (state, next-byte logits (1, 256), scores)."""
    ids = torch.frombuffer(bytearray(bytes([DOC_SEPARATOR]) + text), dtype=torch.uint8).long().view(1, -1)
    ids = ids.to(model.device)
    state, logits = None, None
    target_logprob, top = [], []
    for pos in range(0, ids.size(1), chunk):
        with use_onednn(True):
            out, _, state = model(ids[:, pos:pos + chunk], state)
        logits = out[:, -1]
        logprobs = torch.log_softmax(out[0].float(), dim=-1)
        y = ids[0, pos + 1:pos + chunk + 1]
        target_logprob.append(logprobs[:len(y)].gather(1, y.view(-1, 1)).flatten().cpu().numpy())
        top.append(logprobs[:len(y)].max(dim=1).values.exp().cpu().numpy())
    return state, logits, (np.concatenate(target_logprob), np.concatenate(top))
