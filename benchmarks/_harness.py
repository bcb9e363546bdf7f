"""Timing helpers and the result table shared by the benchmark scripts.

Every figure is the median of N timed runs after warm-up runs; each run records its wall time
and this process's CPU time (see :class:`Timings`). When a figure is compared with a baseline,
the two are measured in the same process and interleaved run by run, so that a noisy
neighbour slows both alike.

Each ``bench_*.py`` defines ``main() -> list[Row]``; run alone it prints its own table, with
``--json`` it prints its rows as JSON (which is how ``run_all.py`` collects them).
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

PASS, FAIL, REF, INFO = "pass", "FAIL", "ref", "info"


@dataclass
class Row:
    """One line of the result table.

    ``status`` is ``pass``/``FAIL`` for a row with a target, ``ref`` for a figure published
    elsewhere (not measured here) and ``info`` for a figure reported without a target.
    ``value``/``unit``/``extra`` keep the raw numbers for ``results.json``.
    """

    benchmark: str
    measured: str
    limit: str = "—"
    ratio: str = "—"
    status: str = INFO
    value: float | None = None
    unit: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def check(ok: bool) -> str:
    return PASS if ok else FAIL


def fmt_seconds(seconds: float) -> str:
    """``0.182 s``, ``12.4 ms`` or ``35.1 µs``: three significant figures."""
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs"


def fmt_ratio(x: float) -> str:
    return f"{x:.2f}x"


class Timings:
    """The wall and CPU times (seconds) of a series of runs of one thing.

    ``cpu`` is this process's CPU time (``time.process_time``): on a shared machine other
    processes preempt ours, which inflates wall times at random, while the CPU time of work
    done wholly in this process does not move. It is meaningless for work done elsewhere
    (a server, a worker process).
    """

    __slots__ = ("cpu", "wall")

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def add(self, wall: float, cpu: float) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)

    @property
    def wall_median(self) -> float:
        return median(self.wall)

    @property
    def cpu_median(self) -> float:
        return median(self.cpu)

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {"wall_s": spread(self.wall), "cpu_s": spread(self.cpu)}


async def ameasure(*fns: Callable[[], Awaitable[Any]], runs: int, warmup: int = 2) -> list[Timings]:
    """Time each coroutine function ``runs`` times after ``warmup`` runs, interleaved.

    The order is f1, f2, f1, f2, ...; a garbage collection runs before each timed call so that
    one run does not pay for the previous one's garbage.
    """
    for _ in range(warmup):
        for fn in fns:
            await fn()
    out = [Timings() for _ in fns]
    for _ in range(runs):
        for timings, fn in zip(out, fns, strict=True):
            gc.collect()
            c0 = time.process_time()
            t0 = time.perf_counter()
            await fn()
            wall = time.perf_counter() - t0
            timings.add(wall, time.process_time() - c0)
    return out


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """The median of the run-by-run ratios a[i] / b[i] of two interleaved series.

    Neighbouring runs share the machine's state, so this is steadier than a ratio of medians.
    """
    return median([x / y for x, y in zip(a, b, strict=True)])


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max, for ``results.json``."""
    return {"median": median(values), "min": min(values), "max": max(values), "n": len(values)}


def run_async(coro: Awaitable[Any]) -> Any:
    """Run one coroutine in a fresh event loop (each benchmark uses one loop for all its runs)."""
    return asyncio.run(coro)  # type: ignore[arg-type]


# -- output ------------------------------------------------------------------------------------

COLUMNS = ("benchmark", "measured", "limit / target", "ratio", "pass/fail")


def _cells(row: Row) -> tuple[str, ...]:
    return (row.benchmark, row.measured, row.limit, row.ratio, row.status)


def print_table(
    rows: Sequence[Row], title: str = "", file: Any = None, sections: Sequence[int] = ()
) -> None:
    """The rows as a table: rich when it is installed, plain text otherwise.

    ``sections`` are the indices of the rows that start a new group (a rule is drawn above).
    """
    file = file or sys.stdout
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        _print_plain(rows, title, file)
        return
    table = Table(title=title or None, title_justify="left")
    for i, name in enumerate(COLUMNS):
        table.add_column(name, justify="left" if i == 0 else "right", no_wrap=i > 0)
    styles = {PASS: "green", FAIL: "bold red", REF: "dim", INFO: ""}
    for i, row in enumerate(rows):
        if i and i in sections:
            table.add_section()
        cells = list(_cells(row))
        style = styles.get(row.status, "")
        cells[-1] = f"[{style}]{cells[-1]}[/]" if style else cells[-1]
        table.add_row(*cells, style="dim" if row.status == REF else None)
    Console(file=file, width=max(120, _plain_width(rows))).print(table)


def _plain_width(rows: Sequence[Row]) -> int:
    widths = [len(c) for c in COLUMNS]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, _cells(row), strict=True)]
    return sum(widths) + 3 * len(widths) + 4


def _print_plain(rows: Sequence[Row], title: str, file: Any) -> None:
    file.write(plain_table(rows, title))


def plain_table(rows: Sequence[Row], title: str = "") -> str:
    """A Markdown table of the rows (also used for the README)."""
    lines = [f"{title}\n\n"] if title else []
    lines.append("| " + " | ".join(COLUMNS) + " |\n")
    lines.append("|" + "|".join(["---", "---:", "---:", "---:", ":---:"]) + "|\n")
    for row in rows:
        cells = [c.replace("|", "\\|") for c in _cells(row)]
        if cells[0].startswith("  "):  # Markdown trims a cell's leading spaces
            cells[0] = "↳ " + cells[0].lstrip()
        if row.status == FAIL:
            cells[-1] = "**FAIL**"
        lines.append("| " + " | ".join(cells) + " |\n")
    return "".join(lines)


def cli(main: Callable[[], list[Row]], title: str) -> None:
    """Entry point of a ``bench_*.py`` script: a table, or JSON rows with ``--json``."""
    rows = main()
    if "--json" in sys.argv[1:]:
        json.dump([asdict(r) for r in rows], sys.stdout)
        sys.stdout.write("\n")
    else:
        print_table(rows, title)
