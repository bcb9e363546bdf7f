"""Notebook: a run with its live graph displayed, against the same run headless.

Runs inside a real IPython kernel (started with nbclient, as a notebook would be), so the
graph's updates really go out as comm messages. Two workflows of 200 nodes:

- ``chain``: 200 ``std/transform`` nodes, one ``{{ }}`` each: the engine's cheapest nodes, so
  any per-event cost of the graph shows at its worst;
- ``fan``: one start node, 200 parallel ``std/delay`` nodes of 5 ms, one join: a run that
  lasts long enough for the 20-updates-a-second batching to matter.

Headless is ``Execution(wf).run()``; "graph" is ``await wf.run()`` with ``wf.graph()``
displayed (which records every node's input and resolved config for the inspector, and
repaints the graph at most 20 times a second). Interleaved runs; the ratio is the median of
run-by-run ratios. Target: at most 1.5x.
"""

from __future__ import annotations

import json
import sys

from _harness import Row, check, cli, fmt_ratio, fmt_seconds

RUNS = 15
LIMIT = 1.5

_SETUP = r"""
import asyncio, gc, json, time, statistics
from IPython.display import display
from conv3n_jupyter.engine.executor import Execution
from conv3n_jupyter.model import parse

def chain(n):
    nodes = {"n0": {"type": "std/transform", "config": {"operations": [{"type": "set", "values": {"count": 0}}]}}}
    for i in range(1, n):
        nodes[f"n{i}"] = {"type": "std/transform", "depends_on": [f"n{i-1}"],
                          "config": {"operations": [{"type": "set", "values": {"count": "{{ $item.count + 1 }}"}}]}}
    return {"conv3n": "1", "name": "chain", "nodes": nodes}

def fan(n):
    nodes = {"start": {"type": "std/noop"}}
    for i in range(n):
        nodes[f"d{i}"] = {"type": "std/delay", "depends_on": ["start"], "config": {"duration": "5ms"}}
    nodes["join"] = {"type": "std/noop", "depends_on": [f"d{i}" for i in range(n)]}
    return {"conv3n": "1", "name": "fan", "nodes": nodes, "config": {"max_concurrent_nodes": 256}}

async def measure(wf, runs):
    async def headless():
        await Execution(wf).run()
    async def graph():
        await wf.run()
    for _ in range(2):
        await headless(); await graph()
    h, g = [], []
    for _ in range(runs):
        for fn, out in ((headless, h), (graph, g)):
            gc.collect()
            t0 = time.perf_counter(); await fn(); out.append(time.perf_counter() - t0)
    return h, g
"""

_CASE = r"""
wf = parse({maker}(200))
view = wf.graph()
display(view)
h, g = await measure(wf, {runs})
print("RESULT " + json.dumps({{"headless": h, "graph": g, "flushes": view.flushes}}))
"""


def _run_kernel(cases: list[str]) -> list[dict[str, list[float]]]:
    import nbclient
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(_SETUP)] + [
        nbformat.v4.new_code_cell(_CASE.format(maker=m, runs=RUNS)) for m in cases
    ]
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=600).execute()
    out = []
    for cell in nb.cells[1:]:
        text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
        line = next(x for x in text.splitlines() if x.startswith("RESULT "))
        out.append(json.loads(line[len("RESULT ") :]))
    return out


def main() -> list[Row]:
    import statistics

    rows = []
    cases = {"chain": "200 transform nodes in a chain", "fan": "200 parallel 5 ms delays"}
    for (_key, label), res in zip(cases.items(), _run_kernel(list(cases)), strict=True):
        h, g = res["headless"], res["graph"]
        ratio = statistics.median([b / a for a, b in zip(h, g, strict=True)])
        rows.append(
            Row(
                f"run with live graph ÷ headless: {label}",
                f"{fmt_seconds(statistics.median(g))} vs {fmt_seconds(statistics.median(h))}",
                f"≤ {LIMIT}x",
                fmt_ratio(ratio),
                check(ratio <= LIMIT),
                value=ratio,
                unit="x",
                extra={"headless_s": h, "graph_s": g, "flushes": res["flushes"]},
            )
        )
    return rows


if __name__ == "__main__":
    sys.exit(cli(main, "notebook graph"))
