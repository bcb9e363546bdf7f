"""The ``conv3n`` commands that use the store: ``workflows``, ``history``, ``show``, ``retry``,
``prune``, and the recording part of ``conv3n run --store``.

The store (SQLAlchemy, Alembic) is imported only when one of these commands runs; without the
``store`` extra they exit with the ``pip install`` line to run. The store is the one of the
settings (``CONV3N_DATABASE_URL``, ``conv3n.toml``), or ``--database-url``.

    $ conv3n run daily.conv3n.json --store
    $ conv3n history --status error --limit 5
    $ conv3n retry 3f2a
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .engine.executor import Execution

EXIT_FAILED, EXIT_USAGE = 1, 2

database_url_option = click.option(
    "--database-url",
    metavar="URL",
    help="The store (sqlite:///FILE or postgresql://...); default: the database_url setting "
    "(CONV3N_DATABASE_URL, conv3n.toml).",
)
output_option = click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table: a table on stdout; json: JSON on stdout.",
)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(code)


def need_store() -> None:
    """Exit 2 with the ``pip install`` line when the store extra is not installed."""
    try:
        import conv3n_jupyter.store  # noqa: F401
    except ImportError as exc:
        fail(str(exc), EXIT_USAGE)


def open_cli_store(database_url: str | None, *, create: bool = False) -> Any:
    """Open (and migrate) the store of ``database_url`` or of the settings; exits on failure.

    Commands that only read or change what is there (``history``, ``show``...) do not create
    a SQLite file that does not exist: a typo in the URL or the wrong folder is an error.
    """
    from .errors import Conv3nError
    from .settings import load_settings

    try:
        settings = load_settings()
    except Conv3nError as exc:
        fail(str(exc), EXIT_USAGE)
    url = database_url or settings.database_url
    need_store()
    if not create:
        missing = _missing_sqlite_file(url)
        if missing is not None:
            fail(
                f"no store at {missing} (database_url {url!r}): record runs with"
                " 'conv3n run --store' or 'conv3n serve', or point --database-url /"
                " CONV3N_DATABASE_URL at an existing store"
            )
    from .store import open_store

    try:
        return open_store(url, max_output_bytes=settings.max_output_bytes)
    except Conv3nError as exc:
        fail(f"cannot open the store: {exc}")


def _missing_sqlite_file(url: str) -> str | None:
    """The file a ``sqlite:///`` URL names, when it does not exist; else ``None``."""
    from pathlib import Path

    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return None if Path(path).exists() else path


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _when(ts: float | None) -> str:
    if not ts:
        return ""
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _took(ms: float | None) -> str:
    if ms is None:
        return ""
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, no_wrap=col in ("id", "execution", "started"))
    for row in rows:
        table.add_row(*row)
    # Piped output keeps whole ids on one line rather than wrapping at 80 columns.
    width = None if sys.stdout.isatty() else 200
    Console(highlight=False, soft_wrap=True, width=width).print(table)


def _echo(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _seconds(text: str, what: str) -> float:
    """A duration with a unit (``30d``, ``12h``): bare numbers are refused as ambiguous."""
    from ._durations import parse_duration

    try:
        float(text)
    except ValueError:
        pass
    else:
        raise click.BadParameter(f"give a unit: '{text}d', '{text}h' or '{text}m'", param_hint=what)
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=what) from None


def _since(text: str) -> float:
    """``--since``: a duration back from now (``2h``, ``7d``) or an ISO date/time (UTC if naive)."""
    from datetime import datetime, timezone

    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return time.time() - _seconds(text, "'--since'")
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.timestamp()


# -- run --store --------------------------------------------------------------------------------


async def run_recorded(
    store: Any,
    execution: Execution,
    runner: Callable[[Execution], Awaitable[dict[str, Any]]],
    *,
    workflow_id: str | None = None,
    workflow_version: int | None = None,
    retry_of: str | None = None,
) -> dict[str, Any]:
    """Run ``execution`` through ``runner`` with the store as its runtime's and record it.

    The execution row keeps a snapshot of the workflow when it is not a saved one, so that
    ``conv3n retry`` can run it again.
    """
    import asyncio

    from .engine.runtime import Runtime
    from .store import Recorder

    ex = execution
    recorder = Recorder(store, ex, workflow_id=workflow_id, workflow_version=workflow_version)
    await recorder.start(
        definition=None if workflow_id else ex.workflow.to_dict(),
        retry_of=retry_of,
        start_from=ex.start_from,
        timeout=ex.timeout,
    )
    if ex.start_from is not None and ex.previous:
        # A retry's reused nodes never run, so they are recorded here: a retry of this
        # execution can reuse them again.
        await asyncio.to_thread(_record_reused, store, ex)
    ex.listeners.insert(0, recorder)
    async with Runtime(store=store) as runtime:
        ex.runtime = runtime
        try:
            return await runner(ex)
        finally:
            await recorder.finish()


def _record_reused(store: Any, ex: Execution) -> None:
    from .store.executions import upsert_node_runs

    rerun = ex.workflow.downstream(ex.start_from or "") | {ex.start_from}
    rows = [
        {
            "node_id": nid,
            "attempt": r.get("attempts") or 0,
            "status": r["status"],
            "port": r.get("port"),
            "output": r.get("data"),
            "started_at": r.get("started_at"),
            "duration_ms": r.get("duration_ms"),
        }
        for nid, r in (ex.previous or {}).get("nodes", {}).items()
        if nid not in rerun and nid in ex.workflow.nodes
    ]
    upsert_node_runs(store, ex.id, rows)


def note_recorded(execution_id: str, store: Any, quiet: bool) -> None:
    """Tell (on stderr) where the run was recorded."""
    if not quiet:
        sys.stderr.write(f"recorded as execution {execution_id} in {store!r}\n")
        sys.stderr.flush()


# -- workflows ----------------------------------------------------------------------------------


@click.group(
    invoke_without_command=True,
    epilog="""\b
Examples:
  conv3n workflows
  conv3n workflows add daily.conv3n.json --id daily
  conv3n workflows remove daily""",
)
@output_option
@database_url_option
@click.pass_context
def workflows(ctx: click.Context, output: str, database_url: str | None) -> None:
    """List the workflows saved in the store (id, name, version, updated)."""
    ctx.ensure_object(dict)
    ctx.obj["database_url"] = database_url
    need_store()
    if ctx.invoked_subcommand is not None:
        return
    from .store.workflows import read_workflows

    store = open_cli_store(database_url)
    try:
        rows = read_workflows(store)
    finally:
        store.close()
    if output == "json":
        _echo(_dumps(rows))
        return
    _table(
        f"{len(rows)} saved workflow{'' if len(rows) == 1 else 's'}",
        ["id", "name", "version", "updated"],
        [[r["id"], r["name"], str(r["version"]), _when(r["updated_at"])] for r in rows],
    )


@workflows.command("add")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--id",
    "workflow_id",
    metavar="ID",
    help="The id; default: the file's `id` field, else a new one.",
)
@click.pass_context
def workflows_add(ctx: click.Context, file: str, workflow_id: str | None) -> None:
    """Save the workflow in FILE: a new workflow, or a new version when its id is saved already."""
    from .errors import NotFound, WorkflowValidationError
    from .model import load

    try:
        wf = load(file)
    except WorkflowValidationError as exc:
        problems = "; ".join(f"{p.path}: {p.reason}" if p.path else p.reason for p in exc.problems)
        fail(f"{file} is invalid: {problems}", EXIT_USAGE)
    from .store.workflows import create_workflow, update_workflow

    definition = wf.to_dict()
    wid = workflow_id or wf.id
    store = open_cli_store(ctx.obj["database_url"], create=True)
    try:
        try:
            saved = update_workflow(store, wid, definition) if wid else None
        except NotFound:
            saved = None
        if saved is None:
            saved = create_workflow(store, definition, workflow_id=wid)
    finally:
        store.close()
    _echo(f"saved workflow {saved['id']} ({saved['name']}) version {saved['version']}")


@workflows.command("remove")
@click.argument("workflow_id", metavar="ID")
@click.pass_context
def workflows_remove(ctx: click.Context, workflow_id: str) -> None:
    """Delete a saved workflow, its versions and its variables (its history stays)."""
    from .errors import NotFound
    from .store.workflows import delete_workflow

    store = open_cli_store(ctx.obj["database_url"])
    try:
        delete_workflow(store, workflow_id)
    except NotFound as exc:
        fail(str(exc))
    finally:
        store.close()
    _echo(f"removed workflow {workflow_id}")
