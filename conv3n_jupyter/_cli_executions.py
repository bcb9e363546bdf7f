"""``conv3n history``, ``show``, ``retry`` and ``prune``: the execution history in the store.

$ conv3n history daily --status error --since 7d
$ conv3n show 3f2a                 # an unambiguous id prefix is enough
$ conv3n retry 3f2a                # re-run from the failed node, reusing the rest
$ conv3n prune --older-than 30d --keep-last 100
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from ._cli_store import (
    EXIT_USAGE,
    _dumps,
    _echo,
    _seconds,
    _since,
    _table,
    _took,
    _when,
    database_url_option,
    fail,
    need_store,
    open_cli_store,
    output_option,
)

if TYPE_CHECKING:
    from .model import Workflow

_SCAN_PAGE = 200


def _last_node(row: dict[str, Any]) -> str:
    error = row.get("error")
    if isinstance(error, dict) and error.get("node"):
        return str(error["node"])
    return str(row.get("last_node") or "")


@click.command(
    epilog="""\b
Examples:
  conv3n history
  conv3n history daily --status error --limit 5
  conv3n history --since 2h --output json""",
)
@click.argument("workflow", required=False)
@click.option("--status", metavar="STATUS", help="Only this status (success, error, crashed...).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--since", "since_text", metavar="WHEN", help="'2h', '7d' back, or an ISO date.")
@output_option
@database_url_option
def history(
    workflow: str | None,
    status: str | None,
    limit: int,
    since_text: str | None,
    output: str,
    database_url: str | None,
) -> None:
    """List executions, newest first; WORKFLOW is a saved workflow's id or a workflow's name."""
    need_store()
    from .store.executions import read_executions

    since = _since(since_text) if since_text else None
    store = open_cli_store(database_url)
    rows: list[dict[str, Any]] = []
    try:
        cursor: str | None = None
        while len(rows) < limit:
            page = read_executions(
                store,
                status=status,
                since=since,
                limit=limit if workflow is None else _SCAN_PAGE,
                cursor=cursor,
            )
            rows.extend(
                r
                for r in page.items
                if workflow is None or workflow in (r["workflow_id"], r["workflow_name"])
            )
            cursor = page.next_cursor
            if cursor is None:
                break
    finally:
        store.close()
    rows = rows[:limit]
    if output == "json":
        _echo(_dumps([{k: v for k, v in r.items() if k != "definition"} for r in rows]))
        return
    _table(
        f"{len(rows)} execution{'' if len(rows) == 1 else 's'}",
        ["id", "workflow", "status", "started", "duration", "last node"],
        [
            [
                r["id"],
                r["workflow_id"] or r["workflow_name"],
                r["status"],
                _when(r["started_at"]),
                _took(r["duration_ms"]),
                _last_node(r),
            ]
            for r in rows
        ],
    )


def find_execution(store: Any, ref: str) -> dict[str, Any]:
    """The execution whose id is ``ref``, or the only one whose id starts with it; else exit 1."""
    import sqlalchemy as sa

    from .errors import NotFound
    from .store.executions import read_execution
    from .store.tables import executions

    try:
        return read_execution(store, ref)
    except NotFound:
        pass
    escaped = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    with store.begin() as conn:
        ids = list(
            conn.execute(
                sa.select(executions.c.id)
                .where(executions.c.id.like(escaped + "%", escape="\\"))
                .limit(6)
            ).scalars()
        )
    if not ids:
        fail(f"execution {ref!r} not found")
    if len(ids) > 1:
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        fail(f"execution id prefix {ref!r} is ambiguous: {shown}")
    return read_execution(store, ids[0])


@click.command(
    epilog="""\b
Examples:
  conv3n show 3f2a91c0
  conv3n show 3f2a --output json | jq .nodes""",
)
@click.argument("execution", metavar="EXECUTION")
@output_option
@database_url_option
def show(execution: str, output: str, database_url: str | None) -> None:
    """Show one execution (an id or an unambiguous id prefix) with its node runs."""
    need_store()
    from .store.maintenance import list_artifacts

    store = open_cli_store(database_url)
    try:
        row = find_execution(store, execution)
        row["artifacts"] = list_artifacts(store, row["id"])
    finally:
        store.close()
    if output == "json":
        _echo(_dumps(row))
        return
    from rich.console import Console
    from rich.text import Text

    from ._progress import STYLES

    head = (
        f"execution {row['id']} · {row['workflow_id'] or row['workflow_name']} · "
        f"{row['status']} · started {_when(row['started_at'])} · {_took(row['duration_ms'])}"
    )
    links = [f"{k} {row[k]}" for k in ("parent_id", "retry_of", "start_from") if row.get(k)]
    width = None if sys.stdout.isatty() else 200
    Console(highlight=False, width=width).print(
        Text(head, style=STYLES.get(str(row["status"]), "bold"))
    )
    if links:
        _echo("  " + " · ".join(links))
    nodes = sorted(row["nodes"].items(), key=lambda kv: str(kv[1].get("started_at") or ""))
    # A retried node: a row per failed attempt ("fetch #1"), then the attempt it ended with.
    runs: list[tuple[str, dict[str, Any]]] = []
    for nid, r in nodes:
        runs.extend((f"{nid} #{e.get('attempt')}", e) for e in r.get("earlier_attempts", ()))
        runs.append((nid, r))
    _table(
        "node runs",
        ["node", "status", "port", "attempt", "time", "error"],
        [
            [
                name,
                str(r.get("status")),
                str(r.get("port") or ""),
                str(r.get("attempt") or ""),
                _took(r.get("duration_ms")),
                str((r.get("error") or {}).get("message") or ""),
            ]
            for name, r in runs
        ],
    )
    if row["artifacts"]:
        _table(
            "artifacts",
            ["name", "node", "size"],
            [[str(a["name"]), str(a["node_id"] or ""), _size(a["size"])] for a in row["artifacts"]],
        )
    error = row.get("error")
    if isinstance(error, dict):
        where = f" at node {error['node']!r}" if error.get("node") else ""
        sys.stderr.write(f"error{where}: {error.get('type')}: {error.get('message')}\n")


def _size(n: int) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 MiB``."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


# -- retry --------------------------------------------------------------------------------------


def topological(wf: Workflow) -> list[str]:
    """The workflow's node ids, every node after all of its upstream ones (file order on ties)."""
    from .engine.executor import plan_of

    parents = plan_of(wf).parents
    order: list[str] = []
    placed: set[str] = set()
    pending = list(wf.nodes)
    while pending:
        ready = [n for n in pending if all(p in placed for p in parents[n])]
        if not ready:  # a cycle cannot pass validation; keep file order if one ever does
            ready = pending[:1]
        for n in ready:
            order.append(n)
            placed.add(n)
        pending = [n for n in pending if n not in placed]
    return order


def retry_node(wf: Workflow, stored: dict[str, Any]) -> str:
    """Where a retry starts: the earliest failed node, or the first one a crash left undone."""
    from .engine.executor import plan_of

    standby = plan_of(wf).standby
    runs = stored["nodes"]
    order = [n for n in topological(wf) if n not in standby]
    if stored["status"] == "error":
        failed = [n for n in order if runs.get(n, {}).get("status") == "error"]
        if failed:
            return failed[0]
    for nid in order:
        if runs.get(nid, {}).get("status") not in ("success", "skipped"):
            return nid
    fail(f"execution {stored['id']} has no failed or unfinished node to retry from")


def _stored_workflow(store: Any, stored: dict[str, Any], file: str | None) -> Workflow:
    from .errors import NotFound, WorkflowValidationError
    from .model import load, parse
    from .store.executions import read_definition

    definition: Any = None
    try:
        if file is not None:
            return load(file)
        definition = read_definition(store, stored["id"])
        if definition is None:
            fail(
                f"execution {stored['id']} kept no copy of its workflow; give it with --file",
                EXIT_USAGE,
            )
        source = (
            f"workflow {stored['workflow_id']!r}"
            if stored["workflow_id"]
            else f"execution {stored['id']}"
        )
        return parse(definition, source=source)
    except NotFound as exc:
        fail(f"cannot retry execution {stored['id']}: {exc}; give the workflow with --file")
    except WorkflowValidationError as exc:
        fail(f"cannot retry execution {stored['id']}: the workflow is invalid: {exc}", EXIT_USAGE)


def reusable(store: Any, stored: dict[str, Any], wf: Workflow, start: str) -> dict[str, Any]:
    """The engine's ``previous`` for a retry from ``start``: successful runs, plus skipped ones
    outside the re-run part (so that a branch a condition left out stays left out)."""
    from .store.executions import previous_results

    previous = previous_results(store, stored["id"])
    rerun = wf.downstream(start) | {start}
    for nid, run in stored["nodes"].items():
        if run.get("status") == "skipped" and nid not in rerun and nid in wf.nodes:
            previous["nodes"][nid] = {
                "status": "skipped",
                "port": None,
                "data": None,
                "attempts": 0,
                "duration_ms": 0.0,
                "reason": "skipped in the retried execution",
            }
    return previous


@click.command(
    epilog="""\b
Examples:
  conv3n retry 3f2a91c0
  conv3n retry 3f2a --from fetch -q | jq .output

\b
Exit status: 0 the retry succeeded, 1 it failed or cannot be retried.""",
)
@click.argument("execution", metavar="EXECUTION")
@click.option("--from", "start", metavar="NODE", help="Start here instead of the failed node.")
@click.option(
    "--file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Run this workflow file instead of the copy kept with the execution.",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["json", "pretty"]),
    default="json",
    show_default=True,
    help="json: the new execution result; pretty: the output and a table of the nodes.",
)
@click.option("-q", "--quiet", is_flag=True, help="Only a one-line error on failure.")
@database_url_option
@click.pass_context
def retry(
    ctx: click.Context,
    execution: str,
    start: str | None,
    file: str | None,
    output: str,
    quiet: bool,
    database_url: str | None,
) -> None:
    """Re-run a failed or crashed EXECUTION from its failed node, reusing the upstream results.

    The retry is a new execution (linked by retry_of); nodes before the failed one are not
    run again: their stored outputs are used.
    """
    import asyncio

    need_store()
    from . import cli
    from ._cli_store import note_recorded, run_recorded
    from .engine.executor import Execution
    from .errors import WorkflowValidationError

    store = open_cli_store(database_url)
    try:
        stored = find_execution(store, execution)
        if stored["status"] == "success":
            fail(f"execution {stored['id']} succeeded: there is nothing to retry")
        if stored["status"] in ("running", "queued"):
            fail(f"execution {stored['id']} is {stored['status']}: wait for it to finish")
        wf = _stored_workflow(store, stored, file)
        if start is not None and start not in wf.nodes:
            fail(f"--from: {start!r} is not a node of {wf.name!r}", EXIT_USAGE)
        start = start or retry_node(wf, stored)
        previous = reusable(store, stored, wf, start)
        missing = sorted(n for n in wf.upstream(start) if n not in previous["nodes"])
        if missing:
            fail(
                f"cannot retry execution {stored['id']} from {start!r}: no stored result to "
                f"reuse for upstream node(s) {', '.join(map(repr, missing))}"
            )
        try:
            ex = Execution(
                wf,
                stored["params"],
                trigger=stored["trigger"],
                start_from=start,
                previous=previous,
                timeout=stored.get("timeout"),
            )
            result = asyncio.run(
                run_recorded(
                    store,
                    ex,
                    lambda e: cli._run_with_signals(e, None),
                    workflow_id=stored["workflow_id"],
                    workflow_version=stored["workflow_version"],
                    retry_of=stored["id"],
                )
            )
        except WorkflowValidationError as exc:
            problems = "; ".join(p.reason for p in exc.problems)
            fail(f"cannot retry execution {stored['id']} from {start!r}: {problems}")
        note_recorded(ex.id, store, quiet)
    finally:
        store.close()
    if output == "pretty":
        cli._print_pretty(result, wf)
    else:
        cli._write_stdout(_dumps(result) + "\n")
    cli._print_summary(result, wf, fancy=False)
    ctx.exit(0 if result["status"] == "success" else 1)


# -- prune --------------------------------------------------------------------------------------


@click.command(
    epilog="""\b
Examples:
  conv3n prune --older-than 30d
  conv3n prune --keep-last 1000
  conv3n prune                      # history_keep_days / history_keep_last settings""",
)
@click.option("--older-than", metavar="AGE", help="Delete executions finished longer ago ('30d').")
@click.option("--keep-last", type=click.IntRange(min=0), metavar="N", help="Keep the N newest.")
@database_url_option
def prune(older_than: str | None, keep_last: int | None, database_url: str | None) -> None:
    """Delete finished executions (with their node runs) from the history; prints how many.

    Without flags the history_keep_days and history_keep_last settings apply.
    """
    need_store()
    from .store.maintenance import prune as prune_store

    seconds = _seconds(older_than, "'--older-than'") if older_than else None
    if older_than is None and keep_last is None:
        from .errors import Conv3nError
        from .settings import load_settings

        try:
            seconds, keep_last = load_settings().history_limits()
        except Conv3nError as exc:
            fail(str(exc), EXIT_USAGE)
        if seconds is None and keep_last is None:
            raise click.UsageError(
                "give --older-than and/or --keep-last, or set the history_keep_days or "
                "history_keep_last setting (CONV3N_HISTORY_KEEP_DAYS, conv3n.toml)"
            )
    store = open_cli_store(database_url)
    try:
        removed = prune_store(store, older_than=seconds, keep_last=keep_last)
    finally:
        store.close()
    _echo(f"removed {removed} execution{'' if removed == 1 else 's'}")
