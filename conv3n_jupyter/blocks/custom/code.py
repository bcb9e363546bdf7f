"""``custom/code``: runs the user's ``main(input, ctx)`` in a separate worker process.

The code defines ``def main(input, ctx)`` or ``async def main(input, ctx)``; whatever ``main``
returns (JSON only) is the node's data. ``ctx`` offers:

* ``ctx.params``, ``ctx.vars``: plain dicts (copies: changing ``vars`` here does not change
  the execution's variables; use ``std/set_var`` for that)
* ``ctx.node(id)``: the data of an upstream node
* ``ctx.log(*parts, level="info")``: a line in the node's logs (so is every ``print``)
* ``ctx.execution_id``, ``ctx.node_id``; ``ctx.secrets`` (empty for now)

    {"type": "custom/code", "config": {"code": "def main(input, ctx):\\n    return input['n'] * 2"}}

Errors come back as :class:`~conv3n_jupyter.errors.CodeError` typed ``SyntaxError``,
``ImportError``, ``RuntimeError`` or ``TimeoutError``, with the user's own line numbers and a
stack of the user's frames only. The workers come from the runtime's shared
:class:`~conv3n_jupyter.blocks.custom.python_pool.PythonPool` (``ctx.resource("python_pool")``).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

from ..._durations import parse_duration
from ...errors import BlockError, Problem
from ..base import Block, NodeContext
from .python_pool import PythonPool

DEFAULT_TIMEOUT = "30s"
DEFAULT_MEMORY_LIMIT_MB = 512
MIN_MEMORY_LIMIT_MB = 64
_NEEDS_BUN = ("typescript", "javascript")


def _needs_bun(language: str) -> str:
    return f"language {language!r} needs the Bun runtime, which is not available yet"


class Code(Block):
    type = "custom/code"
    title = "Code"
    description = (
        "Runs your Python `main(input, ctx)` in a separate worker process, with a time and a "
        "memory limit; its return value is the node's data and `print` goes to the logs."
    )
    icon = "λ"
    config_schema = {
        "type": "object",
        "properties": {
            "language": {
                "type": "string",
                "enum": ["python", "typescript", "javascript"],
                "default": "python",
                "description": "Language of `code`; only python runs for now.",
            },
            "code": {
                "type": "string",
                "description": (
                    "Source defining `def main(input, ctx)` (or `async def`); its return value "
                    "(JSON) is the node's data. Never treated as a template."
                ),
            },
            "timeout": {
                "type": ["number", "string"],
                "default": DEFAULT_TIMEOUT,
                "description": (
                    "Time limit of one call: milliseconds, or a duration such as '30s', '1m', "
                    "'200ms'. Past it the worker is killed and the node fails with TimeoutError."
                ),
            },
            "memory_limit_mb": {
                "type": "integer",
                "minimum": MIN_MEMORY_LIMIT_MB,
                "default": DEFAULT_MEMORY_LIMIT_MB,
                "description": "Address-space limit of the worker process, in MiB.",
            },
        },
        "required": ["code"],
        "additionalProperties": False,
    }
    opaque_paths = ("code",)

    @classmethod
    def check(cls, config: Mapping[str, Any], path: str) -> list[Problem]:
        """Refuse languages without a runtime, code that does not compile or lacks ``main``."""
        language = config.get("language", "python")
        if language in _NEEDS_BUN:
            return [Problem(path=f"{path}.language", reason=_needs_bun(language), key="language")]
        problems: list[Problem] = []
        code = config.get("code")
        if isinstance(code, str):
            reason = _check_python(code)
            if reason:
                problems.append(Problem(path=f"{path}.code", reason=reason, key="code"))
        timeout = config.get("timeout")
        if timeout is not None and not (isinstance(timeout, str) and "{{" in timeout):
            try:
                _timeout_seconds(timeout)
            except BlockError as exc:
                problems.append(Problem(path=f"{path}.timeout", reason=exc.message, key="timeout"))
        return problems

    async def run(self, ctx: NodeContext) -> Any:
        config = ctx.config
        language = config.get("language", "python")
        if language != "python":
            reason = _needs_bun(language) if language in _NEEDS_BUN else f"unknown {language!r}"
            raise BlockError(f"language: {reason}", block_type=self.type, retryable=False)
        code = config.get("code")
        if not isinstance(code, str):
            raise BlockError(
                f"code: expected the source as a string, got {type(code).__name__}",
                block_type=self.type,
                retryable=False,
            )
        timeout = _timeout_seconds(config.get("timeout", DEFAULT_TIMEOUT))
        memory = config.get("memory_limit_mb", DEFAULT_MEMORY_LIMIT_MB)
        if isinstance(memory, bool) or not isinstance(memory, int) or memory < MIN_MEMORY_LIMIT_MB:
            raise BlockError(
                f"memory_limit_mb: expected an integer of at least {MIN_MEMORY_LIMIT_MB}, "
                f"got {memory!r}",
                block_type=self.type,
                retryable=False,
            )
        pool: PythonPool = ctx.resource("python_pool", PythonPool)
        result = await pool.call(
            code,
            ctx.input,
            node_id=ctx.node_id,
            params=ctx.params,
            vars=ctx.vars,
            nodes=_upstream_data(ctx),
            execution_id=ctx.execution_id,
            timeout=timeout,
            memory_limit_mb=memory,
            cwd=ctx.files_root,
        )
        for level, message in result.logs:
            ctx.log(message, level=level)
        if result.error is not None:
            raise result.error
        return result.data


def _timeout_seconds(value: Any) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise BlockError(f"timeout: {exc}", block_type=Code.type, retryable=False) from exc
    if seconds <= 0:
        raise BlockError(
            f"timeout: {value!r} must be longer than zero", block_type=Code.type, retryable=False
        )
    return seconds


def _upstream_data(ctx: NodeContext) -> dict[str, Any]:
    """``{id: data}`` of the upstream results the engine gives as ``ctx.nodes``."""
    results = getattr(ctx, "nodes", None)
    if not isinstance(results, Mapping):
        return {}
    out: dict[str, Any] = {}
    for node_id, result in results.items():
        if isinstance(result, Mapping):
            out[node_id] = result.get("data")
        else:
            out[node_id] = getattr(result, "data", None)
    return out


def _check_python(code: str) -> str | None:
    """Why ``code`` cannot run (syntax, no usable ``main``), or None."""
    try:
        compile(code, "<node>", "exec", dont_inherit=True)
        tree = ast.parse(code, "<node>")
    except SyntaxError as exc:
        where = f"line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
        return f"{type(exc).__name__}: {exc.msg} ({where})"
    except ValueError as exc:  # null bytes in the source
        return f"SyntaxError: {exc}"
    main = _find_main(tree.body)
    if main is None:
        if _binds_main(tree):
            return None
        return "the code must define a top-level function main(input, ctx)"
    args = main.args
    positional = len(args.posonlyargs) + len(args.args)
    required = positional - len(args.defaults)
    kw_required = sum(1 for d in args.kw_defaults if d is None)
    if (positional < 2 and args.vararg is None) or required > 2 or kw_required:
        return f"main must take two arguments (input, ctx) (line {main.lineno})"
    return None


def _find_main(body: list[ast.stmt]) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    found = None
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name == "main":
            found = stmt
        elif isinstance(stmt, (ast.If, ast.Try, ast.With, ast.AsyncWith)):
            nested = [*getattr(stmt, "body", []), *getattr(stmt, "orelse", [])]
            nested += [*getattr(stmt, "finalbody", [])]
            for handler in getattr(stmt, "handlers", []):
                nested += handler.body
            found = _find_main(nested) or found
    return found


def _binds_main(tree: ast.Module) -> bool:
    """``main`` bound some other way at top level (``main = ...``, ``from x import main``)."""
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            if any((a.asname or a.name) == "main" for a in stmt.names):
                return True
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(t, ast.Name) and t.id == "main" for t in targets):
                return True
    return False
