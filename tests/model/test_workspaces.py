"""The workspace store: documents by path per owner, a context index built on demand, bounded memory."""

from __future__ import annotations

import pytest

from codelstm.model.context import ContextConfig, document_predictions, EMPTY
from codelstm.model.workspaces import WorkspaceFull, WorkspaceStore

CONFIG = ContextConfig(orders=(2, 4, 8), recent=4, identifier_max=16)


def test_documents_are_added_replaced_and_removed_by_path():
    store = WorkspaceStore(CONFIG)
    assert store.put("key-a", "proj", {"a.py": b"x = 1\n", "b.py": b"y = 2\n"}).documents == 2
    info = store.put("key-a", "proj", {"a.py": b"x = 10\n"})
    assert (info.documents, info.bytes) == (2, len(b"x = 10\n") + 1 + len(b"y = 2\n") + 1)
    assert store.delete_document("key-a", "proj", "b.py") and not store.delete_document("key-a", "proj", "b.py")
    assert store.info("key-a", "proj").documents == 1
    assert store.delete("key-a", "proj") and store.info("key-a", "proj") is None


def test_a_workspace_is_visible_only_to_the_key_that_made_it():
    store = WorkspaceStore(CONFIG)
    store.put("key-a", "proj", {"a.py": b"secret_name = 1\n"})
    assert store.info("key-b", "proj") is None and store.index("key-b", "proj") is None
    assert not store.delete("key-b", "proj") and store.info("key-a", "proj") is not None


def test_the_index_predicts_from_the_workspace_and_follows_changes():
    store = WorkspaceStore(CONFIG)
    store.put("k", "w", {"lib.py": b"def frobnicate(widget):\n    return widget\n"})
    doc = b"import lib\nlib.frobn"
    pred = document_predictions(doc, CONFIG, store.index("k", "w"))
    assert chr(pred.match_byte[-1]) == "n"  # `frob` -> `n`, from the workspace
    identifier_model = len(CONFIG.orders)
    assert chr(pred.next_bytes[identifier_model][len(doc) - 1][0]) == "n"
    store.put("k", "w", {"lib.py": b"def frobulate(widget):\n    pass\n"})
    pred = document_predictions(doc + b"i", CONFIG, store.index("k", "w"))
    assert pred.next_bytes[identifier_model][len(doc)][0] == EMPTY  # `frobni` is gone with the old text


def test_an_upload_over_the_workspace_limit_is_refused_whole():
    store = WorkspaceStore(CONFIG, workspace_max_bytes=1000)
    store.put("k", "w", {"a.py": b"a" * 500})
    with pytest.raises(WorkspaceFull, match="over the limit of 1,000"):
        store.put("k", "w", {"b.py": b"b" * 400, "c.py": b"c" * 200})
    assert store.info("k", "w").documents == 1


def test_least_recently_used_workspaces_are_evicted_to_stay_in_budget():
    text = bytes(range(32, 127)) * 100  # 9.5 KB of text
    probe = WorkspaceStore(CONFIG)
    probe.put("k", "w", {"a.py": text})
    probe.index("k", "w")
    one = probe.nbytes  # a workspace with its index built
    store = WorkspaceStore(CONFIG, budget_bytes=int(1.5 * one), workspace_max_bytes=50_000)
    store.put("k", "old", {"a.py": text})
    store.index("k", "old")
    store.put("k", "new", {"a.py": text})
    store.index("k", "new")
    assert store.info("k", "old") is None and store.info("k", "new") is not None
    assert store.evictions == 1 and store.nbytes <= store.budget


def test_after_a_change_lookups_answer_with_the_last_index_while_a_fresh_one_is_built():
    store = WorkspaceStore(CONFIG)
    store.put("k", "w", {"lib.py": b"def frobnicate(widget):\n    return widget\n"})
    found, first = store.lookup("k", "w")  # the first lookup builds the index
    assert found and b"frobnicate" in first.data
    store.put("k", "w", {"lib.py": b"def frobulate(widget):\n    pass\n"})
    found, during = store.lookup("k", "w")  # no waiting for the rebuild
    assert found and during is first
    fresh = store.index("k", "w")  # waits for the background build (or builds)
    assert b"frobulate" in fresh.data and b"frobnicate" not in fresh.data
    assert store.lookup("k", "w")[1] is fresh  # nothing stale left: no more rebuilds


def test_a_background_rebuild_of_a_deleted_workspace_is_dropped():
    store = WorkspaceStore(CONFIG)
    store.put("k", "w", {"a.py": b"x = 1\n" * 1000})
    store.lookup("k", "w")
    store.put("k", "w", {"b.py": b"y = 2\n"})
    store.lookup("k", "w")  # starts a rebuild
    store.delete("k", "w")
    assert store.index("k", "w") is None and store.info("k", "w") is None and store.nbytes == 0

