"""The DAG scheduler: runs a workflow's nodes concurrently, routes ports, retries, recovers.

One :class:`Execution` is one run. Ready nodes start as asyncio tasks (at most
``max_concurrent_nodes`` at once); when a node finishes, a done-callback routes its port along
the outgoing edges, counts down each child's unfinished parents and starts the children that
are ready, or marks them skipped when no incoming edge fired. There is no polling and no
``asyncio.wait``: the scheduler is driven entirely by callbacks, which keeps the per-node cost
to a few microseconds beyond the block itself.
"""

from __future__ import annotations

import asyncio
import random
import time
import types
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import (
    BlockError,
    Conv3nError,
    ExecutionCancelled,
    ExpressionError,
    NodeTimeout,
    Problem,
    WorkflowValidationError,
)
from ..model import ERROR_PORT, Node, Workflow
from ..types import NodeStatus
from . import events as ev
from .context import NodeContext
from .runtime import Runtime

if TYPE_CHECKING:
    from .events import Listener

# Plain strings on the hot path (the enums' values): comparisons stay cheap, JSON stays plain.
SUCCESS, ERROR, SKIPPED, CANCELLED = (
    NodeStatus.SUCCESS.value,
    NodeStatus.ERROR.value,
    NodeStatus.SKIPPED.value,
    NodeStatus.CANCELLED.value,
)


class _Plan:
    """What the scheduler needs of a workflow's graph, computed once per workflow."""

    __slots__ = (
        "_ancestors",
        "blocks",
        "children",
        "group_of",
        "in_count",
        "out_edges",
        "parents",
        "sinks",
        "standby",
        "starts",
    )

    def __init__(self, wf: Workflow) -> None:
        from ..blocks import registry

        self.standby = wf.standby
        self.blocks = {nid: registry.get(n.type) for nid, n in wf.nodes.items()}
        parents: dict[str, list[str]] = {nid: [] for nid in wf.nodes}
        out_edges: dict[str, list[tuple[str, Any]]] = {nid: [] for nid in wf.nodes}
        for e in wf.all_edges:
            out_edges[e.source].append((e.target, e))
            if e.source not in parents[e.target]:
                parents[e.target].append(e.source)
        self.parents = {k: tuple(v) for k, v in parents.items()}
        self.out_edges = out_edges
        self.children = {k: tuple(dict.fromkeys(t for t, _ in v)) for k, v in out_edges.items()}
        self.in_count = {k: len(v) for k, v in self.parents.items()}
        self.starts = [nid for nid in wf.nodes if not self.parents[nid] and nid not in self.standby]
        self.sinks = [nid for nid in wf.nodes if not self.children[nid] and nid not in self.standby]
        self.group_of = {m: g for g in wf.groups.values() for m in g.nodes}
        self._ancestors: dict[str, frozenset[str]] = {}

    def ancestors(self, wf: Workflow, nid: str) -> frozenset[str]:
        """Every node ``nid`` transitively depends on (what its expressions and code may read)."""
        found = self._ancestors.get(nid)
        if found is None:
            found = self._ancestors[nid] = frozenset(wf.upstream(nid))
        return found


def plan_of(wf: Workflow) -> _Plan:
    plan = wf._plan
    if plan is None:
        plan = wf._plan = _Plan(wf)
    return plan  # type: ignore[no-any-return]


def resolve_params(wf: Workflow, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run's parameters with defaults applied; missing or mistyped ones raise, all at once."""
    from .._validate import _is_type

    given = dict(given or {})
    out: dict[str, Any] = {}
    problems = []
    for name, decl in wf.params.items():
        if name in given:
            value = given.pop(name)
            types = decl.get("type", "string")
            types = types if isinstance(types, list) else [types]
            if not any(_is_type(value, t) for t in types):
                problems.append(
                    Problem(
                        f"params.{name}",
                        f"parameter {name!r} must be {decl.get('type', 'string')}, got {value!r}",
                    )
                )
            elif "enum" in decl and value not in decl["enum"]:
                problems.append(
                    Problem(
                        f"params.{name}",
                        f"parameter {name!r} must be one of {decl['enum']!r}, got {value!r}",
                    )
                )
            out[name] = value
        elif "default" in decl:
            out[name] = decl["default"]
        else:
            problems.append(
                Problem(f"params.{name}", f"required parameter {name!r} is missing (-p {name}=…)")
            )
    if given and wf.params:
        for name in given:
            problems.append(
                Problem(
                    f"params.{name}",
                    f"unknown parameter {name!r}; declared: {', '.join(wf.params)}",
                )
            )
    elif given:
        out.update(
            given
        )  # a workflow that declares no params accepts any (sub-workflows, loop bodies)
    if problems:
        raise WorkflowValidationError(problems, wf.source)
    return out


def _error_dict(exc: BaseException, node_id: str, attempts: int) -> dict[str, Any]:
    err: dict[str, Any] = {
        "type": type(exc).__name__,
        "message": _message(exc),
        "node": node_id,
        "attempts": attempts,
    }
    if isinstance(exc, BlockError) and exc.details:
        err["details"] = exc.details
    if isinstance(exc, ExpressionError):
        err.update({"key": exc.key, "expression": exc.expression})
    return err


def _message(exc: BaseException) -> str:
    if isinstance(exc, BlockError):
        return exc.message
    if isinstance(exc, ExpressionError):
        return (
            exc.reason
            if exc.key is None
            else f"config key {exc.key!r}: expression {exc.expression!r}: {exc.reason}"
        )
    return str(exc) or type(exc).__name__


_iso_second: list[Any] = [None, ""]


def _iso(ts: float) -> str:
    """ISO 8601 UTC with milliseconds; the date part is cached per second (this runs per node)."""
    sec = int(ts)
    cache = _iso_second
    if cache[0] != sec:
        cache[0] = sec
        cache[1] = datetime.fromtimestamp(sec, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{cache[1]}.{int((ts - sec) * 1000):03d}Z"


@types.coroutine
def _continue(coro: Any, pending: Any) -> Any:
    """Drive the rest of a coroutine that was started eagerly and then suspended on ``pending``.

    The driving Task sees the same futures the coroutine yields (``yield from`` semantics), so
    cancellation and results pass through unchanged.
    """
    while True:
        try:
            sent = yield pending
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            try:
                pending = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                pending = coro.send(sent)
            except StopIteration as stop:
                return stop.value


_EAGER_BATCH = 256  # eager nodes run back to back before the loop gets a turn


class Execution:
    """One run of a workflow. Create, then ``await execution.run()``; ``cancel()`` stops it."""

    def __init__(
        self,
        workflow: Workflow,
        params: Mapping[str, Any] | None = None,
        *,
        trigger: Mapping[str, Any] | None = None,
        runtime: Runtime | None = None,
        listeners: Iterable[Listener] = (),
        execution_id: str | None = None,
        pins: Mapping[str, Mapping[str, Any]] | None = None,
        use_pins: bool = False,
        start_from: str | None = None,
        previous: Mapping[str, Any] | None = None,
        debugger: Any = None,
        timeout: float | None = None,
        depth: int = 0,
        vars: dict[str, Any] | None = None,
    ) -> None:
        self.workflow = workflow
        self.plan = plan_of(workflow)
        self.params = resolve_params(workflow, params)
        self.trigger = dict(trigger or {})
        self.runtime = runtime
        self.listeners = list(listeners)
        self.id = execution_id or uuid.uuid4().hex
        self.debugger = debugger
        # A debugger may only watch nodes start (a recorder): then there is nothing to await after.
        self._after_node = getattr(debugger, "after_node", None)
        self.depth = depth
        self.vars: dict[str, Any] = vars if vars is not None else {}
        self.results: dict[str, dict[str, Any]] = {}
        self.status = "pending"
        self.error: dict[str, Any] | None = None
        self.started_at = 0.0
        self.finished_at = 0.0
        pin_map = dict(workflow.config.get("pin", {})) if use_pins else {}
        pin_map.update(pins or {})
        self.pins = pin_map
        self.start_from = start_from
        self.previous = previous
        if timeout is None and workflow.config.get("timeout") is not None:
            from .._durations import parse_duration

            timeout = parse_duration(workflow.config["timeout"])
        self.timeout = timeout
        self.limit = workflow.max_concurrent_nodes
        self._remaining = dict(self.plan.in_count)
        self._fired: set[str] = set()
        self._ready: deque[str] = deque()
        self._running: dict[str, asyncio.Task[dict[str, Any]]] = {}
        self._task_node: dict[asyncio.Task[Any], str] = {}  # the node each Task runs now
        self._failed_groups: dict[str, dict[str, Any]] = {}
        self._stopping: str | None = None
        self._done: asyncio.Future[None] | None = None
        self._sub_cache: dict[int, Workflow] = {}
        blocks, nodes = self.plan.blocks, workflow.nodes
        # A debugger that never pauses (a recorder) keeps the synchronous start of data blocks.
        eager_ok = debugger is None or not getattr(debugger, "pauses", True)
        self._eager = {
            nid: eager_ok and blocks[nid].eager and nodes[nid].timeout is None for nid in nodes
        }
        self.meta = {"id": self.id}
        self.wf_meta = {"id": workflow.id or "", "name": workflow.name}

    # -- events -----------------------------------------------------------------------
    def emit(self, type_: str, node_id: str | None = None, **data: Any) -> None:
        if self.listeners:
            if self.depth:
                data["depth"] = self.depth
            event = ev.Event(type_, self.id, time.time(), node_id, data)
            for listener in self.listeners:
                listener(event)

    # -- public -----------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        """Run to the end and return the execution result (see ``workflow-format.md``)."""
        own_runtime = self.runtime is None
        if own_runtime:
            self.runtime = Runtime()
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self.started_at = time.time()
        self.status = "running"
        self.emit(ev.EXECUTION_STARTED, workflow=self.workflow.name, params=self.params)
        timer = loop.call_later(self.timeout, self.cancel, "timeout") if self.timeout else None
        try:
            self._seed()
            self._pump()
            if not self._done.done():
                await self._done
        except asyncio.CancelledError:
            self.cancel("cancelled")
            await self._drain()
            self._finish_status()
            self.emit(ev.EXECUTION_FINISHED, status=self.status, duration_ms=self._duration_ms())
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if own_runtime and self.runtime is not None:
                await self.runtime.aclose()
        self._finish_status()
        self.emit(
            ev.EXECUTION_FINISHED,
            status=self.status,
            duration_ms=self._duration_ms(),
            error=self.error,
        )
        return self.result()

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop the execution: no new node starts, running nodes are cancelled."""
        if self._stopping is None:
            self._stopping = reason
        for task in list(self._running.values()):
            task.cancel()
        self._ready.clear()
        self._check_done()

    # -- scheduling -------------------------------------------------------------------
    def _seed(self) -> None:
        if self.start_from is not None:
            self._seed_partial()
            return
        self._ready.extend(self.plan.starts)

    def _seed_partial(self) -> None:
        """Re-run ``start_from`` and its downstream, reusing previous results for the rest."""
        wf, target = self.workflow, self.start_from
        if target not in wf.nodes:
            raise WorkflowValidationError(
                [Problem("start_from", f"{target!r} is not a node")], wf.source
            )
        rerun = wf.downstream(target) | {target}
        prev = (self.previous or {}).get("nodes", {})
        missing = sorted(n for n in wf.upstream(target) if n not in prev and n not in self.pins)
        if missing:
            raise WorkflowValidationError(
                [
                    Problem(
                        "start_from",
                        f"no earlier result for upstream node {n!r} to reuse; run it first or pin it",
                    )
                    for n in missing
                ],
                wf.source,
            )
        reused = [
            nid
            for nid in wf.nodes
            if nid not in rerun and nid in prev and nid not in self.plan.standby
        ]
        for nid in reused:
            r = dict(prev[nid])
            r["reused"] = True
            self.results[nid] = r
        for nid in reused:
            self._route(nid, self.results[nid])
        # Branches with no history (and pinned nodes) outside the re-run part start again.
        for nid in wf.nodes:
            if (
                nid not in rerun
                and nid not in self.results
                and nid not in self.plan.standby
                and self._remaining[nid] == 0
                and (nid in self.pins or not self.plan.parents[nid])
            ):
                self._ready.append(nid)
        if (
            self._remaining[target] == 0
            and target not in self._ready
            and target not in self.results
        ):
            self._ready.append(target)

    def _pump(self, runner: asyncio.Task[Any] | None = None) -> str | None:
        """Start ready nodes up to the concurrency limit.

        Called from a node's Task (``runner``), the first ready node that must wait for I/O is
        handed back to run next in that same Task instead of a new one: no Task to create and
        no loop turn lost between a finished node and the next, the way a worker pool works.
        """
        ready, running = self._ready, self._running
        eager = self._eager
        budget = _EAGER_BATCH
        handed: str | None = None
        while ready and len(running) < self.limit and self._stopping is None:
            nid = ready.popleft()
            group = self.plan.group_of.get(nid)
            if group is not None and group.id in self._failed_groups:
                self._skip(nid, reason=f"group {group.id!r} failed")
                continue
            if eager[nid]:
                coro = self._run_node(nid)
                # Blocks that rarely wait run synchronously up to their first real suspension:
                # most finish without one, saving a Task and two loop turns per node.
                try:
                    pending = coro.send(None)
                except StopIteration as stop:
                    self._complete(nid, stop.value)
                    budget -= 1
                    if budget == 0 and ready:
                        asyncio.get_running_loop().call_soon(self._pump)
                        break
                    continue
                task = asyncio.ensure_future(self._node_task(nid, coro, pending))
            elif runner is not None and handed is None:
                handed = nid
                running[nid] = runner
                self._task_node[runner] = nid
                continue
            else:
                task = asyncio.ensure_future(self._node_task(nid))
            running[nid] = task
            self._task_node[task] = nid
            task.add_done_callback(self._on_done)
        self._check_done()
        return handed

    async def _node_task(
        self, nid: str, started: Any = None, pending: Any = None, error_input: Any = None
    ) -> dict[str, Any]:
        """A node's Task: run the node (or the rest of an eagerly started run), route its
        result, then run the next ready node handed back by ``_pump``, until none is left.

        The node's coroutine is made inside the Task, so a Task cancelled before it ran leaves
        no coroutine behind un-awaited.
        """
        me = asyncio.current_task()
        result: dict[str, Any] = {}
        while True:
            if started is not None:
                result = await _continue(started, pending)
                started = None
            else:
                result = await self._run_node(nid, error_input)
                error_input = None
            if self._running.pop(nid, None) is None:
                return result
            self._complete(nid, result)
            handed = self._pump(runner=me)
            if handed is None:
                return result
            nid = handed

    def _check_done(self) -> None:
        if not self._running and (not self._ready or self._stopping is not None):
            done = self._done
            if done is not None and not done.done():
                done.set_result(None)

    def _on_done(self, task: asyncio.Task[dict[str, Any]]) -> None:
        nid = self._task_node.pop(task)
        if self._running.get(nid) is not task:
            return  # its last node finished and was routed inside the Task
        del self._running[nid]
        if task.cancelled():
            group = self.plan.group_of.get(nid)
            if group is not None and group.id in self._failed_groups and self._stopping is None:
                self._skip(nid, f"group {group.id!r} failed")
                self._pump()
                return
            result = {
                "status": CANCELLED,
                "port": None,
                "data": None,
                "attempts": 0,
                "duration_ms": 0.0,
            }
        else:
            result = task.result()
        self._complete(nid, result)
        self._pump()

    def _complete(self, nid: str, result: dict[str, Any]) -> None:
        self.results[nid] = result
        self.emit(
            ev.NODE_FINISHED,
            nid,
            status=result["status"],
            port=result["port"],
            duration_ms=result.get("duration_ms"),
            error=result.get("error"),
            fallback=result.get("fallback"),
        )
        if result["status"] == ERROR and result["port"] != ERROR_PORT:
            self._on_failure(nid, result)
        self._route(nid, result)

    def _route(self, nid: str, result: dict[str, Any]) -> None:
        """Fire the outgoing edges of a finished node; start or skip children that are complete.

        Skips propagate iteratively (a stack, not recursion) so that long chains cannot overflow.
        """
        plan, results = self.plan, self.results
        remaining, fired, ready = self._remaining, self._fired, self._ready
        stack = [(nid, result)]
        while stack:
            nid, result = stack.pop()
            status, port = result["status"], result["port"]
            if status == SUCCESS or (status == ERROR and port == ERROR_PORT):
                for target, edge in plan.out_edges[nid]:
                    if edge.fires_on(port):
                        fired.add(target)
            for child in plan.children[nid]:
                remaining[child] -= 1
                if remaining[child] == 0 and child not in results:
                    if child in fired:
                        ready.append(child)
                    else:
                        skipped = self._skipped(child, self._skip_reason(child))
                        stack.append((child, skipped))

    def _skip_reason(self, nid: str) -> str:
        """Why no incoming edge of ``nid`` fired, in the words of its upstream results."""
        results = self.results
        failed = [p for p in self.plan.parents[nid] if results[p]["status"] in (ERROR, CANCELLED)]
        if failed:
            return (
                f"upstream {failed[0]!r} failed"
                if len(failed) == 1
                else f"upstream {failed} failed"
            )
        if all(results[p]["status"] == SKIPPED for p in self.plan.parents[nid]):
            return "upstream skipped"
        ports = {
            p: results[p]["port"] for p in self.plan.parents[nid] if results[p]["status"] != SKIPPED
        }
        shown = ", ".join(f"{p} → {port}" for p, port in ports.items())
        return f"no incoming edge fired ({shown})"

    def _skipped(self, nid: str, reason: str) -> dict[str, Any]:
        result = {
            "status": SKIPPED,
            "port": None,
            "data": None,
            "attempts": 0,
            "duration_ms": 0.0,
            "reason": reason,
        }
        self.results[nid] = result
        self.emit(ev.NODE_SKIPPED, nid, reason=reason)
        return result

    def _skip(self, nid: str, reason: str) -> None:
        self._route(nid, self._skipped(nid, reason))

    def _on_failure(self, nid: str, result: dict[str, Any]) -> None:
        group = self.plan.group_of.get(nid)
        if group is not None and group.on_error and group.id not in self._failed_groups:
            self._failed_groups[group.id] = result["error"]
            for member in group.nodes:
                task = self._running.get(member)
                if task is not None and member != nid:
                    task.cancel()
            result["handled_by"] = group.on_error
            handler = group.on_error
            task = asyncio.ensure_future(self._node_task(handler, error_input=result["error"]))
            self._running[handler] = task
            self._task_node[task] = handler
            task.add_done_callback(self._on_done)
            return
        if self.error is None:
            self.error = result["error"]
        self.cancel("error")

    def _finish_status(self) -> None:
        for nid in self.workflow.nodes:
            if nid not in self.results:
                reason = "execution stopped" if self._stopping else "not used"
                self.results[nid] = {
                    "status": SKIPPED,
                    "port": None,
                    "data": None,
                    "attempts": 0,
                    "duration_ms": 0.0,
                    "reason": reason,
                }
        self.finished_at = time.time()
        if self._stopping == "timeout":
            self.status = ERROR
            self.error = self.error or {
                "type": "TimeoutError",
                "message": f"execution timed out after {self.timeout:g}s",
                "node": None,
            }
        elif self._stopping == "error":
            self.status = ERROR
        elif self._stopping is not None:
            self.status = CANCELLED
        else:
            self.status = SUCCESS

    async def _drain(self) -> None:
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)
            await asyncio.sleep(0)

    # -- one node ---------------------------------------------------------------------
    def _input_of(self, nid: str) -> Any:
        parents = self.plan.parents[nid]
        if not parents:
            return self.trigger
        results = self.results
        if len(parents) == 1:
            return results[parents[0]]["data"]
        return {p: results[p]["data"] for p in parents if results[p]["status"] != SKIPPED}

    async def _run_node(self, nid: str, error_input: Any = None) -> dict[str, Any]:
        node = self.workflow.nodes[nid]
        started = time.time()
        t0 = time.perf_counter()
        if node.disabled:
            return {
                "status": SKIPPED,
                "port": None,
                "data": None,
                "attempts": 0,
                "started_at": _iso(started),
                "duration_ms": 0.0,
                "reason": "disabled",
            }
        pin = self.pins.get(nid)
        if pin is not None:
            return {
                "status": SUCCESS,
                "port": pin.get("port", "default"),
                "data": pin.get("data"),
                "attempts": 0,
                "started_at": _iso(started),
                "duration_ms": 0.0,
                "pinned": True,
            }
        node_input = {"error": error_input} if error_input is not None else self._input_of(nid)
        self.emit(ev.NODE_STARTED, nid, type=node.type)
        ctx = NodeContext(self, node, node_input)
        result = await self._attempts(node, ctx, started, t0)
        if result["status"] == ERROR and node.fallback:
            result = await self._run_fallback(node, result)
        elif result["status"] == ERROR and node.on_error == "continue":
            result["port"] = ERROR_PORT
            result["data"] = {"error": result["error"]}
        result["started_at"] = _iso(started)
        result["duration_ms"] = round((time.perf_counter() - t0) * 1000, 3)
        if ctx.logs:
            result["logs"] = ctx.logs
        return result

    async def _attempts(
        self, node: Node, ctx: NodeContext, started: float, t0: float
    ) -> dict[str, Any]:
        """Run the block, retrying per ``node.retry``; ``started``/``t0``: the node's start
        (wall and ``perf_counter``), which is the first attempt's."""
        block = self.plan.blocks[node.id]
        policy = node.retry
        debugger = self.debugger
        try:
            ctx.config = ctx.resolve_config()
            if debugger is not None:
                await debugger.before_node(self, node, ctx)
        except ExpressionError as exc:
            return {
                "status": ERROR,
                "port": None,
                "data": None,
                "attempts": 0,
                "error": _error_dict(exc, node.id, 0),
            }
        attempt = 0
        log_from = 0  # where this attempt's lines start in ctx.logs
        while True:
            attempt += 1
            ctx.attempt = attempt
            try:
                if node.timeout is not None:
                    ctx.timeout = node.timeout
                    try:
                        async with asyncio.timeout(node.timeout):
                            out = await block.run(ctx)
                    except TimeoutError:
                        raise NodeTimeout(
                            f"attempt {attempt} timed out after {node.timeout:g}s"
                        ) from None
                else:
                    out = await block.run(ctx)
            except (asyncio.CancelledError, ExecutionCancelled):
                raise
            except Exception as exc:  # any block failure becomes the node's error
                retryable = (
                    exc.retryable
                    if isinstance(exc, BlockError)
                    else not isinstance(exc, (ExpressionError, Conv3nError))
                    or isinstance(exc, NodeTimeout)
                )
                if isinstance(exc, ExpressionError):
                    exc = exc.locate(node=node.id)
                if retryable and attempt < policy.max_attempts:
                    delay = policy.delay(attempt)
                    if policy.jitter:
                        delay *= random.uniform(0.5, 1.0)
                    if self.listeners:
                        # The failed attempt as a whole: its error, timings and log lines.
                        self.emit(
                            ev.NODE_RETRYING,
                            node.id,
                            attempt=attempt,
                            delay=delay,
                            error=_message(exc),
                            error_detail=_error_dict(exc, node.id, attempt),
                            started_at=_iso(started),
                            duration_ms=round((time.perf_counter() - t0) * 1000, 3),
                            logs=ctx.logs[log_from:] or None,
                        )
                    ctx.log(
                        f"attempt {attempt} failed: {_message(exc)}; retrying in {delay:.3f}s",
                        level="warning",
                    )
                    await asyncio.sleep(delay)
                    started, t0 = time.time(), time.perf_counter()
                    log_from = len(ctx.logs)
                    continue
                return {
                    "status": ERROR,
                    "port": None,
                    "data": None,
                    "attempts": attempt,
                    "error": _error_dict(exc, node.id, attempt),
                }
            if type(out) is _Output or isinstance(out, _Output):
                result = {
                    "status": SUCCESS,
                    "port": out.port,
                    "data": out.data,
                    "attempts": attempt,
                }
            else:
                result = {"status": SUCCESS, "port": "default", "data": out, "attempts": attempt}
            if self._after_node is not None:
                await self._after_node(self, node, ctx, result)
            return result

    async def _run_fallback(self, node: Node, failed: dict[str, Any]) -> dict[str, Any]:
        fb = self.workflow.nodes[node.fallback]  # type: ignore[index]
        ctx = NodeContext(self, fb, {"error": failed["error"]})
        self.emit(ev.NODE_STARTED, fb.id, type=fb.type, fallback_for=node.id)
        t0 = time.perf_counter()
        started = time.time()
        res = await self._attempts(fb, ctx, started, t0)
        res["started_at"] = _iso(started)
        res["duration_ms"] = round((time.perf_counter() - t0) * 1000, 3)
        if ctx.logs:
            res["logs"] = ctx.logs
        self.results[fb.id] = res
        self.emit(
            ev.NODE_FINISHED,
            fb.id,
            status=res["status"],
            port=res["port"],
            duration_ms=res["duration_ms"],
            error=res.get("error"),
        )
        out = {
            "status": res["status"],
            "port": res["port"],
            "data": res["data"],
            "attempts": failed["attempts"],
            "fallback": fb.id,
            "failed_error": failed["error"],
        }
        if res["status"] == ERROR:
            out["error"] = res["error"]
        return out

    # -- sub-workflows (loop bodies, std/subworkflow) -----------------------------------
    async def run_subworkflow(
        self, workflow: Any, params: Mapping[str, Any] | None, key: str
    ) -> dict[str, Any]:
        wf = self._subworkflow(workflow, key)
        child = Execution(
            wf,
            params,
            trigger=self.trigger,
            runtime=self.runtime,
            listeners=(),
            execution_id=f"{self.id}/{key}",
            depth=self.depth + 1,
        )
        return await child.run()

    def _subworkflow(self, workflow: Any, key: str) -> Workflow:
        from ..model import load, parse

        if isinstance(workflow, Workflow):
            return workflow
        cached = self._sub_cache.get(id(workflow))
        if cached is not None:
            return cached
        if isinstance(workflow, dict) and "workflow" in workflow and "nodes" not in workflow:
            ref = str(workflow["workflow"])
            base = Path(self.workflow.source).parent if self.workflow.source else Path.cwd()
            wf = load(base / ref)
        elif isinstance(workflow, dict):
            inline = {"name": f"{self.workflow.name}:{key}", **workflow}
            wf = parse(inline, source=f"{self.workflow.source or self.workflow.name}#{key}")
        else:
            wf = load(str(workflow))
        self._sub_cache[id(workflow)] = wf
        return wf

    # -- result -----------------------------------------------------------------------
    def _duration_ms(self) -> float:
        return round(((self.finished_at or time.time()) - self.started_at) * 1000, 3)

    def output(self) -> Any:
        sinks = [
            s
            for s in self.plan.sinks
            if self.results.get(s, {}).get("status") not in (SKIPPED, CANCELLED, None)
        ]
        if len(self.plan.sinks) == 1:
            return self.results.get(self.plan.sinks[0], {}).get("data")
        return {s: self.results[s]["data"] for s in sinks}

    def result(self) -> dict[str, Any]:
        """The execution result as a JSON-ready dict."""
        nodes = {nid: self.results[nid] for nid in self.workflow.nodes if nid in self.results}
        out: dict[str, Any] = {
            "execution_id": self.id,
            "workflow": self.workflow.name,
            "status": self.status,
            "started_at": _iso(self.started_at) if self.started_at else None,
            "duration_ms": self._duration_ms(),
            "params": self.params,
            "nodes": nodes,
            "output": self.output(),
        }
        if self.error is not None:
            out["error"] = self.error
        return out

    def __repr__(self) -> str:
        done = sum(1 for r in self.results.values() if r["status"] != "running")
        return f"<Execution {self.id[:8]} {self.status} {done}/{len(self.workflow.nodes)} nodes>"


from ..blocks.base import Output as _Output  # noqa: E402  (after the class, to keep the import graph flat)


async def run(
    workflow: Workflow | str | Path | dict[str, Any],
    params: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Run a workflow and return its result dict.

        >>> result = await run("templates/hello.conv3n.json", {"name": "Ada"})
        >>> result["status"]
        'success'

    Keyword arguments are those of :class:`Execution` (``trigger``, ``listeners``, ``pins``,
    ``start_from``/``previous``, ``runtime``, ``timeout``...).
    """
    from ..model import load

    wf = workflow if isinstance(workflow, Workflow) else load(workflow)
    return await Execution(wf, params, **kwargs).run()
