"""CLI cold start: ``conv3n run two_node.conv3n.json -q`` as a whole new process.

Each run spawns the installed ``conv3n`` script (stdout to /dev/null) and reaps it with
``os.wait4``, which returns that one child's resource usage: wall time is ``perf_counter``
around spawn → reap (the target is judged on it), peak RSS is the child's own ``ru_maxrss``,
and its CPU time (user + system) is printed beside the wall time: it is what the start costs
when no other process competes for the CPUs. ``python -c pass`` is measured
the same way as the floor no Python program can go under.

The child runs without ``PYTHONDONTWRITEBYTECODE``, so that, as after ``pip install`` (which
compiles the package), modules load from cached bytecode rather than being compiled again at
every start; the warm-up runs write that cache for a source checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import REF, Row, check, cli, fmt_ratio, fmt_seconds, median, spread

RUNS = 15
WARMUP = 2
LIMIT_S = 0.25
LIMIT_MB = 60.0
# Published figures for the same two-node workflow run from n8n's command line.
N8N_S = 2.77
N8N_MIB = 395.0

CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

TWO_NODE = {
    "name": "two_node",
    "nodes": {
        "first": {"type": "std/noop", "config": {"value": {"hello": "world"}}},
        "second": {"type": "std/noop", "depends_on": ["first"]},
    },
}


def conv3n_script() -> str:
    """The ``conv3n`` script of the running interpreter's environment, else the one on PATH."""
    beside = Path(sys.executable).with_name("conv3n")
    if beside.exists():
        return str(beside)
    found = shutil.which("conv3n")
    if found is None:
        raise SystemExit("the conv3n command is not installed (pip install -e .)")
    return found


def spawn(argv: list[str]) -> tuple[float, float, float, int]:
    """Run ``argv`` once: (wall seconds, CPU seconds, peak RSS in MiB, exit status)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, devnull, 1)]
        t0 = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, CHILD_ENV, file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - t0
    finally:
        os.close(devnull)
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def sample(argv: list[str], runs: int) -> tuple[list[float], list[float], list[float]]:
    """Wall times, CPU times and peak RSS of ``runs`` runs after the warm-up runs."""
    for _ in range(WARMUP):
        spawn(argv)
    walls, cpus, rss = [], [], []
    for _ in range(runs):
        wall, cpu, mib, code = spawn(argv)
        if code != 0:
            raise SystemExit(f"{' '.join(argv)} exited with {code}")
        walls.append(wall)
        cpus.append(cpu)
        rss.append(mib)
    return walls, cpus, rss


def main() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "two_node.conv3n.json"
        path.write_text(json.dumps(TWO_NODE))
        argv = [conv3n_script(), "run", str(path), "-q"]
        check_run = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check_run.returncode != 0:
            raise SystemExit(f"conv3n run failed ({check_run.returncode}): {check_run.stderr}")
        py_walls, py_cpus, py_rss = sample([sys.executable, "-c", "pass"], RUNS)
        walls, cpus, rss = sample(argv, RUNS)
    wall, cpu, mib = median(walls), median(cpus), median(rss)
    py_wall, py_mib = median(py_walls), median(py_rss)
    extra = {"wall_s": spread(walls), "cpu_s": spread(cpus), "rss_mib": spread(rss)}
    return [
        Row(
            "CLI cold start: conv3n run (2 nodes) -q, wall",
            f"{fmt_seconds(wall)} (CPU {fmt_seconds(cpu)})",
            f"< {fmt_seconds(LIMIT_S)}",
            fmt_ratio(wall / LIMIT_S),
            check(wall < LIMIT_S),
            wall,
            "s",
            extra,
        ),
        Row(
            "CLI cold start: peak RSS",
            f"{mib:.1f} MiB",
            f"< {LIMIT_MB:.0f} MiB",
            fmt_ratio(mib / LIMIT_MB),
            check(mib < LIMIT_MB),
            mib,
            "MiB",
        ),
        Row(
            "  reference: python -c pass (same interpreter)",
            f"{fmt_seconds(py_wall)}, {py_mib:.1f} MiB",
            value=py_wall,
            unit="s",
            extra={"wall_s": spread(py_walls), "cpu_s": spread(py_cpus), "rss_mib": spread(py_rss)},
        ),
        Row(
            "  reference: n8n CLI, same workflow (published)",
            f"{fmt_seconds(N8N_S)}, {N8N_MIB:.0f} MiB",
            ratio=f"ours {N8N_S / wall:.0f}x faster, {N8N_MIB / mib:.0f}x less",
            status=REF,
            value=N8N_S,
            unit="s",
        ),
    ]


if __name__ == "__main__":
    cli(main, "CLI cold start")
