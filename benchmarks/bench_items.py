"""Items: 10,000 items through ``std/transform`` (set + convert), then ``std/condition``.

The items come in as a run parameter; the transform sets a computed field per item
(``{{ $item.qty * 2 }}``) and a constant one, then converts ``price`` (text) to a number and
``id`` to text; the condition checks the list is not empty (``size($input) > 0``). The figure
is the in-process ``run()`` time, median of the runs after warm-up, with one :class:`Runtime`:
CPU time, judged against the target because other processes cannot inflate it, with the wall
time beside. Each node's own median ``duration_ms`` (wall) is printed too, to show where the
time goes.
"""

from __future__ import annotations

from typing import Any

from _harness import REF, Row, ameasure, check, cli, fmt_ratio, fmt_seconds, median, run_async

from conv3n_jupyter.engine import Runtime, run
from conv3n_jupyter.model import Workflow, load

ITEMS = 10_000
RUNS = 11
WARMUP = 2
LIMIT_S = 0.1
# Published n8n figure: per item through a similar set + IF workflow.
N8N_MS_PER_ITEM = 0.9
CONDITION = "size($input) > 0"


def items(n: int) -> list[dict[str, Any]]:
    return [
        {"id": i, "name": f"item {i}", "price": f"{i % 97}.50", "qty": i % 5 + 1} for i in range(n)
    ]


def workflow(condition: str = CONDITION) -> Workflow:
    return load(
        {
            "name": "items",
            "params": {"items": {"type": "array"}},
            "nodes": {
                "shape": {
                    "type": "std/transform",
                    "config": {
                        "input": "{{ $params.items }}",
                        "operations": [
                            {
                                "type": "set",
                                "values": {"total": "{{ $item.qty * 2 }}", "source": "bench"},
                            },
                            {"type": "convert", "fields": {"price": "number", "id": "string"}},
                        ],
                    },
                },
                "check": {
                    "type": "std/condition",
                    "depends_on": ["shape"],
                    "config": {"expression": condition},
                },
            },
        }
    )


async def _bench() -> list[Row]:
    wf, data = workflow(), items(ITEMS)
    durations: dict[str, list[float]] = {"shape": [], "check": []}
    async with Runtime() as rt:

        async def once() -> None:
            result = await run(wf, {"items": data}, runtime=rt)
            assert result["status"] == "success", result.get("error")
            assert result["nodes"]["check"]["port"] == "true"
            assert len(result["output"]) == ITEMS
            for nid, times in durations.items():
                times.append(result["nodes"][nid]["duration_ms"] / 1e3)

        (times,) = await ameasure(once, runs=RUNS, warmup=WARMUP)
    cpu, wall = times.cpu_median, times.wall_median
    per_item = cpu / ITEMS
    shape, cond = median(durations["shape"]), median(durations["check"])
    return [
        Row(
            f"items: {ITEMS:,} through transform (set+convert) → condition",
            f"{fmt_seconds(cpu)} (wall {fmt_seconds(wall)})",
            f"< {fmt_seconds(LIMIT_S)}",
            fmt_ratio(cpu / LIMIT_S),
            check(cpu < LIMIT_S),
            cpu,
            "s",
            {**times.as_dict(), "transform_wall_s": shape, "condition_wall_s": cond},
        ),
        Row(
            "  per item | wall of: transform node, condition node",
            f"{per_item * 1e6:.1f} µs | {fmt_seconds(shape)}, {fmt_seconds(cond)}",
            value=per_item * 1e6,
            unit="µs/item",
        ),
        Row(
            "  reference: n8n per item (published)",
            f"{N8N_MS_PER_ITEM} ms/item",
            ratio=f"ours {N8N_MS_PER_ITEM / 1e3 / per_item:.0f}x less",
            status=REF,
            value=N8N_MS_PER_ITEM * 1e3,
            unit="µs/item",
        ),
    ]


def main() -> list[Row]:
    return run_async(_bench())  # type: ignore[no-any-return]


if __name__ == "__main__":
    cli(main, "Items")
