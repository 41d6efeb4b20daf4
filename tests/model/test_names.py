"""The names model: a table of which names followed which qualifier in a corpus, predicting the next byte of a
name being typed after a qualifier; the bulk reading (evaluation, fitting) and a search step agree."""

from __future__ import annotations

import random

import numpy as np
import pytest

from codelstm.model.context import ContextConfig, ContextIndex
from codelstm.model.context_view import ContextView
from codelstm.model.mixer import DocumentMixer, MixerWeights
from codelstm.model.names import NAMES_LOOKBACK, NameTable, document_names, qualifier_keys

CORPUS = [
    b"import numpy as np\nx = np.zeros(3)\ny = np.zeros((2, 2))\nz = np.array([1])\nr = np.random.rand(2)\n",
    b"import numpy as np\na = np.zeros(4)\nb = np.arange(5)\ns = np.random.seed(0)\nt = np.random.rand(3)\n",
    b"from typing import Any\nfrom typing import Optional\nfrom typing import Any\nimport os\nimport os\n",
    b"v = rng.random.choice(x)\nw = other.random.shuffle(y)\nq = other.random.shuffle(z)\n",
    "s = caf\u00e9.men\u00fc(1)\nt = caf\u00e9.men\u00fc(2)\n".encode(),
    b"root = Path(__file__).resolve()\nhere = Path(x).parent\nup = Path(y.z(1)).parent.parent\n",
    b"cli = argparse.ArgumentParser(\n    prog='x (y)',\n)\ncli.add_argument('-v')\nopts = cli.parse_args()\n",
]


def table() -> NameTable:
    return NameTable.build(CORPUS, min_key_count=1, min_name_count=1)


def test_qualifiers_are_the_names_before_a_dot_a_call_or_an_import_line():
    text = b"x = np.random.ra"
    assert qualifier_keys(text, len(text) - 2) == (b"np.random.", b".random.")  # an attribute's name ...
    assert qualifier_keys(b"random.ch", 7) == (b"\nrandom.", b"random.")  # ... is not the module's, which is
    # also looked up with what leads it on its line: a word, one other byte, or the line's start
    assert qualifier_keys(b"    with httpx.", 15) == (b"with httpx.", b"httpx.")
    assert qualifier_keys(b"    @pytest.", 12) == (b"@pytest.", b"pytest.")
    assert qualifier_keys(b"n = len(sys.", 12) == (b"(sys.", b"sys.")
    assert qualifier_keys(b"x = unreasonably_long_name np.", 30) == (b"np.",)
    assert qualifier_keys(b"a = x[0].real", 9) == ()  # after `]`: none
    assert qualifier_keys(b"root = Path(__file__).res", 22) == (b"Path().",)
    assert qualifier_keys(b"data = requests.get(f(url), x=(1, 2)).js", 38) == (b".get().",)
    assert qualifier_keys(b"y = np.ze", 7) == (b"y=np.", b"=np.", b"np.")  # assigned to `y`
    assert qualifier_keys(b"f(a, dtype=np.fl", 14) == (b"dtype=np.", b"=np.", b"np.")  # passed as `dtype`
    for text in (b"y == np.", b"y += np.", b"y[0] = np.", b"= np."):  # a comparison, no plain name: no target
        assert qualifier_keys(text, len(text)) == (b"=np.", b"np."), text
    assert qualifier_keys(b"    from typing import Op", 23) == (b"from typing import ",)
    assert qualifier_keys(b"import o", 7) == (b"import ",)
    assert qualifier_keys(b"x = 1.5", 6) == ()  # a number is no qualifier
    assert qualifier_keys(b"return value", 7) == ()


def test_a_variable_made_by_a_call_is_also_looked_up_as_that_calls_value():
    made = b"import argparse\nparser = argparse.ArgumentParser(\n    description='x (y)',\n)  # the CLI\n"
    text = made + b"parser.add_argument('-v')\nparser."
    assert qualifier_keys(text, len(text)) == (b"argparse.ArgumentParser().", b".ArgumentParser().", b"\nparser.",
                                               b"parser.")  # lines that only use it are passed
    text = made + b"args = parser."
    assert qualifier_keys(text, len(text))[:3] == (b"args=parser.", b"argparse.ArgumentParser().",
                                                   b".ArgumentParser().")
    assert qualifier_keys(b"p = Path(x)\n    p.", 18)[0] == b"Path()."
    assert qualifier_keys(b"g = np.random.default_rng(0)\ng.", 31)[:2] == (b"random.default_rng().", b".default_rng().")
    for text in (b"p = Path(x).parent\np.",  # the call is only part of the value
                 b"p = Path(x)\np += 1\np.", b"p, q = f()\np.", b"p: int = f()\np.",  # assigned otherwise since
                 b"p = f(\np.", b"p = 5\np.", b"pp = f()\np.", b"x = f(p)\np.",  # no call, another name
                 b"p = f()\n" + b"#" * 600 + b"\np."):  # too far back
        assert not any(key.endswith(b"().") for key in qualifier_keys(text, len(text))), text
    names = table()
    text = b"ap = argparse.ArgumentParser()\nap.a"
    assert names.key_at(text, len(text)) == (b"argparse.ArgumentParser().", len(text) - 1)
    following, _, _ = names.predict_at(text, len(text))
    assert following.tolist() == [ord("d")]  # add_argument: the corpus's `cli` was made the same way


def test_the_next_byte_is_weighted_by_how_many_files_write_each_name():
    names = table()
    following, probs, bucket = names.predict(b"np.", b"")  # zeros in 2 files, array 1, arange 1, random 2
    got = dict(zip(bytes(following.tolist()).decode(), probs.round(4)))
    assert got == {"z": round(2 / 6, 4), "a": round(2 / 6, 4), "r": round(2 / 6, 4)}
    following, probs, _ = names.predict(b"np.", b"zeros")  # the byte after the name: (
    assert bytes(following.tolist()) == b"(" and probs.tolist() == [1.0]
    assert names.predict(b"np.", b"q") is None  # no name of np. starts with q
    assert 0 <= bucket < 18
    # one file repeating a name weighs as one file: what two files write outweighs it
    repeated = NameTable.build([b"p.read_csv(1)\np.read_csv(2)\np.read_csv(3)\n", b"p.parse_args()\n",
                                b"p.parse_args()\n"], min_key_count=1, min_name_count=1)
    following, probs, _ = repeated.predict(b"p.", b"")
    assert dict(zip(bytes(following.tolist()).decode(), probs.round(4))) == {"p": round(2 / 3, 4), "r": round(1 / 3, 4)}


def test_a_two_name_qualifier_is_used_when_the_table_has_it_else_the_last_name():
    names = table()
    text = b"r = np.random."
    assert names.key_at(text, len(text)) == (b"np.random.", len(text))
    following, _, _ = names.predict_at(text, len(text))  # np.random.rand (2), .seed (1): never choice/shuffle
    assert set(bytes(following.tolist())) == {ord("r"), ord("s")}
    text = b"r = gen.random.s"  # gen.random. was never written: .random.'s (shuffle, seed, choice, rand: by files)
    assert names.key_at(text, len(text))[0] == b".random."
    following, probs, _ = names.predict_at(text, len(text))
    assert dict(zip(bytes(following.tolist()).decode(), probs)) == {"h": 1 / 2, "e": 1 / 2}
    text = b"from typing import O"
    assert bytes(names.predict_at(text, len(text))[0].tolist()) == b"p"


def test_the_table_round_trips_through_its_file_with_any_bytes_readable_by_all(tmp_path):
    names = table()
    names.built_from = {"files": 5}
    path = names.save(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o644  # safetensors writes 0600; a served checkpoint is shared
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left beside it
    back = NameTable.load(tmp_path)
    assert back.spans == names.spans and back.built_from == {"files": 5}
    assert all(back.entries_of(k) == names.entries_of(k) for k in names.spans)
    assert back.entries_of("caf\u00e9.".encode()) == [("men\u00fc(".encode(), 1)]
    assert NameTable.load(tmp_path / "missing") is None


def test_the_bulk_reading_equals_what_a_search_step_sees():
    """At every position of a document longer than the model's look-back, cut anywhere before it (the rest
    being a beam's bytes), `DocumentMixer`'s names model says what `document_names` says."""
    names = table()
    body = b"".join(CORPUS[:2] + CORPUS[-2:]) * 6 + b"from typing import Any\nx = other.random.sh\nq = np.random.ra"
    assert len(body) > 2 * NAMES_LOOKBACK
    probability, bucket = document_names(body, names)
    assert (bucket >= 0).sum() > 100
    assert bucket[body.index(b"Path(__file__).") + 15] >= 0  # a call's result is a qualifier too
    config = ContextConfig(orders=(1, 2), recent=4, identifier_max=8)
    weights = MixerWeights(config, names=names)
    rng = random.Random(0)
    for i in rng.sample(range(1, len(body)), 300):
        cut = rng.randint(max(0, i - 40), i)
        mixer = DocumentMixer(weights, ContextView(config, body[:cut], ContextIndex.build(body[:cut], config)))
        probs, buckets = mixer._names([body[cut:i]])
        assert buckets[0] == bucket[i], i
        assert probs[0, body[i]] == probability[i], i
        if buckets[0] >= 0:
            assert abs(probs[0].sum() - 1) < 1e-9


def test_a_name_is_known_when_the_table_or_the_text_has_written_it_whole():
    config = ContextConfig(orders=(1, 2), recent=4, identifier_max=8)
    weights = MixerWeights(config, names=table())
    document = b"import numpy as np\nmine = 1\nx = np."
    workspace = ContextIndex.build(b"def helper_fn():\n    pass\n", config)
    mixer = DocumentMixer(weights, ContextView(config, document, ContextIndex.build(document, config), workspace))
    assert mixer.knows_name(b"zeros") is True  # `np.zeros(` in the table
    assert mixer.knows_name(b"zer") is False  # only a prefix of one
    assert mixer.knows_name(b"mine") is True and mixer.knows_name(b"helper_fn") is True  # document, workspace
    assert mixer.knows_name(b"helper") is False  # inside `helper_fn`, never whole
    assert mixer.may_become_known(b"zer") and mixer.may_become_known(b"help")
    assert not mixer.may_become_known(b"zerq")
    plain = DocumentMixer(weights, ContextView(config, b"y = foo.", ContextIndex.build(b"y = foo.", config)))
    assert plain.knows_name(b"bar") is None and plain.may_become_known(b"bar")  # a qualifier the table lacks


def test_the_qualifiers_own_name_is_known_only_from_the_table():
    """The document writes `np`, `datetime` and `dataclasses` as the qualifiers themselves: `np.np` and `from
    dataclasses import dataclasses` are echoes, while the table has seen `datetime.datetime` written."""
    config = ContextConfig(orders=(1, 2), recent=4, identifier_max=8)
    names = NameTable.build([b"import numpy as np\nx = np.zeros(1)\n", b"t = datetime.datetime.now()\n",
                             b"from datetime import datetime\nfrom dataclasses import dataclass\n"],
                            min_key_count=1, min_name_count=1)
    weights = MixerWeights(config, names=names)
    for document, name, known in ((b"import numpy as np\nx = np.", b"np", False),
                                  (b"import numpy as np\nnumbers = 1\nx = np.", b"numbers", True),
                                  (b"import datetime\nx = datetime.", b"datetime", True),
                                  (b"from dataclasses import ", b"dataclasses", False),  # the module's own name
                                  (b"from datetime import ", b"datetime", True)):
        mixer = DocumentMixer(weights, ContextView(config, document, ContextIndex.build(document, config)))
        assert mixer.knows_name(name) is known, (document, name)


def test_merging_adds_counts_and_keeps_both_tables_keys():
    start = table()
    team = NameTable.build([b"import svc\nsvc.handle(1)\nsvc.handle(2)\nx = np.zeros(2)\n"],
                           min_key_count=1, min_name_count=1)
    both = start.merged(team)
    assert dict(both.entries_of(b"np."))[b"zeros("] == 2 + 1  # files that write it, in each table
    assert dict(both.entries_of(b"svc.")) == {b"handle(": 1}
    assert set(start.spans) | set(team.spans) == set(both.spans)


def test_a_broken_names_file_is_a_clear_error_naming_it(tmp_path):
    MixerWeights(ContextConfig(orders=(1, 2), recent=4, identifier_max=8), names=table()).save(tmp_path)
    assert MixerWeights.load(tmp_path).names is not None
    (tmp_path / "names.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(ValueError, match="names.safetensors is not a usable names table"):
        MixerWeights.load(tmp_path)
