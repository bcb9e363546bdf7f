"""Recording the files ``std/file`` writes, copies or moves as artifacts of the execution.

Only when the run has a store (``Runtime.store``); a plain ``conv3n run`` records nothing.
Each destination file becomes one artifact: ``name`` its path relative to the files root,
``path`` its absolute path, its ``size`` and the ``node_id`` that wrote it. A file written
again in the same execution keeps one artifact (size and node updated, see
:func:`conv3n_jupyter.store.maintenance.record_artifact`). A folder copied or moved records
each file inside it (at most :data:`MAX_FILES`). A move also drops the artifacts recorded
under the source's name in the same execution: the file is no longer there.

Loop bodies and inline sub-workflows run as ``PARENT/key`` executions that the store does not
hold: their files are recorded against ``PARENT``, with the node named ``key/node``. Recording
runs in a worker thread and never fails the node: a failure is a warning in the node's logs.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

from ..._paths import relative_to_root
from ..base import NodeContext

MAX_FILES = 1000
_NODE_ID_CHARS = 200  # artifacts.node_id's width
# One execution's nodes run in one process: this keeps "one artifact per file" exact when
# parallel nodes write the same file (the store's select-then-insert is not atomic).
_LOCK = threading.Lock()


def store_of(ctx: NodeContext) -> Any:
    """The store of the run ``ctx`` belongs to, or ``None``."""
    execution = getattr(ctx, "execution", None)
    return getattr(getattr(execution, "runtime", None), "store", None)


def owner(ctx: NodeContext) -> tuple[str, str]:
    """``(execution id in the store, node id)`` for ``PARENT/key`` child executions too."""
    top, _, key = str(ctx.execution_id).partition("/")
    node = f"{key}/{ctx.node_id}" if key else ctx.node_id
    return top, node[-_NODE_ID_CHARS:]


def _files(root: Path, rel: str, kind: str | None) -> tuple[list[tuple[str, Path]], int]:
    """``([(name, path)], skipped)``: the file, or the files under a folder (symlinks skipped)."""
    target = root / rel
    if kind != "directory":
        return [(rel, target)], 0
    found: list[tuple[str, Path]] = []
    skipped = 0
    for folder, dirs, names in os.walk(target):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                continue
            if len(found) >= MAX_FILES:
                skipped += 1
                continue
            found.append((relative_to_root(root, path), path))
    return found, skipped


def _record(
    store: Any,
    execution_id: str,
    node_id: str,
    root: Path,
    rel: str,
    kind: str | None,
    moved_from: str | None,
) -> list[str]:
    """Record the files; returns one problem line per file that could not be recorded."""
    from ...store.maintenance import forget_artifacts, record_artifact

    files, skipped = _files(root, rel, kind)
    problems = []
    if skipped:
        problems.append(f"{skipped} more file(s) under {rel!r} not recorded (limit {MAX_FILES})")
    with _LOCK:
        if moved_from is not None:
            try:
                forget_artifacts(store, execution_id, moved_from)
            except Exception as exc:  # recording never fails the node
                problems.append(f"{moved_from!r} (moved away): {exc}")
        for name, path in files:
            try:
                record_artifact(store, execution_id, name, path, node_id=node_id)
            except Exception as exc:  # recording never fails the node
                problems.append(f"{name!r}: {exc}")
    return problems


async def record_outputs(
    ctx: NodeContext, root: Path, operation: str, data: dict[str, Any]
) -> None:
    """Record what a ``write``/``copy``/``move`` produced (``data``: the operation's result)."""
    store = store_of(ctx)
    if store is None or operation not in ("write", "copy", "move"):
        return
    rel = data.get("destination") if operation in ("copy", "move") else data.get("path")
    if not isinstance(rel, str):
        return
    kind = data.get("kind") if operation != "write" else "file"
    execution_id, node_id = owner(ctx)
    try:
        problems = await asyncio.to_thread(
            _record,
            store,
            execution_id,
            node_id,
            root,
            rel,
            kind,
            data.get("path") if operation == "move" else None,
        )
    except Exception as exc:  # recording never fails the node
        problems = [str(exc)]
    for problem in problems:
        ctx.log(f"could not record the artifact of execution {execution_id}: {problem}",
                level="warning")  # fmt: skip
