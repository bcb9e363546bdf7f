"""Execution artifacts: the files a run produced, listed and downloaded.

A download serves the recorded file only while it is still a regular file inside the files
root (the ``files_root`` setting, else ``$CONV3N_FILES_ROOT``, else the working directory),
whatever the stored path says: a row pointing elsewhere is refused (403), a file gone from
disk is 410.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path as FsPath
from typing import Any

from fastapi import APIRouter, Path, Request
from starlette.responses import FileResponse

from ._common import call, ready, services
from .errors import ApiError, JSONResp
from .models import ArtifactList, ErrorResponse, responses

router = APIRouter(tags=["executions"])

EID = Path(description="The execution's id", min_length=1, max_length=200)
AID = Path(description="The artifact's id", ge=1, le=2**63 - 1)
PUBLIC = ("id", "name", "node_id", "size", "created_at")


def public(row: dict[str, Any]) -> dict[str, Any]:
    """What the API shows of an artifact row (never its absolute path)."""
    return {k: row.get(k) for k in PUBLIC}


def files_root(request: Request) -> FsPath:
    """The files root the service confines downloads to (resolved)."""
    from .._paths import default_files_root

    configured = services(request).settings.files_root
    return FsPath(os.path.realpath(configured)) if configured else default_files_root()


def servable(root: FsPath, row: dict[str, Any], execution_id: str) -> FsPath:
    """The real path of an artifact's file; refuses paths outside ``root`` and missing files."""
    what = f"artifact {row['id']} ({row['name']!r}) of execution {execution_id!r}"
    stored = row.get("path")
    if not stored:
        raise ApiError(404, "not_found", f"{what} has no file")
    real = FsPath(os.path.realpath(stored))
    if not real.is_relative_to(root):
        raise ApiError(403, "forbidden", f"{what} is outside the files root; not served")
    if not real.is_file():
        raise ApiError(410, "gone", f"{what}: the file is no longer on disk")
    return real


@router.get(
    "/api/executions/{execution_id}/artifacts",
    summary="List the files an execution produced",
    responses=responses(
        (200, ArtifactList, "Its artifacts, oldest first"),
        (404, ErrorResponse, "No such execution"),
    ),
)
async def list_artifacts(request: Request, execution_id: str = EID) -> JSONResp:
    from ..store.maintenance import list_artifacts

    _, store, _ = ready(request)
    rows = await call(list_artifacts, store, execution_id)
    return JSONResp({"items": [public(r) for r in rows]})


@router.get(
    "/api/executions/{execution_id}/artifacts/{artifact_id}",
    summary="Download a file an execution produced",
    description="The file's bytes as an attachment. 410 when the file was deleted since; "
    "403 when its recorded path is not inside the files root.",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The file",
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        },
        **responses(
            (403, ErrorResponse, "The recorded path is outside the files root"),
            (404, ErrorResponse, "No such execution or artifact"),
            (410, ErrorResponse, "The file is gone from disk"),
        ),
    },
)
async def download_artifact(
    request: Request, execution_id: str = EID, artifact_id: int = AID
) -> FileResponse:
    from ..store.maintenance import read_artifact

    _, store, _ = ready(request)
    row = await call(read_artifact, store, execution_id, artifact_id)
    real = await call(servable, files_root(request), row, execution_id)
    filename = FsPath(str(row["name"])).name or "artifact"
    media_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return FileResponse(
        real, media_type=media_type, filename=filename, content_disposition_type="attachment"
    )
