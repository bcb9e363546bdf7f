"""``custom/code``: the cost of one call to a warm worker, and of a cold worker's start.

* warm: a chain of 20 ``custom/code`` nodes (``return {"n": input["n"] + 1}``) run with one
  :class:`Runtime` whose worker is already up; per node, beside the same chain of
  ``std/transform`` nodes doing the same in-process, so the difference is what leaving the
  process costs (serialising, the pipe, the worker's own work).
* cold: one ``custom/code`` node with a new :class:`Runtime` each time, so the call starts a
  worker process first (closing the runtime is not timed).

Reported only: there is no target for these.
"""

from __future__ import annotations

import time
from typing import Any

from _harness import Row, ameasure, cli, fmt_seconds, median, run_async, spread
from bench_engine_overhead import transform_chain

from conv3n_jupyter.engine import Runtime, run
from conv3n_jupyter.model import Workflow, load

CHAIN = 20
WARM_RUNS = 15
COLD_RUNS = 7
CODE = 'def main(input, ctx):\n    return {"n": input["n"] + 1}\n'


def code_chain(n: int) -> Workflow:
    nodes: dict[str, Any] = {}
    for i in range(n):
        node: dict[str, Any] = {"type": "custom/code", "config": {"code": CODE}}
        if i:
            node["depends_on"] = [f"c{i - 1}"]
        nodes[f"c{i}"] = node
    return load({"name": "code_chain", "nodes": nodes})


async def _bench() -> list[Row]:
    chain, tchain, single = code_chain(CHAIN), transform_chain(CHAIN), code_chain(1)
    trigger = {"n": 0}
    async with Runtime() as rt:

        async def engine(wf: Workflow) -> None:
            result = await run(wf, runtime=rt, trigger=trigger)
            assert result["status"] == "success", result.get("error")
            assert result["output"] == {"n": len(wf.nodes)}, result["output"]

        code_t, tr_t = await ameasure(
            lambda: engine(chain), lambda: engine(tchain), runs=WARM_RUNS, warmup=2
        )
    # Wall time: the work is shared with a worker process.
    warm, inproc = code_t.wall_median / CHAIN, tr_t.wall_median / CHAIN

    cold_t = []
    for i in range(COLD_RUNS + 1):
        rt = Runtime()
        try:
            t0 = time.perf_counter()
            result = await run(single, runtime=rt, trigger=trigger)
            elapsed = time.perf_counter() - t0
            assert result["status"] == "success", result.get("error")
        finally:
            await rt.aclose()
        if i:  # the first start also pays for loading the block's modules
            cold_t.append(elapsed)
    cold = median(cold_t)
    return [
        Row(
            "code: custom/code call, warm worker (per node in a chain)",
            fmt_seconds(warm),
            value=warm,
            unit="s",
            extra={"code_chain": code_t.as_dict(), "transform_chain": tr_t.as_dict()},
        ),
        Row(
            "  same step in-process (std/transform) | cost of the worker",
            f"{fmt_seconds(inproc)} | {fmt_seconds(warm - inproc)}",
            value=warm - inproc,
            unit="s",
        ),
        Row(
            "code: custom/code, cold worker start + first call",
            fmt_seconds(cold),
            value=cold,
            unit="s",
            extra={"cold_s": spread(cold_t)},
        ),
    ]


def main() -> list[Row]:
    return run_async(_bench())  # type: ignore[no-any-return]


if __name__ == "__main__":
    cli(main, "custom/code")
