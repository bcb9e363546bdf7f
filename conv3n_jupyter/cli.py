"""The ``conv3n`` command line: run, validate, list blocks, print the JSON Schema.

Start-up time matters (a cron job or a shell loop pays it on every run), so this module imports
only click; each command imports what it needs, and rich is loaded only to draw on a terminal.

    $ conv3n run hello.conv3n.json -p name=Ada
    $ conv3n validate workflows/*.conv3n.json
    $ conv3n schema > conv3n.schema.json
"""

from __future__ import annotations

import os
import sys
from typing import IO, TYPE_CHECKING, Any, NoReturn

import click

from . import __version__

if TYPE_CHECKING:
    from .engine.executor import Execution
    from .errors import Problem, WorkflowValidationError
    from .model import Workflow

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(
    context_settings=CONTEXT_SETTINGS,
    epilog="""\b
Examples:
  conv3n run hello.conv3n.json -p name=Ada
  conv3n run report.conv3n.json --params-file prod.env -q > result.json
  conv3n validate workflows/*.conv3n.json
  conv3n blocks
  conv3n schema > conv3n.schema.json
  conv3n config --env prod

Run 'conv3n COMMAND --help' for the options of a command.""",
)
@click.version_option(
    __version__, "-V", "--version", prog_name="conv3n", message="%(prog)s %(version)s"
)
def main() -> None:
    """Run and check conv3n workflows (JSON DAGs of blocks) from the shell."""


# -- shared helpers -----------------------------------------------------------------------------


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _console(stderr: bool) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _print_problems(source: str, problems: list[Problem], stream: IO[str]) -> None:
    """``FILE: N problems`` then one indented ``path: reason`` line each (coloured on a TTY)."""
    head = f"{source}: {_plural(len(problems), 'problem')}"
    if _isatty(stream):
        from rich.console import Console
        from rich.text import Text

        console = Console(file=stream, highlight=False, soft_wrap=True)
        console.print(Text.assemble((source, "bold"), ": ", (head[len(source) + 2 :], "bold red")))
        for p in problems:
            where = Text.assemble((p.path, "cyan"), ": ") if p.path else Text()
            console.print(Text.assemble("  ", where, p.reason))
        return
    lines = [head]
    lines.extend(f"  {p.path}: {p.reason}" if p.path else f"  {p.reason}" for p in problems)
    stream.write("\n".join(lines) + "\n")
    stream.flush()


def _invalid(exc: WorkflowValidationError, source: str) -> NoReturn:
    _print_problems(exc.source or source, exc.problems, sys.stderr)
    raise SystemExit(EXIT_USAGE)


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


# -- parameters -----------------------------------------------------------------------------------

_BOOLS = {
    "true": True,
    "false": False,
    "yes": True,
    "no": False,
    "on": True,
    "off": False,
    "1": True,
    "0": False,
}


def _split_assignment(text: str, what: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise click.BadParameter(f"expected KEY=VALUE, got {text!r}", param_hint=what)
    return key, value


def _parse_param_options(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> list[tuple[str, str]]:
    return [_split_assignment(v, "'-p' / '--param'") for v in values]


def coerce_param(raw: str, declared: Any) -> Any:
    """Turn a command-line string into the type a parameter declares.

    ``string`` stays as is; ``integer``/``number``/``boolean``/``object``/``array``/``null``
    are read as JSON (booleans also from yes/no/on/off). An undeclared type is read as JSON
    when it parses, else kept as a string. A value that does not fit is returned unchanged, so
    the run reports it with the parameter's name and type.

        >>> coerce_param("42", "integer"), coerce_param("42", "string"), coerce_param("[1]", None)
        (42, '42', [1])
    """
    import json

    if declared is None:
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    types = declared if isinstance(declared, list) else [declared]
    for t in types:
        if t == "string":
            continue
        value = _as_type(raw, t, json)
        if value is not _NO:
            return value
    return raw


_NO = object()


def _as_type(raw: str, type_name: str, json: Any) -> Any:
    text = raw.strip()
    if type_name == "boolean":
        return _BOOLS.get(text.lower(), _NO)
    try:
        value = json.loads(text)
    except ValueError:
        return _NO
    if type_name == "integer":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value if isinstance(value, int) and not isinstance(value, bool) else _NO
    if type_name == "number":
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else _NO
    if type_name == "object":
        return value if isinstance(value, dict) else _NO
    if type_name == "array":
        return value if isinstance(value, list) else _NO
    if type_name == "null":
        return value if value is None else _NO
    return _NO


def _read_text(path: str, what: str) -> str:
    from pathlib import Path

    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise click.BadParameter(f"cannot read {path}: {reason}", param_hint=what) from None


def _read_json_file(path: str, what: str) -> Any:
    import json

    text = _read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            param_hint=what,
        ) from None


def _read_params_file(path: str, wf: Workflow) -> dict[str, Any]:
    """A JSON object, or ``key=value`` lines (blank lines and ``#`` comments ignored)."""
    what = "'--params-file'"
    text = _read_text(path, what)
    if text.lstrip().startswith(("{", "[")):
        data = _read_json_file(path, what)
        if not isinstance(data, dict):
            raise click.BadParameter(
                f"{path}: expected a JSON object of parameters", param_hint=what
            )
        return data
    out: dict[str, Any] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise click.BadParameter(
                f"{path}, line {n}: expected KEY=VALUE, got {line!r}", param_hint=what
            )
        key, value = _split_assignment(line, what)
        out[key] = _coerce_for(wf, key, value)
    return out


def _coerce_for(wf: Workflow, name: str, raw: str) -> Any:
    decl = wf.params.get(name)
    if decl is None:
        return coerce_param(raw, None)
    return coerce_param(raw, decl.get("type", "string"))


def _parse_timeout(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    from ._durations import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if seconds <= 0:
        raise click.BadParameter(f"the timeout must be positive, got {value!r}")
    return seconds


# -- run --------------------------------------------------------------------------------------


@main.command(
    epilog="""\b
Examples:
  conv3n run hello.conv3n.json
  conv3n run weather.conv3n.json -p city=Paris -p days=3
  conv3n run sync.conv3n.json --params-file prod.json --timeout 5m
  conv3n run hook.conv3n.json --trigger-file request.json -q | jq .output
  conv3n run report.conv3n.json --output pretty

\b
Exit status: 0 success, 1 the workflow failed, 2 invalid workflow or
usage, 130 cancelled (Ctrl-C; press it again to quit at once).""",
)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "-p",
    "--param",
    "param_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_parse_param_options,
    help="A parameter, repeatable. The value is read as the type the workflow declares "
    "(numbers, booleans, JSON objects and arrays); strings stay strings.",
)
@click.option(
    "--params-file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Parameters from a JSON object or KEY=VALUE lines; -p options override them.",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["json", "pretty"]),
    default="json",
    show_default=True,
    help="json: the execution result as JSON; pretty: the output and a table of the nodes.",
)
@click.option(
    "-q", "--quiet", is_flag=True, help="No progress on stderr; only a one-line error on failure."
)
@click.option(
    "--timeout",
    metavar="DURATION",
    callback=_parse_timeout,
    help="Stop the execution after this long ('30s', '5m', or milliseconds); it then fails.",
)
@click.option(
    "--use-pins",
    is_flag=True,
    help="Use the pinned node outputs of config.pin instead of running those nodes.",
)
@click.option(
    "--trigger-file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="A JSON file used as $trigger (e.g. a webhook payload {body, headers, query, ...}).",
)
@click.option(
    "--store",
    "use_store",
    is_flag=True,
    help="Record the run in the store (the database_url setting) and give the workflow/global "
    "variables of std/set_var and std/get_var; prints the execution id on stderr.",
)
@click.option(
    "--database-url",
    metavar="URL",
    help="The store to record in (implies --store); default: the database_url setting.",
)
@click.pass_context
def run(
    ctx: click.Context,
    file: str,
    param_pairs: list[tuple[str, str]],
    params_file: str | None,
    output: str,
    quiet: bool,
    timeout: float | None,
    use_pins: bool,
    trigger_file: str | None,
    use_store: bool,
    database_url: str | None,
) -> None:
    """Run the workflow in FILE and print the execution result as JSON on stdout.

    Progress is drawn on stderr while the nodes run (only on a terminal, and not with -q).
    """
    try:
        stored = use_store or database_url is not None
        code = _run(
            file,
            param_pairs,
            params_file,
            output,
            quiet,
            timeout,
            use_pins,
            trigger_file,
            (database_url or "") if stored else None,
        )
    except KeyboardInterrupt:
        # Ctrl-C while loading, before the execution (and its own handler) started.
        sys.stderr.write("cancelled before the run started\n")
        code = EXIT_CANCELLED
    ctx.exit(code)


def _run(
    file: str,
    param_pairs: list[tuple[str, str]],
    params_file: str | None,
    output: str,
    quiet: bool,
    timeout: float | None,
    use_pins: bool,
    trigger_file: str | None,
    store_url: str | None = None,
) -> int:
    from .errors import WorkflowValidationError
    from .model import load

    try:
        wf = load(file)
    except WorkflowValidationError as exc:
        _invalid(exc, file)
    params: dict[str, Any] = _read_params_file(params_file, wf) if params_file else {}
    for key, raw in param_pairs:
        params[key] = _coerce_for(wf, key, raw)
    trigger: dict[str, Any] = {}
    if trigger_file:
        data = _read_json_file(trigger_file, "'--trigger-file'")
        if not isinstance(data, dict):
            raise click.BadParameter(
                f"{trigger_file}: expected a JSON object", param_hint="'--trigger-file'"
            )
        trigger = data

    from .engine.executor import Execution

    show_progress = not quiet and _isatty(sys.stderr)
    progress: Any = None
    listeners = []
    if show_progress:
        from ._progress import ProgressListener

        progress = ProgressListener(wf, _console(stderr=True))
        listeners.append(progress)
    try:
        execution = Execution(
            wf, params, trigger=trigger, listeners=listeners, use_pins=use_pins, timeout=timeout
        )
    except WorkflowValidationError as exc:
        _invalid(exc, file)

    import asyncio

    # -- store: `run --store` records the run (the store is imported only then) --------------
    store: Any = None
    if store_url is not None:
        from ._cli_store import open_cli_store

        store = open_cli_store(store_url or None, create=True)

    def runner(ex: Execution) -> Any:
        if store is None:
            return _run_with_signals(ex, progress)
        from ._cli_store import run_recorded

        return run_recorded(store, ex, lambda e: _run_with_signals(e, progress))

    try:
        if progress is not None:
            with progress:
                result = asyncio.run(runner(execution))
        else:
            result = asyncio.run(runner(execution))
    except WorkflowValidationError as exc:
        _invalid(exc, file)
    finally:
        if store is not None:
            from ._cli_store import note_recorded

            store.close()
            note_recorded(execution.id, store, quiet)

    status = result.get("status")
    if output == "pretty":
        _print_pretty(result, wf)
    else:
        _write_stdout(_dumps(result) + "\n")
    _print_summary(result, wf, fancy=show_progress)
    if status == "success":
        return EXIT_OK
    return EXIT_CANCELLED if status == "cancelled" else EXIT_FAILED


async def _run_with_signals(execution: Execution, progress: Any) -> dict[str, Any]:
    """Run, turning the first Ctrl-C into a clean cancel and the second into an exit."""
    import asyncio
    import signal

    loop = asyncio.get_running_loop()
    pressed = 0

    def on_sigint() -> None:
        nonlocal pressed
        pressed += 1
        if pressed == 1:
            _note("cancelling… (Ctrl-C again to force)", progress)
            execution.cancel("cancelled")
            return
        if progress is not None:
            progress.stop()
        sys.stderr.write("forced exit\n")
        sys.stderr.flush()
        os._exit(EXIT_CANCELLED)

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
        installed = True
    except (NotImplementedError, RuntimeError):  # no signal support in this loop (Windows)
        installed = False
    try:
        return await execution.run()
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)


def _note(text: str, progress: Any) -> None:
    if progress is not None:
        progress.message(text, style="yellow")
    else:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _write_stdout(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (| head); do not print a traceback about it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _ms(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def summary_line(result: dict[str, Any]) -> str:
    """One line about how an execution ended: ``✔ success 5 nodes in 123 ms``."""
    status = result.get("status")
    nodes = result.get("nodes") or {}
    took = _ms(float(result.get("duration_ms") or 0))
    if status == "success":
        skipped = sum(1 for r in nodes.values() if r.get("status") == "skipped")
        extra = f" ({skipped} skipped)" if skipped else ""
        return f"✔ success {_plural(len(nodes), 'node')}{extra} in {took}"
    if status == "cancelled":
        done = sum(1 for r in nodes.values() if r.get("status") == "success")
        return f"■ cancelled after {took} ({done} of {_plural(len(nodes), 'node')} done)"
    error = result.get("error") or {}
    message = str(error.get("message") or "failed")
    node = error.get("node")
    where = f" at node {node!r}" if node else ""
    return f"✖ error{where}: {message}"


def _print_summary(result: dict[str, Any], wf: Workflow, *, fancy: bool) -> None:
    line = summary_line(result)
    status = result.get("status")
    if fancy:
        from rich.text import Text

        style = {"success": "bold green", "cancelled": "bold magenta"}.get(str(status), "bold red")
        _console(stderr=True).print(Text(line, style=style))
    elif status != "success":
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _print_pretty(result: dict[str, Any], wf: Workflow) -> None:
    from rich.json import JSON
    from rich.table import Table
    from rich.text import Text

    from ._progress import STYLES

    console = _console(stderr=False)
    console.print(Text(f"{wf.name} · {result.get('status')}", style="bold"))
    console.print(JSON(_dumps(result.get("output"))))
    table = Table(title="nodes", title_justify="left")
    for col in ("node", "block", "status", "port", "attempts", "time"):
        table.add_column(col, justify="right" if col in ("attempts", "time") else "left")
    for nid, r in (result.get("nodes") or {}).items():
        node = wf.nodes.get(nid)
        status = str(r.get("status"))
        table.add_row(
            nid,
            node.type if node is not None else "",
            Text(status, style=STYLES.get(status, "")),
            str(r.get("port") or ""),
            str(r.get("attempts", "")),
            _ms(float(r.get("duration_ms") or 0)),
        )
    console.print(table)
    error = result.get("error")
    if isinstance(error, dict):
        # The one-line summary goes to stderr; here the whole error, with the user's stack.
        where = f" at node {error['node']!r}" if error.get("node") else ""
        console.print(
            Text(f"error{where}: {error.get('type')}: {error.get('message')}", style="red")
        )
        details = error.get("details") or {}
        stack = details.get("stack") if isinstance(details, dict) else None
        if stack:
            console.print(Text(str(stack).rstrip(), style="dim red"))


# -- validate ---------------------------------------------------------------------------------


@main.command(
    epilog="""\b
Examples:
  conv3n validate hello.conv3n.json
  conv3n validate workflows/*.conv3n.json
  conv3n validate --json a.conv3n.json b.conv3n.json

\b
Exit status: 0 when every file is valid, 2 otherwise.""",
)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"FILE": [{"path", "node", "key", "reason"}, ...]} (an empty list when valid).',
)
@click.pass_context
def validate(ctx: click.Context, files: tuple[str, ...], as_json: bool) -> None:
    """Check workflow FILES: structure, block types and configs, edges, ports, cycles, expressions.

    Every problem is reported at once, each with its JSON path and a one-line reason.
    """
    from .errors import WorkflowValidationError
    from .model import load

    report: dict[str, list[Problem]] = {}
    for file in files:
        try:
            load(file)
            report[file] = []
        except WorkflowValidationError as exc:
            report[file] = exc.problems
    bad = any(report.values())
    if as_json:
        _write_stdout(_dumps({f: [p.to_dict() for p in ps] for f, ps in report.items()}) + "\n")
    else:
        tty = _isatty(sys.stdout)
        for file, problems in report.items():
            if problems:
                _print_problems(file, problems, sys.stdout)
            elif tty:
                from rich.text import Text

                _console(stderr=False).print(Text.assemble(("✔ ", "green"), file))
            else:
                _write_stdout(f"✔ {file}\n")
    ctx.exit(EXIT_USAGE if bad else EXIT_OK)


# -- blocks -------------------------------------------------------------------------------------


@main.command(
    epilog="""\b
Examples:
  conv3n blocks
  conv3n blocks --json | jq '.[].type'""",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a JSON list of the blocks with their config schemas and ports.",
)
def blocks(as_json: bool) -> None:
    """List the known block types: built-in ones and those installed by plugins."""
    from .schema import load_blocks

    loaded, errors = load_blocks()
    for block_type, reason in errors.items():
        click.echo(f"warning: block {block_type!r} {reason}", err=True)
    if as_json:
        items = [
            {
                "type": b.type,
                "title": b.title,
                "description": b.description,
                "icon": b.icon,
                "ports": list(b.ports),
                "config_schema": b.config_schema,
            }
            for b in loaded.values()
        ]
        _write_stdout(_dumps(items) + "\n")
        return
    from rich.table import Table

    table = Table(title=f"{_plural(len(loaded), 'block')}", title_justify="left")
    table.add_column("type", style="cyan", no_wrap=True)
    table.add_column("title", style="bold")
    table.add_column("ports", style="green")
    table.add_column("description")
    for b in loaded.values():
        table.add_row(b.type, b.title, ", ".join(b.ports), b.description)
    _console(stderr=False).print(table)


# -- schema -------------------------------------------------------------------------------------


@main.command(
    epilog="""\b
Examples:
  conv3n schema > conv3n.schema.json
  conv3n schema --block std/http_request

\b
VS Code (settings.json):
  "json.schemas": [{"fileMatch": ["*.conv3n.json"],
                    "url": "./conv3n.schema.json"}]""",
)
@click.option(
    "--block", "block_type", metavar="TYPE", help="Print only the config schema of this block type."
)
def schema(block_type: str | None) -> None:
    """Print the JSON Schema (draft 2020-12) of the workflow format, for editors and linters.

    Node configs are checked per block type, so an editor flags a bad key of a block while the
    file is typed.
    """
    from .schema import block_config_schema, load_blocks, workflow_schema

    if block_type is not None:
        loaded, errors = load_blocks([block_type])
        if block_type not in loaded:
            raise click.BadParameter(errors[block_type], param_hint="'--block'")
        _write_stdout(_dumps(block_config_schema(loaded[block_type])) + "\n")
        return
    loaded, errors = load_blocks()
    for name, reason in errors.items():
        click.echo(f"warning: block {name!r} {reason}; left out of the schema", err=True)
    _write_stdout(_dumps(workflow_schema(loaded)) + "\n")


# -- config -------------------------------------------------------------------------------------


@main.command(
    epilog="""\b
Examples:
  conv3n config
  conv3n config --env prod
  CONV3N_PORT=9000 conv3n config --json | jq .settings.port

\b
Sources, lowest to highest: defaults, conv3n.toml [default], its
[env.NAME] table (NAME from --env or CONV3N_ENV, default dev), CONV3N_*
variables. The file is $CONV3N_CONFIG, else ./conv3n.toml if present.

\b
Exit status: 0 when the settings are valid, 2 otherwise.""",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"environment", "config_file", "settings": {NAME: {"value", "source", ...}}}.',
)
@click.option(
    "--env",
    "environment",
    metavar="NAME",
    help="The environment to show (dev, staging, prod); overrides CONV3N_ENV.",
)
@click.pass_context
def config(ctx: click.Context, as_json: bool, environment: str | None) -> None:
    """Show the effective settings, where each comes from, with secrets masked."""
    from .settings import SettingsError, resolve_settings

    try:
        resolved = resolve_settings(environment=environment)
    except SettingsError as exc:
        sys.stderr.write(f"{exc}\n")
        ctx.exit(EXIT_USAGE)
    report = resolved.to_dict()
    if as_json:
        _write_stdout(_dumps(report) + "\n")
        return
    file = report["config_file"] or "none"
    head = f"environment {report['environment']} · file {file}"
    rows = [(name, _dumps(r["value"]), r["source"]) for name, r in report["settings"].items()]
    if not _isatty(sys.stdout):
        _write_stdout(head + "\n" + "".join(f"{n} = {v}  ({s})\n" for n, v, s in rows))
        return
    from rich.table import Table

    table = Table(title=head, title_justify="left")
    table.add_column("setting", style="cyan", no_wrap=True)
    table.add_column("value", style="bold")
    table.add_column("source", style="green")
    for name, value, source in rows:
        table.add_row(name, value, source)
    _console(stderr=False).print(table)


# -- store commands (workflows, history, show, retry, prune): in their own modules -------------


class _LazyCommand(click.Command):
    """A command whose module is imported only when it runs (or shows its own --help)."""

    def __init__(self, name: str, target: str, short_help: str) -> None:
        super().__init__(name, short_help=short_help, add_help_option=False)
        self._target = target

    def _load(self) -> click.Command:
        import importlib

        module, _, attr = self._target.partition(":")
        command = getattr(importlib.import_module(module, __package__), attr)
        assert isinstance(command, click.Command)
        return command

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        return self._load().make_context(info_name, args, parent, **extra)


for _name, _target, _help in (
    ("workflows", "._cli_store:workflows", "List, add and remove workflows saved in the store."),
    ("history", "._cli_executions:history", "List executions recorded in the store."),
    ("show", "._cli_executions:show", "Show one recorded execution with its node runs."),
    ("retry", "._cli_executions:retry", "Re-run a failed execution from its failed node."),
    ("prune", "._cli_executions:prune", "Delete old executions from the store."),
):
    main.add_command(_LazyCommand(_name, _target, _help))

# -- serve --------------------------------------------------------------------------------------


@main.command(
    epilog="""\b
Examples:
  conv3n serve
  conv3n serve --host 0.0.0.0 --port 8080 --workers 4
  CONV3N_DATABASE_URL=postgresql://u:p@db/conv3n conv3n serve --env prod

\b
The store is CONV3N_DATABASE_URL (default sqlite:///./conv3n.db). API
docs at /docs, OpenAPI at /openapi.json, metrics at /metrics.""",
)
@click.option("--host", default=None, metavar="ADDRESS", help="Address to listen on [127.0.0.1].")
@click.option(
    "--port", type=int, default=None, metavar="PORT", help="TCP port (0: any free one) [8787]."
)
@click.option(
    "--workers",
    type=int,
    default=None,
    metavar="N",
    help="Worker processes running executions; 0 runs them in this process [CPU count].",
)
@click.option(
    "--env",
    "environment",
    metavar="NAME",
    help="Settings environment (dev, staging, prod); overrides CONV3N_ENV.",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    workers: int | None,
    environment: str | None,
) -> None:
    """Serve the HTTP API: run, save and watch workflows; prints the URL it listens on."""
    from .settings import SettingsError, load_settings

    try:
        settings = load_settings(
            environment=environment,
            overrides={"host": host, "port": port, "workers": workers},
        )
    except SettingsError as exc:
        sys.stderr.write(f"{exc}\n")
        ctx.exit(EXIT_USAGE)
    try:
        from .server.app import serve as run_server
    except ImportError as exc:
        sys.stderr.write(
            f"conv3n serve needs the server extra: pip install 'conv3n-jupyter[server]' ({exc})\n"
        )
        ctx.exit(EXIT_USAGE)

    def announce(line: str) -> None:
        click.echo(line)

    try:
        run_server(settings, announce=announce)
    except KeyboardInterrupt:  # Ctrl-C: the server has stopped cleanly already
        pass


# -- end serve ----------------------------------------------------------------------------------


if __name__ == "__main__":  # pragma: no cover
    main(prog_name="conv3n")
