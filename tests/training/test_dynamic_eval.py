"""Dynamic evaluation: adapting to a document lowers its loss when the document repeats something the
model does not know, and leaves the model as it was."""

from __future__ import annotations

import numpy as np
import torch

from codelstm.model import load_checkpoint
from codelstm.model.scoring import lstm_scores_many
from codelstm.training.dynamic_eval import DynamicSettings, dynamic_scores

DOC = b"".join(b"zorblax_quintent = qv%d\n" % (i % 3) for i in range(120))  # names the tiny model never saw


def nats(scores) -> float:
    return float(-scores[0].astype(np.float64).mean())


def test_each_variant_learns_the_document_it_reads_and_restores_the_model(tiny_model):
    model, _ = load_checkpoint(tiny_model)
    model = model.float().eval()
    before = [p.detach().clone() for p in model.parameters()]
    plain = lstm_scores_many(model, [DOC])[0]
    for variant, rate, most in (("full", 0.3, 0.8), ("head_bias", 1.0, 0.95)):  # a bias alone learns less
        adapted = dynamic_scores(model, DOC, DynamicSettings(variant, rate, chunk=64))
        assert adapted[0].shape == adapted[1].shape == plain[0].shape == plain[1].shape == (len(DOC),)
        second_half = slice(len(DOC) // 2, None)  # by then it has adapted
        assert nats((adapted[0][second_half],)) < most * nats((plain[0][second_half],)), variant
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert not any(p.requires_grad for p in model.parameters())
