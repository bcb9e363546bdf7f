"""Recording an execution into the store as it runs, with batched writes.

The :class:`Recorder` is an engine listener. The execution row is written before the run
starts; each finished node becomes a row (its JSON encoded once, when it finishes) in a
buffer that is written in one transaction at most every ``flush_interval`` seconds, in a
worker thread so that the event loop never waits on the database; the last batch and the
final status, output and error go in one transaction at the end. A node that is retried
also leaves a row per failed attempt (status ``error``, from its ``node_retrying`` event) in
the same batches. A crash loses at most one interval of node rows, and the execution stays
``running`` until :func:`~conv3n_jupyter.store.maintenance.mark_crashed` marks it. A write that fails keeps its
rows for the next one; only the last write's failure is raised (by :meth:`Recorder.finish`).

These writes go to the driver's connection from the engine's pool, below SQLAlchemy's
statement layer (about 10 µs per node in all on SQLite; ``benchmarks/bench_store.py``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine import events as ev
from ..engine.executor import Execution
from ..errors import AlreadyExists, NotFound, StoreError
from ..model import Workflow, load, parse
from ..types import NodeStatus
from .database import PREVIEW_CHARS, json_text
from .executions import _upsert_sql, execution_row
from .workflows import read_workflow

if TYPE_CHECKING:
    from ..engine.events import Event
    from .batching import Coalescer
    from .database import Store

_FINISHED = (ev.NODE_FINISHED, ev.NODE_SKIPPED)
_RETRYING = ev.NODE_RETRYING
_ERROR = NodeStatus.ERROR.value
_JSON = frozenset({"error", "output", "trigger", "params", "definition"})
Row = tuple[Any, ...]

# The C encoder behind json.dumps, made once: the same text as database._dumps (default=str,
# ensure_ascii=False) at half the cost for the small values most nodes return. Without
# circular-reference markers: a value that contains itself raises RecursionError instead.
_make = getattr(json.encoder, "c_make_encoder", None)
_encode = (
    _make(None, str, json.encoder.encode_basestring, None, ": ", ", ", False, False, True)
    if _make is not None
    else None
)


def _json(value: Any, limit: int) -> str | None:
    """``value`` as JSON text for a node_runs column, as :func:`json_text` makes it.

    A value JSON cannot hold (one that contains itself, keys that are not strings) is
    stored as its ``repr``: encoding runs in the listener and must not fail the run.
    """
    if value is None:
        return None
    try:
        if _encode is None:
            return json_text(value, limit)
        text = "".join(_encode(value, 0))
    except (ValueError, TypeError, RecursionError):
        return json_text({"unencodable": repr(value)[:PREVIEW_CHARS]}, limit)
    return text if len(text) * 4 <= limit else json_text(value, limit)


class Recorder:
    """An engine listener that stores one execution and its node runs.

    >>> recorder = Recorder(store, execution)
    >>> execution.listeners.append(recorder)
    >>> await recorder.start()
    >>> result = await execution.run()
    >>> await recorder.finish()

    A failed write does not stop the run: its rows stay buffered and go with the next write;
    :meth:`finish` raises :class:`~conv3n_jupyter.errors.StoreError` when the last one fails.
    """

    def __init__(
        self,
        store: Store,
        execution: Execution,
        *,
        workflow_id: str | None = None,
        workflow_version: int | None = None,
        flush_interval: float = 0.1,
        finisher: Finisher | None = None,
    ) -> None:
        self.store = store
        self.execution = execution
        # Shared by the recorders of one process: their final writes go together (see
        # ``final_writes``); without one, each finish() is a transaction of its own.
        self.finisher = finisher
        self.workflow_id = workflow_id
        self.workflow_version = workflow_version
        self.flush_interval = flush_interval
        self.flushes = 0
        self._pending: list[Row] = []
        self._retried: dict[str, int] = {}  # node → its last failed attempt
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None

    async def start(self, **fields: Any) -> None:
        """Write the execution row (status ``running``) before the run starts.

        The row is the one :func:`~.executions.create_execution` writes for a run starting
        now (``fields``: its other keywords, such as ``definition``, ``parent_id``,
        ``retry_of``, ``start_from``, ``timeout``), written by the driver directly (a third
        of the cost).
        """
        ex = self.execution
        row = execution_row(
            execution_id=ex.id,
            workflow_name=ex.workflow.name,
            workflow_id=self.workflow_id,
            workflow_version=self.workflow_version,
            trigger=ex.trigger,
            params=ex.params,
            **fields,
        )
        for key in _JSON.intersection(row):
            if row[key] is not None:
                row[key] = _json(row[key], sys.maxsize)
        await asyncio.to_thread(self._insert, row)

    def _insert(self, row: dict[str, Any]) -> None:
        with self._cursor() as cur:
            cur.execute(_sql(self.store.dialect, tuple(row), update=False), tuple(row.values()))

    def __call__(self, event: Event) -> None:
        if event.type in _FINISHED and event.execution_id == self.execution.id:
            self._pending.append(self._row(event.node_id or ""))
        elif event.type == _RETRYING and event.execution_id == self.execution.id:
            self._pending.append(self._failed_attempt(event))
        else:
            return
        if self._timer is None and self._flushing is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.flush_interval, self._kick)

    def _row(self, nid: str) -> Row:
        """The node's ``node_runs`` row, its JSON encoded now (later changes are not stored)."""
        r = self.execution.results.get(nid, {})
        limit = self.store.max_output_bytes
        attempt = r.get("attempts", 0)
        if not attempt and self._retried:
            # Cancelled (or skipped with its group) after failed attempts: the next attempt's
            # row, so that it stays the node's last one.
            attempt = self._retried.get(nid, -1) + 1
        return (
            self.execution.id,
            nid,
            attempt,
            r.get("status"),
            r.get("port"),
            None,  # input: not kept by the engine
            _json(r.get("data"), limit),
            _json(r.get("logs"), limit),
            _json(r.get("error"), limit),
            r.get("started_at"),
            r.get("duration_ms"),
        )

    def _failed_attempt(self, event: Event) -> Row:
        """The row of a failed attempt that is retried, from its ``node_retrying`` event."""
        data, nid = event.data, event.node_id or ""
        limit = self.store.max_output_bytes
        self._retried[nid] = attempt = data.get("attempt", 1)
        error = data.get("error_detail") or {"message": data.get("error"), "node": nid}
        return (
            self.execution.id,
            nid,
            attempt,
            _ERROR,
            None,  # port
            None,  # input
            None,  # output
            _json(data.get("logs"), limit),
            _json(error, limit),
            data.get("started_at"),
            data.get("duration_ms"),
        )

    def _kick(self) -> None:
        self._timer = None
        if self._pending and self._flushing is None:
            self._flushing = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            await asyncio.to_thread(self._write, batch, None)
        except Exception:  # the run goes on; the rows go with the next write (or finish())
            self._pending[:0] = batch
        finally:
            self._flushing = None
        if self._pending and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.flush_interval, self._kick)

    def _write(self, batch: list[Row], final: dict[str, Any] | None) -> None:
        """One transaction: the node rows, then the execution's last node and ``final`` fields."""
        with self._cursor() as cur:
            self._write_with(cur, batch, final)

    def _write_with(self, cur: Any, batch: list[Row], final: dict[str, Any] | None) -> None:
        fields = dict(final or {})
        if batch:
            fields["last_node"] = batch[-1][1]
        limit = self.store.max_output_bytes
        values = [json_text(v, limit) if k in _JSON else v for k, v in fields.items()]
        dialect = self.store.dialect
        if batch:
            cur.executemany(_upsert_sql(dialect), batch)
        if fields:
            cur.execute(_sql(dialect, tuple(fields), update=True), (*values, self.execution.id))
            if cur.rowcount == 0:
                raise NotFound(f"execution {self.execution.id!r} not found in the store")
        self.flushes += 1

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        """A driver cursor in a transaction on a pooled connection; driver errors → StoreError."""
        with self.store.lock:
            yield from self._locked_cursor()

    def _locked_cursor(self) -> Iterator[Any]:
        engine = self.store.engine
        try:
            conn = engine.raw_connection()
        except Exception as exc:  # SQLAlchemy's pool: the server is unreachable
            raise StoreError(f"recording execution {self.execution.id!r}: {exc}") from exc
        try:
            cur = conn.cursor()
            try:
                yield cur
            finally:
                cur.close()
            conn.commit()
        except engine.dialect.loaded_dbapi.IntegrityError as exc:
            conn.rollback()
            if "foreign key" in str(exc).lower():  # node rows of an execution that is gone
                raise NotFound(
                    f"execution {self.execution.id!r} not found in the store: {exc}"
                ) from exc
            raise AlreadyExists(f"recording execution {self.execution.id!r}: {exc}") from exc
        except engine.dialect.loaded_dbapi.Error as exc:
            conn.rollback()
            raise StoreError(f"recording execution {self.execution.id!r}: {exc}") from exc
        finally:
            conn.close()  # back to the pool

    async def finish(self) -> None:
        """Write the remaining node runs and the final status, output and error."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flushing is not None:
            await self._flushing
        ex = self.execution
        result = ex.result()
        final = {
            "status": ex.status,
            "finished_at": ex.finished_at or None,
            "duration_ms": result["duration_ms"],
            "error": ex.error,
            "output": result["output"] if ex.results else None,
        }
        batch, self._pending = self._pending, []
        if self.finisher is None:
            await asyncio.to_thread(self._write, batch, final)
            return
        failure = await self.finisher((self, batch, final))
        if failure is not None:
            raise failure

    def __repr__(self) -> str:
        return (
            f"<Recorder {self.execution.id[:8]} {self.flushes} flushes"
            f" {len(self._pending)} pending>"
        )


FinalWrite = tuple["Recorder", list[Row], dict[str, Any]]
Finisher = Callable[[FinalWrite], Awaitable[BaseException | None]]


def final_writes(store: Store) -> Coalescer[FinalWrite, BaseException | None]:
    """A shared ``finisher`` for the recorders of one process: group commit of final writes.

        >>> finisher = final_writes(store)
        >>> Recorder(store, execution, finisher=finisher)

    Executions that end while another's final write is in flight are written together, in
    one transaction. If that transaction fails, each is written alone, so that one bad
    execution does not take the others' results with it.
    """
    from .batching import Coalescer

    def write(items: list[FinalWrite]) -> list[BaseException | None]:
        if len(items) > 1:
            try:
                with items[0][0]._cursor() as cur:
                    for recorder, batch, final in items:
                        recorder._write_with(cur, batch, final)
                return [None] * len(items)
            except Exception:  # written one by one below, each with its own outcome
                pass
        results: list[BaseException | None] = []
        for recorder, batch, final in items:
            try:
                recorder._write(batch, final)
                results.append(None)
            except Exception as exc:
                results.append(exc)
        return results

    return Coalescer(write)


@functools.cache
def _sql(dialect: str, fields: tuple[str, ...], *, update: bool) -> str:
    """An INSERT of an execution row, or an UPDATE of its ``fields`` by id (driver style)."""
    mark = "?" if dialect == "sqlite" else "%s"
    marks = [f"{mark}::json" if f in _JSON and mark == "%s" else mark for f in fields]
    if update:
        sets = ", ".join(f"{f} = {m}" for f, m in zip(fields, marks, strict=True))
        return f"UPDATE executions SET {sets} WHERE id = {mark}"
    return f"INSERT INTO executions ({', '.join(fields)}) VALUES ({', '.join(marks)})"


async def record_run(
    store: Store,
    workflow: Workflow | str | Path | dict[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    workflow_id: str | None = None,
    workflow_version: int | None = None,
    flush_interval: float = 0.1,
    **kwargs: Any,
) -> dict[str, Any]:
    """Run a workflow and record it in the store; returns the execution result.

        >>> store = open_store("sqlite:///./conv3n.db")
        >>> result = await record_run(store, "templates/hello.conv3n.json", {"name": "Ada"})
        >>> read_execution(store, result["execution_id"])["status"]
        'success'

    Without ``workflow``, the saved workflow ``workflow_id`` runs (its current version, or
    ``workflow_version``). Other keyword arguments are those of :class:`Execution`.
    """
    if workflow is None:
        if workflow_id is None:
            raise TypeError("record_run needs a workflow or a workflow_id")
        saved = await asyncio.to_thread(read_workflow, store, workflow_id, version=workflow_version)
        wf = parse(saved["definition"], source=f"workflow {workflow_id!r}")
        workflow_version = saved["version"]
    else:
        wf = workflow if isinstance(workflow, Workflow) else load(workflow)
    execution = Execution(wf, params, **kwargs)
    recorder = Recorder(
        store,
        execution,
        workflow_id=workflow_id,
        workflow_version=workflow_version,
        flush_interval=flush_interval,
    )
    execution.listeners.insert(0, recorder)
    await recorder.start()
    try:
        return await execution.run()
    finally:
        await recorder.finish()
