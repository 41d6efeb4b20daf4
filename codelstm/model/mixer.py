"""The mixer: one next-byte distribution from the LSTM's and the context models' predictions.

    p(b) = sum_m w_m p_m(b),   w_m = exp(z_m) / sum_{m' present} exp(z_m'),
    z_m = a[c, m, k_m] + sum_g G_g[x_g, m]

over the models m present at this position (the LSTM always is; a context model is present when its
context occurred before). Each p_m sums to 1 over the 256 bytes, so p does too. The weight of a model
is selected by small contexts: c, the class of the previous byte (identifier, blank, newline, other);
k_m, the model's own confidence bucket (for an order-n model: how many earlier occurrences it found
and how many of them agree with the latest; for the match model: the verified match length; for the
LSTM: its largest probability; for the names model: how many corpus occurrences fit and how many of them
agree). The gates G_g let what the *other* models say move a model's weight:
x_g is this position's class in gate g (`GATES`): how long the match is, which is the longest order
whose context occurred, how sure the LSTM is, what the identifier model found, what the names model found
(so a confident corpus table can quiet the models that echo the file's own names), and (when asked for: off
by default, docs/context.md says why) how much history the context models have. a and the gates are fitted on a corpus (`fit_logits` in
training); a is adapted online per document by the gradient of log p(actual byte), so a file whose
context models are reliable comes to trust them more. docs/context.md has the derivation.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from codelstm.model.context import _IDENT, EMPTY, ContextConfig, Predictions
from codelstm.model.context_kernels import mix_step
from codelstm.model.files import atomic_write
from codelstm.model.names import NAME_MAX, NAMES_FILE, NAMES_LOOKBACK, NameTable, document_names, qualifying_name

_IDENT_LIST = _IDENT.tolist()
_IDENT_BYTES = bytes(b for b in range(256) if _IDENT[b])  # `bytes.translate` deletes these

MIXER_FILE = "mixer.json"
SELECTORS = 4  # previous byte: identifier, blank (space/tab), newline, anything else
BUCKETS = 18  # per model; the largest bucket count any model uses
_COUNT_EDGES = np.array([1, 2, 3, 5, 9, 17])  # occurrences found: 1, 2, 3-4, 5-8, 9-16, 17+
_MATCH_EDGES = np.array([1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49])  # verified match length buckets
_LSTM_EDGES = np.array([0.0, 0.3, 0.5, 0.7, 0.85, 0.95])  # the LSTM's largest probability
HISTORY_EDGES = (0, 128, 512, 2048, 8192, 32768)  # bytes of history the context models see (document + workspace)
# The gates, in order, each a table of logits (classes, models) added to z_m by this position's class:
# history: bytes of history (HISTORY_EDGES); match: 0 without a match, else 1 + the match length bucket;
# longest: 0 when no order's context occurred, else 1 + the index of the longest order that did;
# lstm: the LSTM's confidence bucket; identifier: 0 when the identifier model found nothing, else 1 + its bucket;
# names: 0 when the names model has no prediction, else 1 + its bucket.
GATES = ("history", "match", "longest", "lstm", "identifier", "names")
FITTED_GATES = ("match", "longest", "lstm", "identifier", "names")  # by default; the history gate only when asked for


def gate_sizes(config: ContextConfig) -> dict[str, int]:
    """Classes per gate."""
    return {"history": len(HISTORY_EDGES), "match": len(_MATCH_EDGES) + 1, "longest": len(config.orders) + 1,
            "lstm": len(_LSTM_EDGES), "identifier": BUCKETS + 1, "names": BUCKETS + 1}


def model_index(config: ContextConfig, name: str) -> int:
    """Where model `name` ("identifier", "match", "names", "lstm", "order<n>") sits in the mixer's order."""
    return config.model_names.index(name)


def selector_of(previous: np.ndarray) -> np.ndarray:
    """Class of the previous byte (-1: the document start counts as a newline)."""
    from codelstm.model.context import _IDENT

    prev = np.asarray(previous)
    out = np.full(prev.shape, 3, dtype=np.int64)
    safe = np.clip(prev, 0, 255)
    out[_IDENT[safe]] = 0
    out[(prev == 0x20) | (prev == 0x09)] = 1
    out[(prev == 0x0A) | (prev < 0)] = 2
    return out


def count_buckets(found: np.ndarray, agree: np.ndarray) -> np.ndarray:
    """Confidence bucket of an order-n or identifier model: (occurrences found) x (share agreeing with the latest)."""
    size = np.searchsorted(_COUNT_EDGES, found, side="right") - 1
    share = np.where(agree >= found, 0, np.where(2 * agree >= found, 1, 2))
    return np.clip(size, 0, 5) * 3 + share


def match_buckets(length: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(_MATCH_EDGES, length, side="right") - 1, 0, len(_MATCH_EDGES) - 1)


def lstm_buckets(top_probability: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(_LSTM_EDGES, top_probability, side="right") - 1, 0, len(_LSTM_EDGES) - 1)


def history_buckets(history_bytes: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(HISTORY_EDGES), history_bytes, side="right") - 1


@dataclass
class MixerWeights:
    """Fitted selection logits a[selector, model, bucket] and the gates' logits, the context models' settings,
    the online rate, and the names model's table (None: that model never predicts)."""

    config: ContextConfig = field(default_factory=ContextConfig)
    logits: np.ndarray | None = None  # (SELECTORS, models, BUCKETS); None: every model weighted alike
    online_rate: float = 0.02  # step size of the per-document adaptation (0: none)
    fitted_on: dict = field(default_factory=dict)  # what the logits were fitted on (provenance)
    gates: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (classes, models); absent: zeros
    names: NameTable | None = None  # saved beside mixer.json as names.safetensors

    def __post_init__(self) -> None:
        models = len(self.config.model_names)
        if self.logits is None:
            self.logits = np.zeros((SELECTORS, models, BUCKETS), dtype=np.float64)
        if self.logits.shape != (SELECTORS, models, BUCKETS):
            raise ValueError(f"mixer logits have shape {self.logits.shape}, expected {(SELECTORS, models, BUCKETS)}")
        unknown = set(self.gates) - set(GATES)
        if unknown:
            raise ValueError(f"unknown gates {sorted(unknown)} (known: {', '.join(GATES)})")
        sizes = gate_sizes(self.config)
        gates = {}
        for name in GATES:
            table = np.asarray(self.gates[name], dtype=np.float64) if name in self.gates else \
                np.zeros((sizes[name], models))
            if table.shape != (sizes[name], models):
                raise ValueError(f"mixer gate {name!r} has shape {table.shape}, expected {(sizes[name], models)}")
            gates[name] = table
        self.gates = gates

    def gate_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Every gate's logits stacked (classes of all gates, models) and where each gate's rows start."""
        offsets = np.cumsum([0] + [len(self.gates[name]) for name in GATES[:-1]])
        return np.concatenate([self.gates[name] for name in GATES]), offsets.astype(np.int64)

    def save(self, folder: str | Path) -> Path:
        """mixer.json, and names.safetensors when there is a names table (an older one there is removed)."""
        path = Path(folder) / MIXER_FILE
        if self.names is not None:
            self.names.save(folder)
        else:
            (Path(folder) / NAMES_FILE).unlink(missing_ok=True)
        text = json.dumps({
            "format": "codelstm-mixer/4", "context": self.config.to_dict(), "online_rate": self.online_rate,
            "models": self.config.model_names, "fitted_on": self.fitted_on,
            "logits": np.round(self.logits, 5).tolist(), "history_edges": list(HISTORY_EDGES),
            "gates": {name: np.round(self.gates[name], 5).tolist() for name in GATES},
        }, indent=1) + "\n"
        atomic_write(path, lambda tmp: Path(tmp).write_text(text))
        return path

    @classmethod
    def load(cls, folder: str | Path) -> "MixerWeights | None":
        """The mixer shipped beside a checkpoint (with its names.safetensors, if any), or None when it has none (the
        LSTM is then used alone). Earlier formats read as what they computed: format 3 had no names model,
        format 2 the history gate only, format 1 no gate."""
        path = Path(folder) / MIXER_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            form = data.get("format")
            if form not in ("codelstm-mixer/1", "codelstm-mixer/2", "codelstm-mixer/3", "codelstm-mixer/4"):
                raise ValueError(f"unknown format {form!r}")
            if form != "codelstm-mixer/1" and tuple(data["history_edges"]) != HISTORY_EDGES:
                raise ValueError(f"history edges {data['history_edges']} differ from this version's "
                                 f"{list(HISTORY_EDGES)}")
            gates = data["gates"] if form in ("codelstm-mixer/3", "codelstm-mixer/4") else \
                {"history": data["history_logits"]} if form == "codelstm-mixer/2" else {}
            logits = np.asarray(data["logits"], dtype=np.float64)
            gates = {name: np.asarray(table, dtype=np.float64) for name, table in gates.items()}
            if form != "codelstm-mixer/4":  # before the names model: its column never weighs (it never predicts)
                logits = np.concatenate([logits, np.zeros(logits.shape[:1] + (1,) + logits.shape[2:])], axis=1)
                gates = {name: np.concatenate([t, np.zeros((len(t), 1))], axis=1) for name, t in gates.items()}
            names = NameTable.load(folder) if form == "codelstm-mixer/4" else None
            return cls(ContextConfig.from_dict(data["context"]), logits, float(data["online_rate"]),
                       data.get("fitted_on", {}), gates, names)
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path} is not a usable mixer: {e}") from None


@dataclass
class Evidence:
    """For each position of a document: each model's probability of the actual byte, its bucket, presence."""

    target_probability: np.ndarray  # (N, models) float64
    bucket: np.ndarray  # (N, models) int64
    present: np.ndarray  # (N, models) bool
    selector: np.ndarray  # (N,) int64
    history: np.ndarray  # (N,) int64: the history bucket


def gate_classes(evidence: Evidence, config: ContextConfig) -> np.ndarray:
    """(N, len(GATES)): each position's class in each gate, from what the models said there."""
    n_orders = len(config.orders)
    orders = evidence.present[:, 1:1 + n_orders]
    longest = np.where(orders.any(axis=1), n_orders - np.argmax(orders[:, ::-1], axis=1), 0)
    of = {}
    for name in ("identifier", "match", "names"):
        m = model_index(config, name)
        of[name] = np.where(evidence.present[:, m], evidence.bucket[:, m] + 1, 0)
    return np.stack([evidence.history, of["match"], longest, evidence.bucket[:, 0], of["identifier"], of["names"]],
                    axis=1).astype(np.int64)


def gate_logits(weights: MixerWeights, evidence: Evidence) -> np.ndarray:
    """(N, models): the gates' sum at each position, what z_m adds to a[c, m, k_m]."""
    table, offsets = weights.gate_table()
    return table[gate_classes(evidence, weights.config) + offsets].sum(axis=1)


def gather_evidence(doc: bytes, predictions: Predictions, lstm_target_logprob: np.ndarray,
                    lstm_top_probability: np.ndarray, config: ContextConfig, workspace_bytes: int = 0,
                    names: tuple[np.ndarray, np.ndarray] | None = None) -> Evidence:
    """Bulk evidence for a document, given the LSTM's log-probability of each actual byte and its largest
    probability at each position (all the mixer needs of it, so no (N, 256) array is kept); `workspace_bytes`:
    the size of the workspace the predictions also looked in; `names`: the names model's probability of each
    actual byte and its bucket (-1: none; `names.document_names`), None when there is no names table."""
    n = len(doc)
    target = np.frombuffer(doc, dtype=np.uint8).astype(np.int64)
    models = len(config.model_names)
    prob = np.zeros((n, models))
    bucket = np.zeros((n, models), dtype=np.int64)
    present = np.zeros((n, models), dtype=bool)
    prob[:, 0] = np.exp(np.asarray(lstm_target_logprob, dtype=np.float64))
    bucket[:, 0] = lstm_buckets(np.asarray(lstm_top_probability, dtype=np.float64))
    present[:, 0] = True
    for m, table in enumerate(predictions.next_bytes, start=1):
        found = (table != EMPTY).sum(axis=1)
        hits = (table == target[:, None]).sum(axis=1)
        agree = (table == table[:, :1]).sum(axis=1)
        ok = found > 0
        prob[ok, m] = hits[ok] / found[ok]
        bucket[:, m] = count_buckets(found, agree)
        present[:, m] = ok
    m = model_index(config, "match")
    ok = predictions.match_byte != EMPTY
    prob[ok, m] = (predictions.match_byte[ok] == target[ok]).astype(np.float64)
    bucket[:, m] = match_buckets(predictions.match_length)
    present[:, m] = ok
    if names is not None:
        m = model_index(config, "names")
        prob[:, m], ok = names[0], names[1] >= 0
        bucket[:, m] = np.maximum(names[1], 0)
        present[:, m] = ok
    previous = np.concatenate(([-1], target[:-1])) if n else target
    history = history_buckets(np.arange(n, dtype=np.int64) + workspace_bytes)
    return Evidence(prob, bucket, present, selector_of(previous), history)


def mixed_target_probability(weights: MixerWeights, evidence: Evidence, adapt: bool = True) -> np.ndarray:
    """p(actual byte) at every position, with the weights adapted online along the document when `adapt`.

    The mixture at position i uses the logits as they stand after positions < i, exactly what a
    completion at i would use; then the logits take one gradient step on log p(actual byte).
    """
    logits = weights.logits
    rows = np.arange(len(weights.config.model_names))
    if not adapt or weights.online_rate == 0:
        a = logits[evidence.selector[:, None], rows[None, :], evidence.bucket]
        a = a + gate_logits(weights, evidence)
        a = np.where(evidence.present, a, -np.inf)
        w = np.exp(a - a.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        return (w * evidence.target_probability).sum(axis=1)
    return _adaptive_walk(weights, evidence)[0]


def _adaptive_walk(weights: MixerWeights, evidence: Evidence) -> tuple[np.ndarray, np.ndarray]:
    """(p(actual byte) at every position, the logits after the last one), adapting as it goes:
    d log p / d a_m = w_m (p_m - p) / p for each model m present, one step of `online_rate` per byte."""
    logits = weights.logits.copy()
    gated = gate_logits(weights, evidence)
    rows = np.arange(len(weights.config.model_names))
    rate = weights.online_rate
    out = np.empty(len(evidence.selector))
    for i in range(len(out)):
        m = rows[evidence.present[i]]
        k = evidence.bucket[i, m]
        s = evidence.selector[i]
        a = logits[s, m, k] + gated[i, m]
        w = np.exp(a - a.max())
        w /= w.sum()
        pm = evidence.target_probability[i, m]
        p = float(w @ pm)
        out[i] = p
        logits[s, m, k] += rate * w * (pm - p) / max(p, 1e-12)
    return out, logits


def mix_distribution(weights: MixerWeights, lstm_probs: np.ndarray, selector: int, history_bytes: int,
                     lstm_bucket: int, tables: list[np.ndarray], match_byte: int, match_length: int,
                     names: tuple[np.ndarray, np.ndarray, int] | None = None) -> np.ndarray:
    """The whole mixed distribution over 256 bytes at one position, from its definition (`DocumentMixer.mix`
    is the fast form the search uses; a test holds them equal). `names`: the names model's prediction there
    (`NameTable.predict_at`: next bytes, their probabilities, its bucket) or None."""
    config, weights_logits = weights.config, weights.logits
    n_orders = len(config.orders)
    occurred = [m for m, row in enumerate(tables[:n_orders]) if (row != EMPTY).any()]
    seen = tables[n_orders][tables[n_orders] != EMPTY]
    classes = {"history": _history_bucket(history_bytes),
               "match": 0 if match_byte == EMPTY else 1 + int(match_buckets(np.array([match_length]))[0]),
               "longest": 1 + occurred[-1] if occurred else 0, "lstm": lstm_bucket,
               "identifier": 1 + int(count_buckets(np.array([len(seen)]), np.array([(seen == seen[0]).sum()]))[0])
               if len(seen) else 0, "names": 0 if names is None else 1 + names[2]}
    g = sum(weights.gates[name][classes[name]] for name in GATES)
    components = [lstm_probs.astype(np.float64)]
    chosen = [weights_logits[selector, 0, lstm_bucket] + g[0]]
    for m, row in enumerate(tables, start=1):
        row = row[row != EMPTY]
        if not len(row):
            continue
        counts = np.bincount(row.astype(np.int64), minlength=256).astype(np.float64)
        components.append(counts / len(row))
        agree = int((row == row[0]).sum())
        chosen.append(weights_logits[selector, m, count_buckets(np.array([len(row)]), np.array([agree]))[0]] + g[m])
    if match_byte != EMPTY:
        one_hot = np.zeros(256)
        one_hot[match_byte] = 1.0
        components.append(one_hot)
        m = model_index(config, "match")
        chosen.append(weights_logits[selector, m, match_buckets(np.array([match_length]))[0]] + g[m])
    if names is not None:
        spread = np.zeros(256)
        spread[names[0]] = names[1]
        components.append(spread)
        m = model_index(config, "names")
        chosen.append(weights_logits[selector, m, names[2]] + g[m])
    a = np.array(chosen)
    w = np.exp(a - a.max())
    w /= w.sum()
    return w @ np.stack(components)


def bits(probabilities: np.ndarray) -> float:
    return float(-np.log2(np.maximum(probabilities, 1e-300)).sum())


class DocumentMixer:
    """The mixture for one document: its context view and its own adapted copy of the logits.

    `adapt` walks the document's bytes (with the LSTM's scores of them) exactly as the bulk evaluation
    does, so a completion at the end of the document uses the logits that the evaluation would have at
    that position. `mix` turns the LSTM's log-probabilities for several beams into mixed ones; the beams
    differ only in their generated bytes, and the logits stay fixed during a search.
    """

    def __init__(self, weights: MixerWeights, view) -> None:
        self.weights = weights
        self.view = view  # a ContextView over the document (and its workspace)
        # shared with the weights until `adapt` gives the document its own (no one writes into either), so the
        # searches of many documents mix in one call (`mix_many`)
        self.logits = weights.logits
        self._gates = weights.gate_table()  # fixed: online adaptation moves `logits` only
        # `_name_typed`'s reading of the document's end: (key, name typed, the identifier before the dot)
        self._qualifier: tuple[bytes | None, bytes, bytes] | None = None

    @classmethod
    def for_document(cls, weights: MixerWeights, document: bytes, scores: tuple[np.ndarray, np.ndarray] | None = None,
                     workspace=None) -> "DocumentMixer":
        """A mixer at the end of `document` (indexed whole); `workspace`: a ContextIndex or None. With the LSTM's
        `scores` of the document (from `scoring.read_scored`) the logits are adapted along it; without, they
        stay the fitted ones, as the server uses them (docs/context.md, "Online adaptation")."""
        from codelstm.model.context import ContextIndex, document_predictions
        from codelstm.model.context_view import ContextView

        index = ContextIndex.build(document, weights.config) if document else None
        mixer = cls(weights, ContextView(weights.config, document, index, workspace))
        if document and scores is not None:
            mixer.adapt(scores[0], scores[1], document_predictions(document, weights.config, workspace))
        return mixer

    def adapt(self, lstm_target_logprob: np.ndarray, lstm_top_probability: np.ndarray,
              predictions: Predictions) -> None:
        """Run the online adaptation over the whole document (bulk predictions of it, the LSTM's scores)."""
        if self.weights.online_rate == 0:
            return
        table = self.weights.names
        evidence = gather_evidence(self.view.document, predictions, lstm_target_logprob, lstm_top_probability,
                                   self.weights.config, self.view.workspace_bytes,
                                   document_names(self.view.document, table) if table is not None else None)
        adapted = MixerWeights(self.weights.config, self.logits, self.weights.online_rate,
                               gates=self.weights.gates)
        self.logits = adapt_logits(adapted, evidence)

    def distribution(self, generated: bytes, lstm_logprobs: np.ndarray) -> np.ndarray:
        """Mixed probabilities (256,) after document + generated, from the LSTM's log-probabilities there."""
        return np.exp(self.mix([generated], lstm_logprobs.reshape(1, -1)))[0]

    def mix(self, generated: list[bytes], lstm_logprobs: np.ndarray) -> np.ndarray:
        """(k, 256) mixed log-probabilities for k beams from their (k, 256) LSTM log-probabilities.

        The same sum as `mix_distribution`, for all beams at once and compiled (`context_kernels.mix_step`)."""
        return mix_many([(self, generated)], lstm_logprobs)

    def _step_inputs(self, generated: list[bytes]) -> tuple[np.ndarray, ...]:
        """`mix_step`'s per-beam arguments: the context models' answers (`ContextView.step_arrays`), the
        selectors, the history buckets and the names model's probabilities and buckets."""
        document = self.view.document
        doc_last = document[-1] if document else -1
        history_before = len(document) + self.view.workspace_bytes
        selectors = np.array([_selector(g[-1] if g else doc_last) for g in generated], dtype=np.int64)
        history = np.array([_history_bucket(history_before + len(g)) for g in generated], dtype=np.int64)
        return (*self.view.step_arrays(generated), selectors, history, *self._names(generated))

    def knows_name(self, generated: bytes) -> bool | None:
        """Whether the name that document + `generated` ends with was written after its qualifier in the names
        table's corpus, or anywhere in the document or workspace; None where the table knows no qualifier for
        it (no opinion). Token-mode searches rank such names first (`generate.Search`): after `parser.`, the
        search can join bytes into `add_argumentParser`, which nobody wrote.

        The qualifier's own name is known only from the table (`datetime.datetime`): the document writes
        `parser` because it is the qualifier, and the context models echo it (`args = parser.parser`)."""
        table = self.weights.names
        key, name = self._name_typed(generated)
        if key is None or not name:
            return None
        found = table.predict(key, name)
        if found is not None and not all(_IDENT_LIST[b] for b in found[0].tolist()):
            return True  # some entry is this name followed by a byte that ends it
        return name != self._qualifier[2] and self._text_writes(name, whole=True)

    def may_become_known(self, generated: bytes) -> bool:
        """Whether the name being typed at document + `generated` can still end as one `knows_name` accepts (or
        has no opinion on): a name of the table starts with it, or an identifier of the document or workspace
        does. What a token search may not prune while its n-th result is an unknown name."""
        key, name = self._name_typed(generated)
        if key is None or not name or self.weights.names.predict(key, name) is not None:
            return True
        return self._text_writes(name, whole=False)

    def _text_writes(self, name: bytes, whole: bool) -> bool:
        """Whether an identifier of the document or the workspace is `name` (`whole`) or starts with it. The
        document changes with every keystroke, so it is searched; the workspace's sorted identifiers are
        bisected, where a scan of its text would cost a millisecond per MiB for each candidate."""
        if _occurs_as_identifier(self.view.document, name, whole):
            return True
        workspace = self.view.workspace
        if workspace is None:
            return False
        identifiers = workspace.identifiers()
        i = bisect.bisect_left(identifiers, name)
        return i < len(identifiers) and (identifiers[i] == name if whole else identifiers[i].startswith(name))

    def _name_typed(self, generated: bytes) -> tuple[bytes | None, bytes]:
        """(the names table's key for the qualifier at the end of the document, the name typed there followed by
        `generated`): the key is read where the search starts, so every candidate of one search is judged by
        the same qualifier, however long it grows. (None, b"") without a table or a qualifier it knows."""
        if self._qualifier is None:  # the document does not change during a search: read it once
            table = self.weights.names
            tail = self.view.document[-NAMES_LOOKBACK:]
            key, start = table.key_at(tail, len(tail)) if table is not None else (None, 0)
            self._qualifier = (key, tail[start:], qualifying_name(tail, start)) if key is not None else (None, b"", b"")
        key, typed, _ = self._qualifier
        return (None, b"") if key is None else (key, typed + generated)

    def _names(self, generated: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """The names model after document + each beam's bytes: (k, 256) probabilities and (k,) buckets (-1: none).
        A qualifier and the name after it lie within the last few hundred bytes (`names.qualifier_keys`)."""
        table = self.weights.names
        probs = np.zeros((len(generated), 256))
        buckets = np.full(len(generated), -1, dtype=np.int64)
        if table is None:
            return probs, buckets
        tail = self.view.document[-NAMES_LOOKBACK:]
        key, typed = self._name_typed(b"")
        for b, g in enumerate(generated):
            if not g.translate(None, _IDENT_BYTES):  # the name typed goes on, after the same qualifier (`key_at`)
                name = typed + g
                found = table.predict(key, name) if key is not None and len(name) <= NAME_MAX else None
            else:
                text = tail + g
                found = table.predict_at(text, len(text))
            if found is not None:
                probs[b, found[0]] = found[1]
                buckets[b] = found[2]
        return probs, buckets


def mix_many(beams: list[tuple[DocumentMixer, list[bytes]]], lstm_logprobs: np.ndarray) -> np.ndarray:
    """`DocumentMixer.mix` for the beams of several documents at once: (rows, 256) mixed log-probabilities from
    the LSTM's, whose rows are each mixer's beams in turn. Mixers with the same weights and logits (a server's:
    it never adapts them) share one compiled call instead of one call each."""
    lstm_logprobs = np.ascontiguousarray(lstm_logprobs, dtype=np.float32)
    out = np.empty(lstm_logprobs.shape)
    row = 0
    for first, last in _runs([(id(m.weights), id(m.logits)) for m, _ in beams]):
        mixer = beams[first][0]
        parts = [m._step_inputs(generated) for m, generated in beams[first:last]]
        rows = sum(len(generated) for _, generated in beams[first:last])
        inputs = parts[0] if len(parts) == 1 else [np.concatenate(arrays) for arrays in zip(*parts)]
        out[row:row + rows] = mix_step(lstm_logprobs[row:row + rows], *inputs, mixer.logits, *mixer._gates,
                                       len(mixer.weights.config.orders), _COUNT_EDGES, _MATCH_EDGES, _LSTM_EDGES)
        row += rows
    return out


def _runs(keys: list) -> list[tuple[int, int]]:
    """[first, last) spans of equal consecutive keys."""
    spans, first = [], 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[first]:
            spans.append((first, i))
            first = i
    return spans


def _occurs_as_identifier(text: bytes, name: bytes, whole: bool) -> bool:
    """Whether `name` occurs in `text` where an identifier starts (and, if `whole`, where it also ends).

    `bytes.find` skips to each occurrence at C speed; a regular expression that starts with a look-behind
    would try every position of the text instead."""
    at = text.find(name)
    while at >= 0:
        end = at + len(name)
        if (at == 0 or not _IDENT_LIST[text[at - 1]]) and (
                not whole or end == len(text) or not _IDENT_LIST[text[end]]):
            return True
        at = text.find(name, at + 1)
    return False


def compile_kernels(weights: MixerWeights) -> None:
    """Compile the step kernels now (or load them from numba's cache: well under a second), so that the first
    completion with context does not wait seconds for it; an engine calls this when it is made."""
    mixer = DocumentMixer.for_document(weights, b"x = x\n")
    mixer.mix([b"", b"x"], np.zeros((2, 256), dtype=np.float32))


def _selector(previous: int) -> int:
    """`selector_of` for one byte (-1: the document start)."""
    if previous < 0 or previous == 0x0A:
        return 2
    if previous in (0x20, 0x09):
        return 1
    return 0 if _IDENT_LIST[previous] else 3


def _history_bucket(history_bytes: int) -> int:
    return bisect.bisect_right(HISTORY_EDGES, history_bytes) - 1


def adapt_logits(weights: MixerWeights, evidence: Evidence) -> np.ndarray:
    """The logits after the online adaptation along a document."""
    return _adaptive_walk(weights, evidence)[1]
