"""Data files uploaded from the browser land in the workspace's data/ folder, under a checked
name and a size limit (a 413 past it, nothing half-written left behind)."""

from pathlib import Path

from fastapi import Request

from tunelab.errors import TunelabError
from tunelab.ui.workspace import DATA_SUFFIXES, Workspace, check_name

MAX_UPLOAD_MB = 200
SUFFIXES = (*DATA_SUFFIXES, ".txt")  # .txt: pretrain corpora


class TooLarge(TunelabError):
    """An upload past the limit."""


async def save_upload(workspace: Workspace, request: Request, name: str) -> dict:
    check_name(name, "file name")
    if Path(name).suffix not in SUFFIXES:
        raise TunelabError(f"{name}: upload a {', '.join(SUFFIXES)} file")
    limit = MAX_UPLOAD_MB * 2**20
    if int(request.headers.get("content-length") or 0) > limit:
        raise TooLarge(f"{name}: larger than the {MAX_UPLOAD_MB} MB upload limit")
    target = workspace.root / "data" / name
    partial = target.with_suffix(target.suffix + ".part")
    size = 0
    try:
        with partial.open("wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"{name}: larger than the {MAX_UPLOAD_MB} MB upload limit")
                out.write(chunk)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return {"path": workspace.relative(target), "bytes": size}
