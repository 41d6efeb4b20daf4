"""Workspaces (SPEC section 5): a project's other files, uploaded so completions can use them as context."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field, field_validator

from codelstm.model.workspaces import WorkspaceFull, WorkspaceStore
from codelstm.server.deps import ApiKey, client_key
from codelstm.server.errors import APIError
from codelstm.server.schemas import WORKSPACE_ID_PATTERN

router = APIRouter(prefix="/v1/workspaces", tags=["workspaces"], dependencies=[ApiKey])

WorkspaceId = Annotated[str, Path(min_length=1, max_length=200, pattern=WORKSPACE_ID_PATTERN)]


def _no_lone_surrogates(text: str, field: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{field} is not valid Unicode (a lone surrogate)") from None
    return text


class WorkspaceDocument(BaseModel):
    path: str = Field(min_length=1, max_length=1024, description="the file's path in the project, e.g. src/a.py")
    text: str = Field(description="its whole text")

    @field_validator("path", "text")
    @classmethod
    def _unicode(cls, value: str, info) -> str:
        return _no_lone_surrogates(value, info.field_name)


class PutDocuments(BaseModel):
    documents: list[WorkspaceDocument] = Field(min_length=1, max_length=10_000)


class WorkspaceOut(BaseModel):
    workspace_id: str
    documents: int
    bytes: int


def get_workspaces(request: Request) -> WorkspaceStore:
    return request.app.state.workspaces


def owner_of(request: Request) -> str:
    """Workspaces are scoped to the API key that made them (a digest of it: keys are never kept)."""
    key = client_key(request)
    return hashlib.sha256(key.encode()).hexdigest()[:32] if key else "anonymous"


Store = Annotated[WorkspaceStore, Depends(get_workspaces)]
Owner = Annotated[str, Depends(owner_of)]


def _not_found(workspace_id: str) -> APIError:
    return APIError(404, "not_found", f"no workspace {workspace_id!r} for this key (never made, deleted or evicted)")


@router.put("/{workspace_id}/documents", response_model=WorkspaceOut)
def put_documents(workspace_id: WorkspaceId, body: PutDocuments, store: Store, owner: Owner) -> WorkspaceOut:
    """Add or replace documents of a workspace (made on first use)."""
    try:
        info = store.put(owner, workspace_id, {d.path: d.text.encode("utf-8") for d in body.documents})
    except WorkspaceFull as e:
        raise APIError(413, "workspace_full", str(e)) from None
    return WorkspaceOut(workspace_id=workspace_id, documents=info.documents, bytes=info.bytes)


@router.get("/{workspace_id}", response_model=WorkspaceOut)
def get_workspace(workspace_id: WorkspaceId, store: Store, owner: Owner) -> WorkspaceOut:
    """Document count and bytes of a workspace."""
    info = store.info(owner, workspace_id)
    if info is None:
        raise _not_found(workspace_id)
    return WorkspaceOut(workspace_id=workspace_id, documents=info.documents, bytes=info.bytes)


@router.delete("/{workspace_id}", status_code=204)
def delete_workspace(workspace_id: WorkspaceId, store: Store, owner: Owner) -> None:
    """Forget a whole workspace."""
    if not store.delete(owner, workspace_id):
        raise _not_found(workspace_id)


@router.delete("/{workspace_id}/documents", status_code=204)
def delete_document(workspace_id: WorkspaceId, store: Store, owner: Owner,
                    path: Annotated[str, Query(min_length=1, max_length=1024)]) -> None:
    """Remove one document of a workspace."""
    if not store.delete_document(owner, workspace_id, path):
        raise APIError(404, "not_found", f"workspace {workspace_id!r} has no document {path!r} for this key")
