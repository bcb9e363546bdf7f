"""``custom/code`` through the block contract, with real worker processes."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from conv3n_jupyter.blocks.custom.code import Code
from conv3n_jupyter.blocks.custom.python_pool import PythonPool
from conv3n_jupyter.errors import BlockError, CodeError
from tests.blocks.fakectx import FakeContext

PATH = "nodes.calc.config"


@pytest.fixture
async def pool() -> AsyncIterator[PythonPool]:
    async with PythonPool(max_workers=2) as pool:
        yield pool


def make_ctx(
    pool: PythonPool, code: str, input: Any = None, **kwargs: Any
) -> tuple[Code, FakeContext]:
    block = Code()
    config = {"code": textwrap.dedent(code), **kwargs.pop("config", {})}
    ctx = FakeContext(
        block, config, input, node_id="calc", resources={"python_pool": pool}, **kwargs
    )
    return block, ctx


async def run_code(pool: PythonPool, code: str, input: Any = None, **kwargs: Any) -> Any:
    block, ctx = make_ctx(pool, code, input, **kwargs)
    return await block.run(ctx)


async def run_error(pool: PythonPool, code: str, input: Any = None, **kwargs: Any) -> CodeError:
    with pytest.raises(CodeError) as info:
        await run_code(pool, code, input, **kwargs)
    return info.value


def check(code: str, **config: Any) -> list[Any]:
    return Code.check({"code": textwrap.dedent(code), **config}, PATH)


async def test_returns_data_and_sees_params_vars_and_upstream_nodes(pool: PythonPool) -> None:
    """main's return value is the node's data; ctx exposes params, vars, node(id) and ids."""
    code = """
        def main(input, ctx):
            return {
                "double": input["n"] * 2,
                "param": ctx.params["p"],
                "var": ctx.vars["v"],
                "up": ctx.node("fetch"),
                "ids": [ctx.node_id, ctx.execution_id],
                "secrets": ctx.secrets,
            }
    """
    data = await run_code(
        pool,
        code,
        {"n": 21},
        params={"p": "x"},
        vars={"v": 1},
        nodes={"fetch": {"data": {"status": 200}, "port": "success", "status": "success"}},
        execution_id="ex-1",
    )
    assert data == {
        "double": 42,
        "param": "x",
        "var": 1,
        "up": {"status": 200},
        "ids": ["calc", "ex-1"],
        "secrets": {},
    }


async def test_async_main_is_awaited(pool: PythonPool) -> None:
    """An ``async def main`` runs to completion on the worker's own event loop."""
    code = """
        import asyncio

        async def main(input, ctx):
            await asyncio.sleep(0.01)
            return [input, "done"]
    """
    assert await run_code(pool, code, 7) == [7, "done"]


async def test_print_and_ctx_log_become_node_logs(pool: PythonPool) -> None:
    """print() output and ctx.log lines reach ctx.log on the host, line by line, in order."""
    code = """
        import sys

        def main(input, ctx):
            print("hello", input)
            print("two\\nlines")
            ctx.log("from ctx", 1, level="debug")
            print("oops", file=sys.stderr)
            return None
    """
    block, ctx = make_ctx(pool, code, "you")
    assert await block.run(ctx) is None
    assert ctx.logs == [
        ("info", "hello you"),
        ("info", "two"),
        ("info", "lines"),
        ("debug", "from ctx 1"),
        ("warning", "oops"),
    ]


async def test_vars_changed_by_the_code_are_not_sent_back(pool: PythonPool) -> None:
    """ctx.vars is a copy: the execution's variables do not change."""
    code = """
        def main(input, ctx):
            ctx.vars["v"] = 99
            return ctx.vars["v"]
    """
    variables = {"v": 1}
    assert await run_code(pool, code, vars=variables) == 99
    assert variables == {"v": 1}


def test_syntax_error_is_reported_at_validation_with_the_users_line() -> None:
    """check() compiles the code and names the key, line and column of a syntax error."""
    problems = check(
        """
        def main(input, ctx):
            x = (1,
            return x
        """
    )
    assert len(problems) == 1
    problem = problems[0]
    assert problem.path == f"{PATH}.code"
    assert problem.key == "code"
    assert problem.reason.startswith("SyntaxError:")
    assert "line 3" in problem.reason


def test_valid_code_has_no_problems() -> None:
    """Well-formed code with a two-argument main (sync or async) passes validation."""
    assert check("def main(input, ctx):\n    return 1\n") == []
    assert check("async def main(input, ctx, *rest):\n    return 1\n") == []
    assert check("from helpers import main\n") == []


def test_missing_or_misshapen_main_is_a_validation_problem() -> None:
    """Code without a top-level main, or whose main cannot take (input, ctx), is refused."""
    (missing,) = check("def handler(input, ctx):\n    return 1\n")
    assert "define a top-level function main(input, ctx)" in missing.reason
    (nested,) = check("class A:\n    def main(self, input, ctx):\n        return 1\n")
    assert "top-level" in nested.reason
    (arity,) = check("def main(input):\n    return 1\n")
    assert "two arguments" in arity.reason


def test_typescript_is_refused_until_bun_is_available() -> None:
    """typescript/javascript fail validation with a clear reason rather than falling back."""
    (problem,) = Code.check({"language": "typescript", "code": "x"}, PATH)
    assert problem.path == f"{PATH}.language"
    assert (
        problem.reason == "language 'typescript' needs the Bun runtime, which is not available yet"
    )


async def test_typescript_run_raises_a_non_retryable_error(pool: PythonPool) -> None:
    """Reaching run() with language javascript raises a BlockError no retry can fix."""
    block, ctx = make_ctx(pool, "x", config={"language": "javascript"})
    with pytest.raises(BlockError, match="Bun runtime") as info:
        await block.run(ctx)
    assert info.value.retryable is False


def test_bad_timeout_is_a_validation_problem() -> None:
    """An unreadable or zero timeout is reported at the timeout key."""
    (problem,) = check("def main(input, ctx):\n    return 1\n", timeout="soon")
    assert problem.path == f"{PATH}.timeout"
    (zero,) = check("def main(input, ctx):\n    return 1\n", timeout=0)
    assert "longer than zero" in zero.reason


async def test_syntax_error_at_run_has_the_users_line(pool: PythonPool) -> None:
    """Code that skipped validation fails as a SyntaxError at the user's line, not retryable."""
    error = await run_error(pool, "def main(input, ctx):\n    return 1 +\n")
    assert error.error_type == "SyntaxError"
    assert error.line == 2
    assert error.retryable is False
    assert 'File "<code:calc>", line 2' in error.user_stack
    assert "return 1 +" in error.user_stack


async def test_missing_main_at_run(pool: PythonPool) -> None:
    """Running code without main fails with a clear, non-retryable error."""
    error = await run_error(pool, "x = 1\n")
    assert "defines no top-level function main(input, ctx)" in error.message
    assert error.retryable is False


async def test_import_of_a_missing_module_is_an_import_error(pool: PythonPool) -> None:
    """A missing module is an ImportError at the user's line, which a retry cannot fix."""
    code = """
        def main(input, ctx):
            import no_such_module_here
            return 1
    """
    error = await run_error(pool, code)
    assert error.error_type == "ImportError"
    assert error.retryable is False
    assert error.message == ("ModuleNotFoundError: No module named 'no_such_module_here' (line 3)")
    assert "<frozen" not in error.user_stack


async def test_runtime_error_shows_only_the_users_frames(pool: PythonPool) -> None:
    """An exception keeps its class name and the user's line; the stack has no worker frames."""
    code = """
        def helper(x):
            return x / 0

        def main(input, ctx):
            return helper(input)
    """
    error = await run_error(pool, code, 1)
    assert error.error_type == "RuntimeError"
    assert error.retryable is True
    assert error.line == 3
    assert error.message == "ZeroDivisionError: division by zero (line 3)"
    assert "node 'calc' (custom/code)" in str(error)
    assert error.user_stack == (
        "Traceback (most recent call last):\n"
        '  File "<code:calc>", line 6, in main\n'
        "    return helper(input)\n"
        '  File "<code:calc>", line 3, in helper\n'
        "    return x / 0\n"
        "ZeroDivisionError: division by zero\n"
    )
    assert "_python_worker" not in error.user_stack
    assert error.details["line"] == 3


async def test_non_json_return_names_the_type_and_path(pool: PythonPool) -> None:
    """A return value JSON cannot hold fails with its type and JSON path."""
    code = """
        import datetime

        def main(input, ctx):
            return {"rows": [1, {"when": datetime.date(2024, 1, 2)}]}
    """
    error = await run_error(pool, code)
    assert error.message == "main returned a value that is not JSON: date at path $.rows[1].when"
    assert error.retryable is False
    nan = await run_error(pool, "def main(input, ctx):\n    return [float('nan')]\n")
    assert nan.message == "main returned a value that is not JSON: float nan at path $[0]"


async def test_timeout_from_config_names_the_limit(pool: PythonPool) -> None:
    """The config's timeout (a duration string) stops an endless loop with a TimeoutError."""
    code = """
        def main(input, ctx):
            print("started")
            while True:
                pass
    """
    block, ctx = make_ctx(pool, code, config={"timeout": "300ms"})
    with pytest.raises(CodeError) as info:
        await block.run(ctx)
    error = info.value
    assert error.error_type == "TimeoutError"
    assert error.retryable is True
    assert "timeout of 300ms" in error.message
    assert error.line in (4, 5)
    assert ctx.logs == [("info", "started")]
    assert await run_code(pool, "def main(input, ctx):\n    return 'next'\n") == "next"


async def test_template_braces_in_code_are_left_verbatim(pool: PythonPool) -> None:
    """The code key is opaque: ``{{ }}`` inside it is the user's text, not a template."""
    assert Code.opaque_paths == ("code",)
    code = """
        def main(input, ctx):
            return "{{ $input.secret }}" + str({1: {2}})
    """
    assert await run_code(pool, code, {"secret": "s"}) == "{{ $input.secret }}{1: {2}}"


async def test_code_runs_in_the_files_root(pool: PythonPool, tmp_path: Path) -> None:
    """The worker's working folder is ctx.files_root."""
    code = """
        import os
        from pathlib import Path

        def main(input, ctx):
            Path("out.txt").write_text("hi")
            return os.getcwd()
    """
    assert await run_code(pool, code, files_root=tmp_path) == str(tmp_path)
    assert (tmp_path / "out.txt").read_text() == "hi"


async def test_worker_environment_holds_no_parent_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Variables such as CONV3N_* or *_TOKEN do not reach user code; PATH does."""
    monkeypatch.setenv("CONV3N_SECRET_KEY", "s3cret")
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    code = """
        import os

        def main(input, ctx):
            return sorted(os.environ)
    """
    async with PythonPool(max_workers=1) as own_pool:
        names = await run_code(own_pool, code)
    assert "PATH" in names
    assert "CONV3N_SECRET_KEY" not in names
    assert "GITHUB_TOKEN" not in names


async def test_bad_memory_limit_is_refused(pool: PythonPool) -> None:
    """memory_limit_mb below the minimum fails before any worker starts."""
    block, ctx = make_ctx(
        pool, "def main(input, ctx):\n    return 1\n", config={"memory_limit_mb": 1}
    )
    with pytest.raises(BlockError, match="memory_limit_mb") as info:
        await block.run(ctx)
    assert info.value.retryable is False
    assert pool.pids() == []
