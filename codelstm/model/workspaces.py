"""Workspaces: a project's other files, kept so completions can use them as context (SPEC sections 5, 8).

A workspace belongs to an owner (the API key that made it; another key cannot see it) and holds documents
by path. Its context index (`ContextIndex` over the documents joined by NUL) is built when first needed
after a change, not on every upload, since an editor sends many small updates. Memory is bounded per
workspace and in total; the least recently used workspace is evicted first, and a completion that names an
evicted workspace is answered from the document alone (the caller reports that, and the client uploads again).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from codelstm.model.context import ContextConfig, ContextIndex


class WorkspaceFull(Exception):
    """The upload would take a workspace past its byte limit; the message says by how much."""


@dataclass
class _Workspace:
    documents: dict[str, bytes] = field(default_factory=dict)
    index: ContextIndex | None = None  # None: stale, rebuilt on the next lookup

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
            space.index = None
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
            space.index = None
            return True

    def info(self, owner: str, workspace_id: str) -> WorkspaceInfo | None:
        with self._lock:
            space = self._spaces.get((owner, workspace_id))
            return None if space is None else WorkspaceInfo(len(space.documents), space.text_bytes)

    def index(self, owner: str, workspace_id: str) -> ContextIndex | None:
        """The workspace's context index (built now if stale), or None if this owner has no such workspace."""
        return self.lookup(owner, workspace_id)[1]

    def lookup(self, owner: str, workspace_id: str,
               config: ContextConfig | None = None) -> tuple[bool, ContextIndex | None]:
        """(whether this owner has the workspace, its context index: None when it holds no documents),
        the index built now if stale or built for other context settings than `config` (default: the store's)."""
        config = config or self.config
        with self._lock:
            space = self._spaces.get((owner, workspace_id))
            if space is None:
                return False, None
            self._spaces.move_to_end((owner, workspace_id))
            if space.documents and (space.index is None or space.index.config != config):
                text = b"\x00".join(space.documents[p] for p in sorted(space.documents)) + b"\x00"
                space.index = ContextIndex.build(text, config)
                self._evict(keep=(owner, workspace_id))
            return True, space.index

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
