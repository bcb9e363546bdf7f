"""IPython magics: ``%conv3n run | validate | blocks`` and ``%%conv3n_code``.

    %load_ext conv3n_jupyter
    r = %conv3n run templates/hello.conv3n.json -p name=Ada
    await r                      # the finished run; the live graph was displayed above
    %conv3n validate templates/*.conv3n.json

    %%conv3n_code wf double --after fetch --save
    def main(input, ctx):
        return {"n": input["n"] * 2}

Mistakes (a bad option, an invalid workflow, code without ``main``) are reported as one
``UsageError`` message, without a traceback.
"""

from __future__ import annotations

import argparse
import ast
import glob
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from ..errors import Conv3nError, WorkflowValidationError

if TYPE_CHECKING:
    from ..model import Workflow

__all__ = ["Conv3nMagics", "load_ipython_extension", "unload_ipython_extension"]


class _HelpShown(Exception):
    """``-h`` printed the help: nothing else to do."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports mistakes as ``UsageError`` instead of exiting the kernel."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}\n{self.format_usage().rstrip()}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            print(message.rstrip())
        raise _HelpShown


def _line_parser() -> _Parser:
    parser = _Parser(prog="%conv3n", description="Run and check conv3n workflows.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="start a run; returns the run handle (await it)")
    run.add_argument("file")
    run.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--params-file", metavar="FILE", help="a JSON object or KEY=VALUE lines")
    check = sub.add_parser("validate", help="check workflow files (globs allowed)")
    check.add_argument("files", nargs="+")
    sub.add_parser("blocks", help="list the known block types")
    return parser


def _cell_parser() -> _Parser:
    parser = _Parser(
        prog="%%conv3n_code",
        description="Write the cell as the Python code of a custom/code node.",
    )
    parser.add_argument("workflow", help="a Workflow variable, or a workflow file (then saved)")
    parser.add_argument("node", help="the custom/code node (created when missing)")
    parser.add_argument("--after", metavar="ID", help="connect the node after this one")
    parser.add_argument("--save", action="store_true", help="save the workflow to its file")
    return parser


def _parse(parser: _Parser, line: str) -> argparse.Namespace:
    try:
        return parser.parse_args(shlex.split(line))
    except ValueError as exc:  # unbalanced quotes
        raise UsageError(f"{parser.prog}: {exc}") from None


def _load(path: str) -> Workflow:
    from ..model import load

    try:
        return load(path)
    except WorkflowValidationError as exc:
        raise UsageError(str(exc)) from None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _check_code(node_id: str, code: str) -> None:
    """Refuse code that does not compile or binds no top-level ``main``, naming the node."""
    try:
        compile(code, f"<node {node_id}>", "exec", dont_inherit=True)
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise UsageError(
            f"node {node_id!r}: {type(exc).__name__}: {exc.msg} (line {exc.lineno})"
        ) from None
    except ValueError as exc:  # null bytes
        raise UsageError(f"node {node_id!r}: {exc}") from None
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name == "main":
            return
        targets = stmt.targets if isinstance(stmt, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == "main" for t in targets):
            return
        if isinstance(stmt, (ast.Import, ast.ImportFrom)) and any(
            (a.asname or a.name) == "main" for a in stmt.names
        ):
            return
    raise UsageError(
        f"node {node_id!r}: the cell must define a top-level function main(input, ctx)"
    )


@magics_class
class Conv3nMagics(Magics):
    """The ``%conv3n`` line magic and the ``%%conv3n_code`` cell magic."""

    @line_magic
    def conv3n(self, line: str) -> Any:
        """Run (``run FILE -p k=v``), check (``validate FILES``) or list blocks (``blocks``)."""
        try:
            args = _parse(_line_parser(), line)
        except _HelpShown:
            return None
        if args.command == "run":
            return self._run(args, line)
        if args.command == "validate":
            self._validate(args.files)
        else:
            self._blocks()
        return None

    def _run(self, args: argparse.Namespace, line: str) -> Any:
        from IPython.display import display

        wf = _load(args.file)
        params = _params(wf, args.param, args.params_file)
        try:
            run = wf.run(params)
        except WorkflowValidationError as exc:  # a parameter of the wrong type, or missing
            raise UsageError(str(exc)) from None
        if not self._echoed(line):
            show: Any = display  # untyped in IPython
            show(run)
        return run

    def _echoed(self, line: str) -> bool:
        """Whether IPython shows this magic's value itself (a bare last line of the cell).

        Displaying the run here as well would put two live graphs of one run on the page.
        """
        shell: Any = self.shell
        if shell is None or getattr(shell, "ast_node_interactivity", "") == "none":
            return False
        try:
            tree = ast.parse(shell.history_manager.input_hist_parsed[-1])
        except (AttributeError, IndexError, SyntaxError, ValueError):
            return False
        last = tree.body[-1] if tree.body else None
        if not (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)):
            return False
        call = last.value
        args = [a.value for a in call.args if isinstance(a, ast.Constant)]
        ours = (
            isinstance(call.func, ast.Attribute)
            and call.func.attr == "run_line_magic"
            and len(args) == 2
            and args[0] == "conv3n"
            # The source holds the line before $var / {expr} expansion.
            and (args[1] == line or any(c in str(args[1]) for c in "${"))
        )
        return ours and not bool(shell.displayhook.quiet())

    def _validate(self, patterns: list[str]) -> None:
        from ..model import load

        # glob.glob, not Path.glob: the pattern may be absolute, as in a shell.
        files = [f for p in patterns for f in (sorted(glob.glob(p)) or [p])]  # noqa: PTH207
        for file in files:
            try:
                wf = load(file)
            except WorkflowValidationError as exc:
                print(f"{file}: {_plural(len(exc.problems), 'problem')}")
                for p in exc.problems:
                    print(f"  {p.path}: {p.reason}" if p.path else f"  {p.reason}")
                continue
            nodes, edges = _plural(len(wf.nodes), "node"), _plural(len(wf.all_edges), "edge")
            print(f"{file}: valid: {nodes}, {edges}")

    def _blocks(self) -> None:
        from ..schema import load_blocks

        loaded, errors = load_blocks()
        width = max((len(t) for t in loaded), default=4)
        for b in loaded.values():
            print(f"{b.type:<{width}}  {b.title}  (ports: {', '.join(b.ports)})")
        for block_type, reason in errors.items():
            print(f"warning: block {block_type!r} {reason}")

    @cell_magic
    def conv3n_code(self, line: str, cell: str) -> None:
        """Write the cell as the Python code of ``custom/code`` node NODE of workflow WF.

        A missing node is created (after ``--after``); an existing one keeps its other config,
        and ``--after`` then adds the link if it is missing (a second edit). WF is a Workflow
        variable, or a workflow file, which is then loaded, edited and saved.
        """
        try:
            args = _parse(_cell_parser(), line)
        except _HelpShown:
            return
        wf, from_file = self._workflow(args.workflow)
        node_id: str = args.node
        code = cell.strip("\n").rstrip() + "\n"
        _check_code(node_id, code)
        try:
            what = _write_code(wf, node_id, code, args.after)
            if args.save or from_file:
                what += f"; saved {wf.save()}"
        except (Conv3nError, OSError) as exc:
            raise UsageError(str(exc)) from None
        print(what)

    def _workflow(self, name: str) -> tuple[Workflow, bool]:
        """The Workflow named ``name`` in the user's namespace, or loaded from file ``name``."""
        from ..model import Workflow

        namespace = self.shell.user_ns if self.shell is not None else {}
        if name in namespace:
            value = namespace[name]
            if isinstance(value, Workflow):
                return value, False
            raise UsageError(f"{name!r} is a {type(value).__name__}, not a Workflow")
        if Path(name).is_file():
            return _load(name), True
        raise UsageError(f"{name!r} is neither a Workflow variable nor a workflow file")


def _write_code(wf: Workflow, node_id: str, code: str, after: str | None) -> str:
    """Create or update the node; one line saying what changed."""
    lines = _plural(code.count("\n"), "line")
    node = wf.nodes.get(node_id)
    if node is None:
        wf.add(node_id, "custom/code", {"code": code}, after=after)
        where = f" after {after!r}" if after else ""
        return f"added node {node_id!r} (custom/code, {lines}){where} to {wf.name!r}"
    if node.type != "custom/code":
        raise UsageError(f"node {node_id!r} is a {node.type} node, not custom/code")
    config = {**node.config, "code": code}
    if "language" in config:
        config["language"] = "python"
    changed = config != node.config
    if changed:
        wf.configure(node_id, config)
    what = f"{'updated' if changed else 'kept'} the code of node {node_id!r} ({lines})"
    if after and not any(e.source == after and e.target == node_id for e in wf.all_edges):
        wf.connect(after, node_id)
        what += f", connected after {after!r}"
    return f"{what} in {wf.name!r}"


def _params(wf: Workflow, pairs: list[str], params_file: str | None) -> dict[str, Any]:
    """Parameters as the CLI reads them: typed by the workflow's declarations."""
    import click

    from ..cli import _read_params_file, coerce_param

    def coerce(name: str, raw: str) -> Any:
        declared = wf.params.get(name)
        return coerce_param(raw, None if declared is None else declared.get("type", "string"))

    try:
        params = _read_params_file(params_file, wf) if params_file else {}
    except click.ClickException as exc:
        raise UsageError(f"--params-file: {exc.message}") from None
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"-p: expected KEY=VALUE, got {pair!r}")
        params[key.strip()] = coerce(key.strip(), raw)
    return params


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (``%load_ext conv3n_jupyter``)."""
    ipython.register_magics(Conv3nMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the magics again (``%unload_ext conv3n_jupyter``)."""
    magics = ipython.magics_manager.magics
    magics["line"].pop("conv3n", None)
    magics["cell"].pop("conv3n_code", None)
    ipython.magics_manager.registry.pop(Conv3nMagics.__name__, None)
