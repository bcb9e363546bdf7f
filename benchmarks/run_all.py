"""Run every benchmark and print one table; also write ``benchmarks/results.json``.

    python benchmarks/run_all.py            # all of them (about a minute)
    python benchmarks/run_all.py http code  # only those whose name contains a word
    python benchmarks/run_all.py --readme   # also put the table in benchmarks/README.md

Each ``bench_*.py`` runs in its own fresh interpreter (``--json``), so one benchmark's imports,
garbage and event loop cannot slow the next. Missing a target is reported, not an error: the
exit status is 0 unless a benchmark could not run at all.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from _harness import FAIL, Row, plain_table, print_table

HERE = Path(__file__).resolve().parent
BENCHMARKS = (
    "bench_cli_start",
    "bench_engine_overhead",
    "bench_items",
    "bench_http",
    "bench_code",
    "bench_notebook_graph",
    "bench_store",
    "bench_api",
)
README = HERE / "README.md"
RESULTS = HERE / "results.json"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
TIMEOUT_S = 300


def run_one(name: str) -> tuple[list[Row], bool]:
    """The rows of one benchmark script, or one FAIL row saying why it could not run."""
    cmd = [sys.executable, str(HERE / f"{name}.py"), "--json"]
    try:
        proc = subprocess.run(
            cmd, cwd=HERE, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return [Row(f"{name}: did not finish", f"> {TIMEOUT_S} s", status=FAIL)], False
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return [Row(f"{name}: could not run", last[:70], status=FAIL)], False
    return [Row(**r) for r in json.loads(proc.stdout.strip().splitlines()[-1])], True


def machine() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def update_readme(table: str, stamp: str, info: dict[str, object]) -> None:
    text = README.read_text()
    if BEGIN not in text or END not in text:
        sys.stderr.write(f"{README.name} has no {BEGIN} … {END} markers; not updated\n")
        return
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    where = (
        f"Run on {stamp}: Python {info['python']}, {info['cpus']} CPUs, "
        f"load average {info['load_average_start']} at the start.\n\n"
    )
    README.write_text(f"{head}{BEGIN}\n{where}{table}{END}{tail}")


def main(argv: list[str]) -> int:
    words = [a for a in argv if not a.startswith("-")]
    chosen = [b for b in BENCHMARKS if not words or any(w in b for w in words)]
    info = machine()
    info["load_average_start"] = info.pop("load_average")
    started = time.perf_counter()
    rows: list[Row] = []
    sections: list[int] = []
    ran_all = True
    for name in chosen:
        sys.stderr.write(f"running {name} …\n")
        sections.append(len(rows))
        got, ok = run_one(name)
        rows.extend(got)
        ran_all &= ok
    info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    info["suite_s"] = round(time.perf_counter() - started, 1)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print_table(rows, f"conv3n benchmarks, {stamp}", sections=sections)
    missed = [r.benchmark for r in rows if r.status == FAIL]
    if missed:
        print(f"{len(missed)} target(s) missed: " + "; ".join(m.strip() for m in missed))
    else:
        print("every target met")
    print(
        f"suite took {info['suite_s']} s; load average {info['load_average_start']} → "
        f"{info['load_average_end']}"
    )
    RESULTS.write_text(
        json.dumps(
            {"date": stamp, "machine": info, "rows": [r.__dict__ for r in rows]},
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )
    if "--readme" in argv:
        update_readme(plain_table(rows), stamp, info)
    return 0 if ran_all else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
