"""The engine with the real blocks: code workers, loop bodies, variables, files, transform."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from conv3n_jupyter.engine import Runtime, run
from conv3n_jupyter.model import load


def code(source: str, **config: Any) -> dict[str, Any]:
    return {"type": "custom/code", "config": {"code": source, **config}}


async def test_code_node_reads_input_params_and_upstream_nodes(tmp_path: Path) -> None:
    wf = load(
        {
            "name": "code",
            "params": {"factor": {"type": "integer", "default": 3}},
            "nodes": {
                "numbers": {"type": "std/noop", "config": {"value": [1, 2, 3]}},
                "other": {"type": "std/noop", "config": {"value": {"offset": 100}}},
                "calc": {
                    **code(
                        "def main(input, ctx):\n"
                        "    print('computing', len(input['numbers']))\n"
                        "    off = ctx.node('other')['offset']\n"
                        "    return [n * ctx.params['factor'] + off for n in input['numbers']]\n"
                    ),
                    "depends_on": ["numbers", "other"],
                },
            },
        }
    )
    async with Runtime(files_root=tmp_path) as rt:
        r = await run(wf, runtime=rt)
    assert r["status"] == "success", r.get("error")
    assert r["output"] == [103, 106, 109]
    assert r["nodes"]["calc"]["logs"][0]["message"] == "computing 3"


async def test_code_error_reports_the_users_line() -> None:
    wf = load(
        {
            "name": "code",
            "nodes": {"boom": code("def main(input, ctx):\n    x = 1\n    return x / 0\n")},
        }
    )
    r = await run(wf)
    assert r["status"] == "error"
    assert r["error"]["details"]["error_type"] == "RuntimeError"
    assert r["error"]["details"]["line"] == 3
    assert "ZeroDivisionError" in r["error"]["message"]
    assert "_python_worker" not in r["error"]["details"]["stack"]


async def test_code_syntax_error_is_a_validation_problem() -> None:
    from conv3n_jupyter.model import validate

    problems = validate(
        {"name": "c", "nodes": {"bad": code("def main(input, ctx):\n    return (\n")}}
    )
    assert problems and problems[0].path == "nodes.bad.config.code"


async def test_code_timeout_kills_the_worker() -> None:
    wf = load(
        {
            "name": "spin",
            "nodes": {
                "spin": code(
                    "def main(input, ctx):\n    while True:\n        pass\n", timeout="300ms"
                )
            },
        }
    )
    started = time.perf_counter()
    r = await run(wf)
    assert time.perf_counter() - started < 3
    assert r["error"]["details"]["error_type"] == "TimeoutError"


async def test_loop_body_runs_a_sub_workflow_per_item_with_concurrency() -> None:
    body = {
        "nodes": {
            "wait": {"type": "std/delay", "config": {"duration": 100}},
            "shape": {
                "type": "std/noop",
                "config": {
                    "value": {
                        "id": "{{ $params.item.id }}",
                        "pos": "{{ $params.index }}",
                        "tag": "{{ $params.tag }}",
                    }
                },
                "depends_on": ["wait"],
            },
        }
    }
    wf = load(
        {
            "name": "loop",
            "nodes": {
                "items": {"type": "std/noop", "config": {"value": [{"id": i} for i in range(8)]}},
                "each": {
                    "type": "std/loop",
                    "config": {
                        "items": "$input",
                        "body": body,
                        "concurrency": 4,
                        "params": {"tag": "t-{{ $item.id }}"},
                    },
                    "depends_on": ["items"],
                },
            },
        }
    )
    started = time.perf_counter()
    r = await run(wf)
    elapsed = time.perf_counter() - started
    assert r["status"] == "success", r.get("error")
    assert [o["id"] for o in r["output"]] == list(range(8))
    assert r["output"][5] == {"id": 5, "pos": 5, "tag": "t-5"}
    assert 0.18 < elapsed < 0.6  # 8 bodies of 100 ms, 4 at a time: two waves


async def test_loop_expression_mode_filter_and_map() -> None:
    wf = load(
        {
            "name": "loop",
            "nodes": {
                "orders": {
                    "type": "std/noop",
                    "config": {"value": [{"total": t} for t in (5, 50, 500)]},
                },
                "big": {
                    "type": "std/loop",
                    "config": {
                        "items": "$input",
                        "filter": "$item.total > 10",
                        "map": "$item.total * 2",
                    },
                    "depends_on": ["orders"],
                },
            },
        }
    )
    r = await run(wf)
    assert r["output"] == [100, 1000]


async def test_variables_flow_between_nodes_and_into_expressions() -> None:
    wf = load(
        {
            "name": "vars",
            "nodes": {
                "set": {"type": "std/set_var", "config": {"key": "greeting", "value": "hello"}},
                "get": {
                    "type": "std/get_var",
                    "config": {"key": "greeting"},
                    "depends_on": ["set"],
                },
                "use": {
                    "type": "std/noop",
                    "config": {"value": "{{ $vars.greeting + ' world' }}"},
                    "depends_on": ["get"],
                },
            },
        }
    )
    r = await run(wf)
    assert r["nodes"]["get"]["data"] == "hello"
    assert r["output"] == "hello world"


async def test_file_write_then_read_inside_the_root(tmp_path: Path) -> None:
    wf = load(
        {
            "name": "files",
            "nodes": {
                "write": {
                    "type": "std/file",
                    "config": {
                        "path": "out/report.json",
                        "operation": "write",
                        "format": "json",
                        "content": {"ok": True},
                        "mkdirs": True,
                    },
                },
                "read": {
                    "type": "std/file",
                    "config": {"path": "out/report.json", "operation": "read", "format": "json"},
                    "depends_on": ["write"],
                },
                "escape": {
                    "type": "std/file",
                    "config": {"path": "{{ $params.p }}", "operation": "read"},
                    "on_error": "continue",
                },
            },
            "params": {"p": {"type": "string", "default": "../outside.txt"}},
        }
    )
    async with Runtime(files_root=tmp_path) as rt:
        r = await run(wf, runtime=rt)
    assert r["nodes"]["read"]["data"]["content"] == {"ok": True}
    assert (tmp_path / "out" / "report.json").exists()
    assert r["nodes"]["escape"]["port"] == "error"
    assert "outside" in r["nodes"]["escape"]["data"]["error"]["message"]


async def test_transform_pipeline_on_many_items() -> None:
    items = [{"name": f"p{i}", "price": str(i), "secret": "x"} for i in range(2000)]
    wf = load(
        {
            "name": "transform",
            "nodes": {
                "src": {"type": "std/noop", "config": {"value": items}},
                "shape": {
                    "type": "std/transform",
                    "config": {
                        "operations": [
                            {"type": "omit", "fields": ["secret"]},
                            {"type": "convert", "fields": {"price": "number"}},
                            {
                                "type": "set",
                                "values": {
                                    "double": "{{ double($item.price) * 2.0 }}",
                                    "source": "shop",
                                },
                            },
                            {"type": "filter", "expression": "$item.price >= 1990.0"},
                            {"type": "sort", "by": "price", "desc": True},
                        ]
                    },
                    "depends_on": ["src"],
                },
                "cheap": {
                    "type": "std/condition",
                    "config": {"expression": "size($input) == 10"},
                    "depends_on": ["shape"],
                },
            },
        }
    )
    r = await run(wf)
    assert r["status"] == "success", r.get("error")
    out = r["nodes"]["shape"]["data"]
    assert out[0] == {"name": "p1999", "price": 1999, "double": 3998.0, "source": "shop"}
    assert len(out) == 10
    assert r["nodes"]["cheap"]["port"] == "true"
    assert items[0]["secret"] == "x"  # the input was not mutated


async def test_delay_is_cancelled_at_once() -> None:
    from conv3n_jupyter.engine import Execution

    ex = Execution(
        load(
            {
                "name": "d",
                "nodes": {"wait": {"type": "std/delay", "config": {"duration": 10, "unit": "s"}}},
            }
        )
    )
    task = asyncio.ensure_future(ex.run())
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    ex.cancel()
    r = await task
    assert time.perf_counter() - started < 0.2
    assert r["status"] == "cancelled"
