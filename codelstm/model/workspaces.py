"""Workspaces: a project's other files, kept so completions can use them as context (SPEC sections 5, 8).

A workspace belongs to an owner (the API key that made it; another key cannot see it) and holds documents
by path. Its context index (`ContextIndex` over the documents joined by NUL) is built when first needed,
not on every upload, since an editor sends many small updates. After a change, completions go on with the
index they have while a fresh one is built in the background: rebuilding costs about a second per MiB of
text, and every keystroke-debounced upload of an open file would otherwise make the next completion wait
for it. Memory is bounded per workspace and in total (an index takes `index_bytes_per_byte`); the least
recently used workspace is evicted first, and a completion that names an evicted workspace is answered from
the document alone (the caller reports that, and the client uploads again).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from codelstm.model.context import ContextConfig, ContextIndex


def index_bytes_per_byte(config: ContextConfig) -> int:
    """Memory of a workspace per byte of its text once indexed, for admitting it: the text, an 8-byte key and
    a 4-byte position per indexed context model, and its distinct identifiers (`ContextIndex.nbytes`; about
    0.5 bytes per byte of Python source, taken as 1): 135 for the default settings, about 131 measured on
    Python source. Eviction counts what an index holds, not this estimate."""
    # the documents, the index's joined copy, orders + identifier model, the identifier list
    return 1 + 1 + 12 * (len(config.orders) + 1) + 1


class WorkspaceFull(Exception):
    """The upload would take a workspace past its byte limit; the message says by how much."""


@dataclass
class _Workspace:
    documents: dict[str, bytes] = field(default_factory=dict)
    index: ContextIndex | None = None  # the last one built (None: never, or dropped for other settings)
    version: int = 0  # counts changes of `documents`
    index_version: int = -1  # the version `index` was built from
    rebuilding: threading.Thread | None = None  # the background build of a fresh index, while one runs

    @property
    def stale(self) -> bool:
        return self.index_version != self.version

    def joined(self) -> bytes:
        return b"\x00".join(self.documents[p] for p in sorted(self.documents)) + b"\x00"

    @property
    def text_bytes(self) -> int:
        return sum(len(d) + 1 for d in self.documents.values())

    @property
    def nbytes(self) -> int:
        """Memory held: the texts, plus the index's arrays when built (its copy of the text included)."""
        return self.text_bytes + (self.index.nbytes if self.index is not None else 0)


@dataclass(frozen=True)
class WorkspaceInfo:
    documents: int
    bytes: int  # text bytes of its documents


class WorkspaceStore:
    def __init__(self, config: ContextConfig, budget_bytes: int = 256 << 20, workspace_max_bytes: int = 16 << 20) -> None:
        self.config = config
        self.budget = budget_bytes
        self.workspace_max_bytes = workspace_max_bytes
        self._spaces: OrderedDict[tuple[str, str], _Workspace] = OrderedDict()
        self._lock = threading.Lock()
        self.evictions = 0

    def put(self, owner: str, workspace_id: str, documents: dict[str, bytes]) -> WorkspaceInfo:
        """Add or replace documents (by path); the whole upload is refused if it exceeds the workspace limit."""
        with self._lock:
            space = self._spaces.get((owner, workspace_id)) or _Workspace()
            merged = {**space.documents, **documents}
            size = sum(len(d) + 1 for d in merged.values())
            if size > self.workspace_max_bytes:
                raise WorkspaceFull(f"workspace would hold {size:,} bytes, over the limit of "
                                    f"{self.workspace_max_bytes:,}")
            space.documents = merged
            space.version += 1
            self._spaces[(owner, workspace_id)] = space
            self._spaces.move_to_end((owner, workspace_id))
            self._evict()
            return WorkspaceInfo(len(space.documents), space.text_bytes)

    def delete(self, owner: str, workspace_id: str) -> bool:
        with self._lock:
            return self._spaces.pop((owner, workspace_id), None) is not None

    def delete_document(self, owner: str, workspace_id: str, path: str) -> bool:
        with self._lock:
            space = self._spaces.get((owner, workspace_id))
            if space is None or path not in space.documents:
                return False
            del space.documents[path]
            space.version += 1
            return True

    def info(self, owner: str, workspace_id: str) -> WorkspaceInfo | None:
        with self._lock:
            space = self._spaces.get((owner, workspace_id))
            return None if space is None else WorkspaceInfo(len(space.documents), space.text_bytes)

    def index(self, owner: str, workspace_id: str) -> ContextIndex | None:
        """The workspace's context index as of now (built now if stale), or None if this owner has no such
        workspace (for evaluation and tests: serving uses `lookup`, which does not wait)."""
        return self.lookup(owner, workspace_id, wait=True)[1]

    def lookup(self, owner: str, workspace_id: str, config: ContextConfig | None = None,
               wait: bool = False) -> tuple[bool, ContextIndex | None]:
        """(whether this owner has the workspace, its context index: None when it holds no documents).

        The first lookup, or one for other context settings than `config` (default: the store's), builds the
        index now. After a change the last index is returned at once and a fresh one is built in the
        background, unless `wait`."""
        config = config or self.config
        key = (owner, workspace_id)
        with self._lock:
            space = self._spaces.get(key)
            if space is None:
                return False, None
            self._spaces.move_to_end(key)
            if not space.documents:
                return True, None
            if space.index is not None and space.index.config == config and not (space.stale and wait):
                if space.stale and space.rebuilding is None:
                    space.rebuilding = threading.Thread(target=self._rebuild, args=(key, space, config),
                                                        name=f"workspace-index-{workspace_id}", daemon=True)
                    space.rebuilding.start()
                return True, space.index
            running = space.rebuilding
        if running is not None:  # waiting for a fresh one: let the running build finish first
            running.join()
        with self._lock:
            space = self._spaces.get(key)
            fresh = space is not None and space.index is not None and space.index.config == config and not space.stale
        if space is not None and not fresh:
            self._build(key, space, config)
        with self._lock:
            space = self._spaces.get(key)
            return (False, None) if space is None else (True, space.index if space.documents else None)

    def _build(self, key: tuple[str, str], space: _Workspace, config: ContextConfig) -> None:
        """Index the documents as they are now, outside the lock (about 1 s per MiB), then swap the index in
        if the workspace is still there; a change meanwhile leaves it stale, for the next lookup."""
        with self._lock:
            version, text = space.version, space.joined()
        index = ContextIndex.build(text, config)
        index.identifiers()  # here, not in the first completion after a qualifier (40 ms and 0.5 bytes per byte)
        with self._lock:
            old = space.index
            if self._spaces.get(key) is space and (old is None or old.config != config or version > space.index_version):
                space.index, space.index_version = index, version
                self._evict(keep=key)

    def _rebuild(self, key: tuple[str, str], space: _Workspace, config: ContextConfig) -> None:
        """(A background thread.) `_build`, then make room for the next rebuild."""
        try:
            self._build(key, space, config)
        finally:
            with self._lock:
                space.rebuilding = None

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(s.nbytes for s in self._spaces.values())

    def __len__(self) -> int:
        return len(self._spaces)

    def _evict(self, keep: tuple[str, str] | None = None) -> None:
        """Drop least recently used workspaces until the total fits (never `keep`, the one in use)."""
        total = sum(s.nbytes for s in self._spaces.values())
        for key in list(self._spaces):
            if total <= self.budget:
                break
            if key == keep or len(self._spaces) == 1:
                continue
            total -= self._spaces.pop(key).nbytes
            self.evictions += 1
