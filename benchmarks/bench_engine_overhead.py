"""Engine overhead per node, in-process, against hand-written asyncio loops.

* (a) a chain of 200 ``std/noop`` nodes: ``run()`` time / 200, beside a plain loop that
  awaits the same ``Noop.run`` calls in order, each with a fresh minimal context; the
  overhead is the difference per node.
* (b) fan-out/fan-in of 1,000 nodes (one start → 998 parallel noops → one join), with
  ``max_concurrent_nodes`` 8 (the default) and 1000: ``run()`` time / 1000.
* (c) a chain of 200 ``std/transform`` nodes, each setting ``n`` to ``{{ $input.n + 1 }}``,
  beside a plain loop making the same ``Transform.run`` calls with the same compiled template
  evaluated in a fresh :class:`Scope` per node: the ratio engine / loop.

Everything runs in one event loop with one real :class:`Runtime`; workflows are loaded (and
validated) once, outside the timings, as a server or a notebook would. The work is all in this
process, so targets are judged on its CPU time (median of the runs), which other processes on
the machine cannot inflate; the wall-clock medians are printed beside.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from _harness import (
    REF,
    Row,
    ameasure,
    check,
    cli,
    fmt_ratio,
    paired_ratio,
    run_async,
)

from conv3n_jupyter.blocks.base import Output
from conv3n_jupyter.blocks.std.noop import Noop
from conv3n_jupyter.blocks.std.transform import Transform
from conv3n_jupyter.engine import Runtime, run
from conv3n_jupyter.expressions import Scope, compile_template, evaluate
from conv3n_jupyter.model import Workflow, load

CHAIN = 200
FAN = 1000
RUNS = 25
WARMUP = 3
LIMIT_CHAIN_OVERHEAD_US = 30.0
LIMIT_FAN_US = 40.0
LIMIT_TRANSFORM_RATIO = 3.0
TEMPLATE = "{{ $input.n + 1 }}"
N8N_MS_PER_NODE = 0.21  # published n8n figure, per node


# -- workflows ---------------------------------------------------------------------------------


def noop_chain(n: int) -> Workflow:
    nodes: dict[str, Any] = {"n0": {"type": "std/noop", "config": {"value": {"n": 0}}}}
    for i in range(1, n):
        nodes[f"n{i}"] = {"type": "std/noop", "depends_on": [f"n{i - 1}"]}
    return load({"name": "noop_chain", "nodes": nodes})


def fan_out_in(n: int, limit: int) -> Workflow:
    width = n - 2
    nodes: dict[str, Any] = {"start": {"type": "std/noop", "config": {"value": {"n": 0}}}}
    for i in range(width):
        nodes[f"w{i}"] = {"type": "std/noop", "depends_on": ["start"]}
    nodes["join"] = {"type": "std/noop", "depends_on": [f"w{i}" for i in range(width)]}
    return load({"name": "fan_out_in", "nodes": nodes, "config": {"max_concurrent_nodes": limit}})


def transform_chain(n: int) -> Workflow:
    op = {"type": "set", "values": {"n": TEMPLATE}}
    nodes: dict[str, Any] = {}
    for i in range(n):
        node: dict[str, Any] = {"type": "std/transform", "config": {"operations": [op]}}
        if i:
            node["depends_on"] = [f"t{i - 1}"]
        nodes[f"t{i}"] = node
    return load({"name": "transform_chain", "nodes": nodes})


# -- baselines: the same block calls without the engine ----------------------------------------


class MiniContext:
    """The least a block needs: config, input, and ``evaluate`` over one scope."""

    __slots__ = ("config", "input", "node_id", "scope")

    def __init__(self, node_id: str, config: dict[str, Any], data: Any) -> None:
        self.node_id = node_id
        self.config = config
        self.input = data
        self.scope: Scope | None = None

    def evaluate(self, compiled: Any, **extra: Any) -> Any:
        if self.scope is None:
            self.scope = Scope(input=self.input)
        return evaluate(compiled, self.scope, **extra)


def _data(out: Any) -> Any:
    return out.data if isinstance(out, Output) else out


async def loop_noop_chain(n: int) -> Any:
    block: Any = Noop()  # Any: MiniContext is not the engine's whole NodeContext
    data = await block.run(MiniContext("n0", {"value": {"n": 0}}, {}))
    for i in range(1, n):
        data = _data(await block.run(MiniContext(f"n{i}", {}, data)))
    return data


async def loop_transform_chain(n: int) -> Any:
    block: Any = Transform()
    config = {"operations": [{"type": "set", "values": {"n": compile_template(TEMPLATE)}}]}
    data: Any = {"n": 0}
    for i in range(n):
        data = _data(await block.run(MiniContext(f"t{i}", config, data)))
    return data


# -- the benchmark -----------------------------------------------------------------------------


def _us(seconds: float, n: int) -> str:
    return f"{seconds / n * 1e6:.1f}"


async def _bench() -> list[Row]:
    rows: list[Row] = []
    chain, tchain = noop_chain(CHAIN), transform_chain(CHAIN)
    fans = {limit: fan_out_in(FAN, limit) for limit in (8, FAN)}
    async with Runtime() as rt:

        async def engine(wf: Workflow, trigger: Any = None) -> dict[str, Any]:
            result = await run(wf, runtime=rt, trigger=trigger)
            assert result["status"] == "success", result.get("error")
            return result

        # (a) noop chain
        out = await engine(chain)
        assert out["output"] == {"n": 0} == await loop_noop_chain(CHAIN)
        eng, base = await ameasure(
            lambda: engine(chain), lambda: loop_noop_chain(CHAIN), runs=RUNS, warmup=WARMUP
        )
        e_s, b_s = eng.cpu_median / CHAIN, base.cpu_median / CHAIN
        overhead_us = (e_s - b_s) * 1e6
        rows.append(
            Row(
                f"engine: {CHAIN}-node noop chain, overhead per node",
                f"{overhead_us:.1f} µs",
                f"< {LIMIT_CHAIN_OVERHEAD_US:.0f} µs",
                fmt_ratio(overhead_us / LIMIT_CHAIN_OVERHEAD_US),
                check(overhead_us < LIMIT_CHAIN_OVERHEAD_US),
                overhead_us,
                "µs/node",
                {"engine": eng.as_dict(), "loop": base.as_dict()},
            )
        )
        rows.append(
            Row(
                "  µs/node engine | plain loop: CPU (wall)",
                f"{_us(eng.cpu_median, CHAIN)} | {_us(base.cpu_median, CHAIN)} "
                f"({_us(eng.wall_median, CHAIN)} | {_us(base.wall_median, CHAIN)})",
                ratio=fmt_ratio(e_s / b_s),
                value=e_s * 1e6,
                unit="µs/node",
            )
        )
        rows.append(
            Row(
                "  reference: n8n per node (published)",
                f"{N8N_MS_PER_NODE * 1e3:.0f} µs/node",
                ratio=f"ours {N8N_MS_PER_NODE / 1e3 / e_s:.0f}x less",
                status=REF,
                value=N8N_MS_PER_NODE * 1e3,
                unit="µs/node",
            )
        )

        # (b) fan-out / fan-in
        for limit, fan in fans.items():

            def run_fan(wf: Workflow = fan) -> Awaitable[dict[str, Any]]:
                return engine(wf)

            (times,) = await ameasure(run_fan, runs=RUNS, warmup=WARMUP)
            per_us = times.cpu_median / FAN * 1e6
            rows.append(
                Row(
                    f"engine: {FAN}-node fan-out/in, max_concurrent_nodes={limit}",
                    f"{per_us:.1f} µs/node (wall {_us(times.wall_median, FAN)})",
                    f"< {LIMIT_FAN_US:.0f} µs",
                    fmt_ratio(per_us / LIMIT_FAN_US),
                    check(per_us < LIMIT_FAN_US),
                    per_us,
                    "µs/node",
                    times.as_dict(),
                )
            )

        # (c) transform chain with one expression per node
        out = await engine(tchain, {"n": 0})
        assert out["output"] == {"n": CHAIN} == await loop_transform_chain(CHAIN)
        eng, base = await ameasure(
            lambda: engine(tchain, {"n": 0}),
            lambda: loop_transform_chain(CHAIN),
            runs=RUNS,
            warmup=WARMUP,
        )
        ratio = paired_ratio(eng.cpu, base.cpu)
        rows.append(
            Row(
                f"engine: {CHAIN}-node transform chain ({TEMPLATE}), engine / loop",
                fmt_ratio(ratio),
                f"≤ {LIMIT_TRANSFORM_RATIO:.0f}x",
                fmt_ratio(ratio / LIMIT_TRANSFORM_RATIO),
                check(ratio <= LIMIT_TRANSFORM_RATIO),
                ratio,
                "x",
                {"engine": eng.as_dict(), "loop": base.as_dict()},
            )
        )
        rows.append(
            Row(
                "  µs/node engine | plain loop: CPU (wall)",
                f"{_us(eng.cpu_median, CHAIN)} | {_us(base.cpu_median, CHAIN)} "
                f"({_us(eng.wall_median, CHAIN)} | {_us(base.wall_median, CHAIN)})",
                ratio=fmt_ratio(paired_ratio(eng.wall, base.wall)),
                value=eng.cpu_median / CHAIN * 1e6,
                unit="µs/node",
            )
        )
    return rows


def main() -> list[Row]:
    return run_async(_bench())  # type: ignore[no-any-return]


if __name__ == "__main__":
    cli(main, "Engine overhead per node")
