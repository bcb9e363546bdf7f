"""HTTP: 50 ``std/http_request`` nodes against a local server, beside a plain httpx client.

The server (``_http_server.py``: Starlette on uvicorn, a small JSON document at ``/json``)
runs in its own process on 127.0.0.1. The engine runs a workflow of 50 independent GET nodes
with ``max_concurrent_nodes`` 8 over the runtime's shared client. The baseline is what the
server allows a Python client: the same 50 GETs made by a plain ``httpx.AsyncClient`` from 8
concurrent tasks, reading each body as JSON. Both keep their connections alive between runs
(warm-up runs open them) and are measured interleaved in one event loop, by wall time (the
work spans two processes). The figure is the engine's throughput ÷ the plain client's: the
median of the run-by-run ratios, steadier on a busy machine than a ratio of medians; requests
per second (50 ÷ median wall time) are printed beside.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from _harness import Row, ameasure, check, cli, fmt_ratio, paired_ratio, run_async

from conv3n_jupyter.engine import Runtime, run
from conv3n_jupyter.model import Workflow, load

REQUESTS = 50
CONCURRENCY = 8
RUNS = 21
WARMUP = 3
LIMIT_RATIO = 0.8
SERVER = Path(__file__).with_name("_http_server.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    """Start the server process and wait until it answers; return it and its URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(SERVER), str(port)])
    url = f"http://127.0.0.1:{port}/json"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"the benchmark server did not start (exit {proc.poll()})")
        time.sleep(0.05)


def workflow(url: str) -> Workflow:
    nodes = {
        f"get{i}": {"type": "std/http_request", "config": {"url": url}} for i in range(REQUESTS)
    }
    return load({"name": "http", "nodes": nodes, "config": {"max_concurrent_nodes": CONCURRENCY}})


async def plain_client(client: httpx.AsyncClient, url: str) -> None:
    left = iter(range(REQUESTS))

    async def worker() -> None:
        for _ in left:
            response = await client.get(url)
            response.raise_for_status()
            response.json()

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def _bench(url: str) -> list[Row]:
    wf = workflow(url)
    async with Runtime() as rt, httpx.AsyncClient() as client:

        async def engine() -> Any:
            result = await run(wf, runtime=rt)
            assert result["status"] == "success", result.get("error")
            assert all(r["port"] == "success" for r in result["nodes"].values())
            return result

        eng, base = await ameasure(
            engine, lambda: plain_client(client, url), runs=RUNS, warmup=WARMUP
        )
    e_rps, b_rps = REQUESTS / eng.wall_median, REQUESTS / base.wall_median
    # Throughput ratio run by run: plain time / engine time of neighbouring runs.
    ratio = paired_ratio(base.wall, eng.wall)
    return [
        Row(
            f"http: {REQUESTS} std/http_request nodes, {CONCURRENCY} at once, engine / plain httpx",
            fmt_ratio(ratio),
            f"≥ {LIMIT_RATIO:.1f}x",
            fmt_ratio(ratio / LIMIT_RATIO),
            check(ratio >= LIMIT_RATIO),
            ratio,
            "x",
            {"engine": eng.as_dict(), "plain": base.as_dict()},
        ),
        Row(
            "  engine req/s | plain httpx.AsyncClient req/s (server's limit)",
            f"{e_rps:,.0f} | {b_rps:,.0f}",
            value=e_rps,
            unit="req/s",
            extra={"plain_rps": b_rps},
        ),
    ]


def main() -> list[Row]:
    proc, url = start_server()
    try:
        return run_async(_bench(url))  # type: ignore[no-any-return]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    cli(main, "HTTP")
