"""The compiled inner loops of a search step with context: every context model's lookups for every beam,
then the mixture (numba).

A step asks each of a dozen context models about each beam: a hash, a scan of the beam's own bytes, a
binary search in up to three sorted indexes, a match to verify; then it weighs the answers. Written in
Python that was about 10 microseconds per (beam, model), 0.5-0.9 ms a step, more than half an LSTM
step. Compiled, the same rules cost 3-4x less in a search (BENCHMARKS.md), most of what is left being
memory traffic after each LSTM step.

The definitions are `ContextView`'s and `DocumentMixer`'s (context_view.py, mixer.py; docs/context.md);
tests hold these kernels equal to the bulk reading of a document (`document_predictions`) and to the
mixture written out (`mix_distribution`). Compiled on first use and cached beside this file (or in
numba's user cache when that is not writable), so a process after the first starts them in well under
a second.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from codelstm.model.context import EMPTY
from codelstm.model.context import HASH_MULTIPLIER as _MULTIPLIER

HASH_MULTIPLIER = np.uint64(_MULTIPLIER)  # a uint64 constant: numba's arithmetic on it wraps modulo 2**64


@nb.njit(cache=True, inline="always")
def _text_byte(document: np.ndarray, generated: np.ndarray, start: int, position: int) -> int:
    """Byte `position` of the text document + generated[start:] (the beam's bytes follow the document)."""
    n_doc = len(document)
    return document[position] if position < n_doc else generated[start + position - n_doc]


@nb.njit(cache=True)
def _key_range(keys: np.ndarray, positions: np.ndarray, limit: int, needle: np.uint64) -> tuple[int, int]:
    """[lo, hi) of `needle` in the sorted keys, less the entries at positions >= limit (limit < 0: none)."""
    lo, hi = 0, len(keys)
    while lo < hi:  # first key >= needle
        mid = (lo + hi) >> 1
        if keys[mid] < needle:
            lo = mid + 1
        else:
            hi = mid
    if lo == len(keys) or keys[lo] != needle:
        return lo, lo
    start, hi = lo, len(keys)
    while lo < hi:  # first key > needle
        mid = (lo + hi) >> 1
        if keys[mid] <= needle:
            lo = mid + 1
        else:
            hi = mid
    end = lo
    if limit >= 0:  # positions ascend within a key: keep those below the limit
        lo, hi = start, end
        while lo < hi:
            mid = (lo + hi) >> 1
            if positions[mid] < limit:
                lo = mid + 1
            else:
                hi = mid
        end = lo
    return start, end


@nb.njit(cache=True)
def predict_step(document, generated, offsets, orders, recent, identifier_max, tags, mask, identifier,
                 recent_keys, recent_positions, index_keys, index_positions, index_data, index_limit,
                 workspace_keys, workspace_positions, workspace_data, match_cap):
    """Every context model's view of the position after document + each beam's bytes.

    `generated[offsets[b]:offsets[b + 1]]` are beam b's bytes. The sources, searched in this order after
    the beam's own bytes: the index of the document's recent bytes (its data is `document`), the
    document's older index (`index_data`, only positions below `index_limit` count; -1: all), the
    workspace's. An empty keys array stands for an absent source.

    Returns followers (k, models, recent) int16 (EMPTY-padded, latest first), their counts (k, models),
    and the match model's byte (EMPTY: none) and verified length per beam. `ContextView` documents the
    rules; this is them, loop for loop."""
    k = len(offsets) - 1
    n_orders = len(orders)
    models = n_orders + 1
    span = max(orders.max(), identifier_max) + 1
    n_doc = len(document)
    followers = np.full((k, models, recent), EMPTY, dtype=np.int16)
    counts = np.zeros((k, models), dtype=np.int64)
    match_byte = np.full(k, EMPTY, dtype=np.int64)
    match_length = np.zeros(k, dtype=np.int64)
    hashes = np.zeros(span + 1, dtype=np.uint64)
    for b in range(k):
        start = offsets[b]
        glen = offsets[b + 1] - start
        i = n_doc + glen  # the position predicted
        available = min(span, i)
        h = np.uint64(0)
        power = np.uint64(1)
        for length in range(1, available + 1):  # hash(last L bytes), the last byte with power 0
            h = h + (np.uint64(_text_byte(document, generated, start, i - length)) + np.uint64(1)) * power
            power = power * HASH_MULTIPLIER
            hashes[length] = h
        raw = 0
        while raw < available and identifier[_text_byte(document, generated, start, i - 1 - raw)]:
            raw += 1
        ident = raw if raw <= identifier_max else 0
        hit_order, hit_in_text, hit_position = 0, True, -1
        scan = glen > 0
        for m in range(models):
            if m < n_orders:
                n = orders[m]
                if n > i:  # too near the start (orders ascend: so are the longer ones)
                    continue
                if m > 0 and counts[b, m - 1] == 0:
                    continue  # where the shorter context never occurred, its extensions did not either
                aligned = False
            else:
                n = ident
                if n == 0:
                    continue
                aligned = True
            count, latest, in_text = 0, -1, True
            if glen > 0 and (scan or aligned):
                # the beam's own bytes: occurrences of the last n bytes whose follower is a generated byte,
                # latest first (local text from max(n_doc - n - 1, 0), occurrences from `floor` on)
                local_doc = min(n + 1, n_doc)
                offset = n_doc - local_doc
                floor = max(local_doc - n, 0)
                local_len = local_doc + glen
                at = local_len - 1 - n
                while at >= floor and count < recent:
                    same = True
                    for j in range(n):
                        if _text_byte(document, generated, start, offset + at + j) != \
                                _text_byte(document, generated, start, i - n + j):
                            same = False
                            break
                    if same and aligned and offset + at > 0 and \
                            identifier[_text_byte(document, generated, start, offset + at - 1)]:
                        same = False
                    if same:
                        followers[b, m, count] = _text_byte(document, generated, start, offset + at + n)
                        count += 1
                        if latest < 0:
                            latest = offset + at + n
                    at -= 1
                if not aligned:
                    scan = latest >= 0  # a longer context cannot occur where its own suffix does not
            key = tags[m] | (hashes[n] & mask)
            for source in range(3):
                if count >= recent and latest >= 0:
                    break
                if source == 0:
                    keys, positions, data, limit = recent_keys, recent_positions, document, -1
                elif source == 1:
                    keys, positions, data, limit = index_keys, index_positions, index_data, index_limit
                else:
                    keys, positions, data, limit = workspace_keys, workspace_positions, workspace_data, -1
                if len(keys) == 0:
                    continue
                lo, hi = _key_range(keys, positions, limit, key)
                if hi <= lo:
                    continue
                take = min(recent - count, hi - lo)
                for j in range(take):
                    followers[b, m, count] = data[positions[hi - 1 - j]]
                    count += 1
                if latest < 0:
                    latest = positions[hi - 1]
                    in_text = source < 2
            counts[b, m] = count
            if latest >= 0 and m < n_orders:  # orders ascend: the last hit is the longest context
                hit_order, hit_in_text, hit_position = n, in_text, latest
        if hit_position < 0:
            continue
        # the match model: the byte after the latest occurrence of the longest context, and how far back the
        # text agrees with the text before that occurrence (at most match_cap, at least the order)
        pos = hit_position
        mine = min(match_cap + 1, i)
        theirs = min(pos, match_cap + 1)
        length = hit_order
        if hit_in_text:
            match_byte[b] = _text_byte(document, generated, start, pos)
            while length < match_cap and length < mine and length < theirs and \
                    _text_byte(document, generated, start, i - 1 - length) == \
                    _text_byte(document, generated, start, pos - 1 - length):
                length += 1
        else:
            match_byte[b] = workspace_data[pos]
            while length < match_cap and length < mine and length < theirs and \
                    _text_byte(document, generated, start, i - 1 - length) == workspace_data[pos - 1 - length]:
                length += 1
        match_length[b] = length
    return followers, counts, match_byte, match_length


@nb.njit(cache=True, inline="always")
def _bucket(edges: np.ndarray, value) -> int:
    """bisect_right(edges, value) - 1, clamped to [0, len(edges) - 1]."""
    at = 0
    while at < len(edges) and edges[at] <= value:
        at += 1
    return min(max(at - 1, 0), len(edges) - 1)


@nb.njit(cache=True, inline="always")
def _count_bucket(followers: np.ndarray, found: int, count_edges: np.ndarray) -> int:
    """mixer.count_buckets for one model's followers: (how many) x (how many agree with the latest)."""
    agree = 0
    for j in range(found):
        if followers[j] == followers[0]:
            agree += 1
    share = 0 if agree >= found else 1 if 2 * agree >= found else 2
    return min(_bucket(count_edges, found), 5) * 3 + share


@nb.njit(cache=True)
def mix_step(lstm_logprobs, followers, counts, match_byte, match_length, selectors, history_buckets, names_probs,
             names_bucket, logits, gate_table, gate_offsets, n_orders, count_edges, match_edges, lstm_edges):
    """(k, 256) mixed log-probabilities: `mix_distribution`'s sum (mixer.py), per beam. The gates' classes, in
    mixer.GATES order: history bucket, match (0: none, else 1 + length bucket), longest order that occurred
    (0: none, else 1 + its index), LSTM confidence bucket, identifier model (0: none, else 1 + its bucket),
    names model (0: none, else 1 + its bucket). The names model's (k, 256) probabilities and (k,) buckets
    (-1: none) come from `DocumentMixer._names`; it is the last model, after the match model."""
    k = lstm_logprobs.shape[0]
    models = followers.shape[1]
    match_model = models + 1  # the LSTM is model 0, the followers' models 1..models
    names_model = models + 2
    out = np.empty((k, 256))
    chosen = np.empty(models + 3)
    classes = np.empty(len(gate_offsets), dtype=np.int64)
    for r in range(k):
        s = selectors[r]
        probs = np.exp(lstm_logprobs[r].astype(np.float64))
        probs /= probs.sum()
        lstm_bucket = _bucket(lstm_edges, probs.max())
        match_bucket = _bucket(match_edges, match_length[r])
        longest = 0
        for m in range(n_orders):
            if counts[r, m] > 0:
                longest = m + 1
        names = counts[r, n_orders]  # the identifier model's followers
        classes[0] = history_buckets[r]
        classes[1] = 0 if match_byte[r] == EMPTY else 1 + match_bucket
        classes[2] = longest
        classes[3] = lstm_bucket
        classes[4] = 0 if names == 0 else 1 + _count_bucket(followers[r, n_orders], names, count_edges)
        classes[5] = 1 + names_bucket[r]  # 0 when the names model has nothing (-1)
        for m in range(models + 3):
            chosen[m] = 0.0  # the gates' sum, then the model's own logit a[c, m, k_m]
            for g in range(len(gate_offsets)):
                chosen[m] += gate_table[gate_offsets[g] + classes[g], m]
        chosen[0] += logits[s, 0, lstm_bucket]
        for m in range(models):  # a model that found nothing gets no weight
            if counts[r, m]:
                chosen[m + 1] += logits[s, m + 1, _count_bucket(followers[r, m], counts[r, m], count_edges)]
            else:
                chosen[m + 1] = -np.inf
        if match_byte[r] != EMPTY:
            chosen[match_model] += logits[s, match_model, match_bucket]
        else:
            chosen[match_model] = -np.inf
        if names_bucket[r] >= 0:
            chosen[names_model] += logits[s, names_model, names_bucket[r]]
        else:
            chosen[names_model] = -np.inf
        weight = np.exp(chosen - chosen.max())
        weight /= weight.sum()
        mixed = probs * weight[0]
        for m in range(models):
            for j in range(counts[r, m]):
                mixed[followers[r, m, j]] += weight[m + 1] / counts[r, m]
        if match_byte[r] != EMPTY:
            mixed[match_byte[r]] += weight[match_model]
        if names_bucket[r] >= 0:
            for b in range(256):
                mixed[b] += weight[names_model] * names_probs[r, b]
        for b in range(256):
            out[r, b] = np.log(max(mixed[b], 1e-300))
    return out
