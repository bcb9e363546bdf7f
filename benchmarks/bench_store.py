"""The cost of recording a run in the store, against the same run without it.

* A chain of 200 ``std/noop`` nodes, a fan-out/fan-in of 200 (1 → 198 parallel noops →
  1 join) — the worst case: nodes that do nothing, so the store's cost is all there is — and
  a chain of 200 ``std/transform`` nodes computing one expression each, each run bare (``Execution(wf).run()``) and recorded (``record_run(store, wf)``:
  the execution row before the run, node rows flushed in batches, the final transaction).
* On SQLite (a temp file in WAL mode, the store's settings) and on PostgreSQL (the machine's
  server, ``$CONV3N_TEST_POSTGRES`` or ``postgresql://postgres@127.0.0.1:5432/test``, in a
  throwaway schema dropped at the end; its rows say why when the server is unreachable).
* Ratio recorded ÷ bare: the median of run-by-run ratios of interleaved runs, on wall time
  (the store's waits are part of the cost; PostgreSQL's work is in another process, so CPU
  time would hide it). CPU ratios are printed beside. Target: ≤ 2x on SQLite.
* An information row per backend splits the recorder's cost into its phases: ``start()``
  (the execution row), the listener calls during the run, and ``finish()`` (last batch and
  final status), medians per run.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _harness import Row, ameasure, check, cli, fmt_ratio, median, paired_ratio, run_async

from conv3n_jupyter.engine import Runtime
from conv3n_jupyter.engine.events import Event
from conv3n_jupyter.engine.executor import Execution
from conv3n_jupyter.model import Workflow, load

NODES = 200
RUNS = 25
WARMUP = 3
LIMIT_SQLITE_RATIO = 2.0
PG_BASE = os.environ.get("CONV3N_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def noop_chain(n: int) -> Workflow:
    nodes: dict[str, Any] = {"n0": {"type": "std/noop", "config": {"value": {"n": 0}}}}
    for i in range(1, n):
        nodes[f"n{i}"] = {"type": "std/noop", "depends_on": [f"n{i - 1}"]}
    return load({"name": "noop_chain", "nodes": nodes})


def noop_fan(n: int) -> Workflow:
    nodes: dict[str, Any] = {"start": {"type": "std/noop", "config": {"value": {"n": 0}}}}
    for i in range(n - 2):
        nodes[f"w{i}"] = {"type": "std/noop", "depends_on": ["start"]}
    nodes["join"] = {"type": "std/noop", "depends_on": [f"w{i}" for i in range(n - 2)]}
    return load({"name": "noop_fan", "nodes": nodes})


def transform_chain(n: int) -> Workflow:
    """200 nodes that each compute something small: ``n`` ← ``{{ $input.n + 1 }}``."""
    nodes: dict[str, Any] = {"n0": {"type": "std/noop", "config": {"value": {"n": 0}}}}
    for i in range(1, n):
        nodes[f"n{i}"] = {
            "type": "std/transform",
            "depends_on": [f"n{i - 1}"],
            "config": {
                "input": "{{ $input }}",
                "operations": [{"type": "set", "values": {"n": "{{ $item.n + 1 }}"}}],
            },
        }
    return load({"name": "transform_chain", "nodes": nodes})


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{Path(tmp) / 'conv3n.db'}"


@contextmanager
def postgres_url() -> Iterator[str]:
    import sqlalchemy as sa

    schema = f"conv3n_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_BASE.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        try:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            admin.dispose()


class Phases:
    """Per-run times of the recorder's phases, measured around a real :class:`Recorder`."""

    def __init__(self) -> None:
        self.start: list[float] = []
        self.listen: list[float] = []
        self.finish: list[float] = []

    async def run(self, store: Any, wf: Workflow, rt: Runtime) -> None:
        from conv3n_jupyter.store import Recorder

        execution = Execution(wf, runtime=rt)
        recorder = Recorder(store, execution)
        spent = [0.0]

        def timed(event: Event, call: Callable[[Event], None] = recorder) -> None:
            t = time.perf_counter()
            call(event)
            spent[0] += time.perf_counter() - t

        execution.listeners.insert(0, timed)
        t0 = time.perf_counter()
        await recorder.start()
        t1 = time.perf_counter()
        await execution.run()
        t2 = time.perf_counter()
        await recorder.finish()
        t3 = time.perf_counter()
        self.start.append(t1 - t0)
        self.listen.append(spent[0])
        self.finish.append(t3 - t2)

    def text(self) -> str:
        def ms(xs: list[float]) -> str:
            return f"{median(xs) * 1e3:.2f}"

        return f"{ms(self.start)} | {ms(self.listen)} | {ms(self.finish)} ms"


async def _backend(name: str, url: str, rt: Runtime) -> list[Row]:
    from conv3n_jupyter.store import open_store, record_run

    rows: list[Row] = []
    store = open_store(url)
    try:
        shapes = (
            ("noop chain", noop_chain(NODES)),
            ("noop fan", noop_fan(NODES)),
            ("transform chain", transform_chain(NODES)),
        )
        for shape, wf in shapes:

            async def bare(wf: Workflow = wf) -> None:
                result = await Execution(wf, runtime=rt).run()
                assert result["status"] == "success", result.get("error")

            async def recorded(wf: Workflow = wf) -> None:
                result = await record_run(store, wf, runtime=rt)
                assert result["status"] == "success", result.get("error")

            rec, base = await ameasure(recorded, bare, runs=RUNS, warmup=WARMUP)
            ratio = paired_ratio(rec.wall, base.wall)
            cpu_ratio = paired_ratio(rec.cpu, base.cpu)
            is_sqlite = name == "SQLite"
            rows.append(
                Row(
                    f"store: {name}, {NODES}-node {shape}, recorded / bare (wall)",
                    fmt_ratio(ratio),
                    f"≤ {LIMIT_SQLITE_RATIO:.0f}x" if is_sqlite else "—",
                    fmt_ratio(ratio / LIMIT_SQLITE_RATIO) if is_sqlite else "—",
                    check(ratio <= LIMIT_SQLITE_RATIO) if is_sqlite else "info",
                    ratio,
                    "x",
                    {"recorded": rec.as_dict(), "bare": base.as_dict(), "cpu_ratio": cpu_ratio},
                )
            )
            rows.append(
                Row(
                    "  ms/run recorded | bare: wall (CPU)",
                    f"{rec.wall_median * 1e3:.2f} | {base.wall_median * 1e3:.2f} "
                    f"({rec.cpu_median * 1e3:.2f} | {base.cpu_median * 1e3:.2f})",
                    ratio=f"CPU {fmt_ratio(cpu_ratio)}",
                    value=(rec.wall_median - base.wall_median) / NODES * 1e6,
                    unit="µs/node added",
                )
            )
            phases = Phases()
            for _ in range(RUNS):
                await phases.run(store, wf, rt)
            rows.append(
                Row(
                    "  recorder phases start() | listener | finish() (wall)",
                    phases.text(),
                    value=median(phases.finish) * 1e3,
                    unit="ms finish()",
                )
            )
    finally:
        store.close()
    return rows


async def _bench() -> list[Row]:
    rows: list[Row] = []
    async with Runtime() as rt:
        with sqlite_url() as url:
            rows += await _backend("SQLite", url, rt)
        try:
            with postgres_url() as url:
                rows += await _backend("PostgreSQL", url, rt)
        except Exception as exc:  # reported as a row when the server is unreachable
            if type(exc).__name__ not in ("OperationalError", "StoreError"):
                raise
            rows.append(Row("store: PostgreSQL", f"not run: {str(exc).splitlines()[0][:70]}"))
    return rows


def main() -> list[Row]:
    return run_async(_bench())  # type: ignore[no-any-return]


if __name__ == "__main__":
    cli(main, "Recording runs in the store")
