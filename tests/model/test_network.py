"""The network: parameter count, the two APIs agreeing, the document-start reset."""

from __future__ import annotations

import pytest
import torch

from codelstm.model import ByteLM, ModelConfig


def closed_form_lstm_params(input_size: int, hidden: int, layers: int) -> int:
    total = 0
    for layer in range(layers):
        i = input_size if layer == 0 else hidden
        total += 4 * hidden * (i + hidden) + 8 * hidden
    return total


@pytest.mark.parametrize("embed,hidden,layers", [(16, 32, 1), (64, 384, 2), (8, 10, 3)])
def test_parameter_count_matches_closed_form(embed, hidden, layers):
    model = ByteLM(ModelConfig(embed_dim=embed, hidden_size=hidden, num_layers=layers))
    rnn = sum(p.numel() for p in model.rnn.parameters())
    assert rnn == closed_form_lstm_params(embed, hidden, layers)
    assert model.num_parameters() == rnn + 256 * embed + hidden * 256 + 256


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_step_api_matches_sequence_api(cell):
    torch.manual_seed(0)
    model = ByteLM(ModelConfig(cell=cell, embed_dim=8, hidden_size=16, num_layers=2)).eval()
    idx = torch.randint(1, 256, (3, 12))
    seq_logits, _, seq_state = model(idx)
    state = None
    for t in range(idx.size(1)):
        logits, state = model.step(idx[:, t], state)
        torch.testing.assert_close(logits, seq_logits[:, t], atol=1e-5, rtol=1e-4)
    for a, b in zip(state, seq_state):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_loss_is_cross_entropy_in_nats():
    model = ByteLM(ModelConfig(embed_dim=8, hidden_size=16, num_layers=1))
    idx = torch.randint(0, 256, (2, 5))
    logits, loss, _ = model(idx, targets=idx)
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, 256), idx.reshape(-1))
    torch.testing.assert_close(loss, expected)


def test_nul_starts_a_document_from_a_fresh_state():
    """A NUL zeroes the carried state, so what follows it does not depend on the previous document."""
    torch.manual_seed(0)
    model = ByteLM(ModelConfig(embed_dim=8, hidden_size=16, num_layers=2)).eval()
    doc = torch.tensor([[0, 65, 66, 67]])
    fresh, _, _ = model(doc)
    _, _, carried = model(torch.randint(1, 256, (1, 9)))
    after, _, _ = model(doc, carried)
    torch.testing.assert_close(after, fresh, atol=1e-5, rtol=1e-4)
    # and in the middle of a chunk, per lane
    batch = torch.tensor([[70, 71, 0, 65, 66, 67], [72, 73, 74, 75, 76, 77]])
    random_state = tuple(torch.randn(2, 2, 16) for _ in range(2))
    out, _, _ = model(batch, random_state)
    torch.testing.assert_close(out[0, 2:], fresh[0], atol=1e-5, rtol=1e-4)
    plain, _, _ = model(batch[1:], tuple(s[:, 1:] for s in random_state))
    torch.testing.assert_close(out[1], plain[0], atol=1e-5, rtol=1e-4)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError):
        ModelConfig(cell="transformer")
    with pytest.raises(ValueError):
        ModelConfig(hidden_size=0)
    with pytest.raises(ValueError):
        ModelConfig.from_dict({"hidden_size": 8, "heads": 4})
