"""``POST /api/run`` of a 3-node workflow through ``conv3n serve``: executions per second and
latency, one client after another and 32 clients at once, on SQLite and PostgreSQL.

Each configuration starts a real ``conv3n serve`` (uvicorn + its worker pool, default worker
count = cores) as a subprocess on a fresh store, warms it up, then times whole HTTP round
trips from an ``httpx.AsyncClient`` in this process: every request is a durable execution
(recorded in the store before it runs and after its nodes). Node-RED answers a 3-node webhook
flow ~2,000 times a second on this machine, without recording anything.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _harness import Row, cli, median, run_async

SEQUENTIAL = 300
CONCURRENT_CLIENTS = 32
PER_CLIENT = 25
WARMUP = 50
PG_BASE = os.environ.get("CONV3N_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

WORKFLOW = {
    "conv3n": "1",
    "name": "webhook-3",
    "params": {"user": {"type": "string", "default": "ada"}},
    "nodes": {
        "shape": {
            "type": "std/transform",
            "config": {
                "input": "{{ $params }}",
                "operations": [{"type": "set", "values": {"greeting": "Hi {{ $item.user }}"}}],
            },
        },
        "known": {"type": "std/condition", "config": {"expression": "size($input.user) > 0"}},
        "reply": {
            "type": "std/transform",
            "config": {
                "input": "{{ $input }}",
                "operations": [{"type": "pick", "fields": ["greeting"]}],
            },
        },
    },
    "edges": [
        {"source": "shape", "target": "known"},
        {"source": "known", "target": "reply", "sourceHandle": "true"},
    ],
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _conv3n() -> str:
    found = shutil.which("conv3n", path=str(Path(sys.executable).parent))
    return found or "conv3n"


def start_server(database_url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "CONV3N_DATABASE_URL": database_url,
        "CONV3N_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen(
        [_conv3n(), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"conv3n serve exited with {proc.returncode}")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("conv3n serve did not answer /health within 30 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class RawConnection:
    """One keep-alive HTTP/1.1 connection written by hand.

    A full client (httpx) spends about 4 ms of CPU per request here: with 32 of them on a
    2-core machine the load generator, not the server, would be measured.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> RawConnection:
        host, port = url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


BODY = json.dumps({"workflow": WORKFLOW}).encode()


async def _one(conn: RawConnection) -> float:
    t0 = time.perf_counter()
    status, raw = await conn.post("/api/run", BODY)
    elapsed = time.perf_counter() - t0
    if status != 200 or b'"status":"success"' not in raw.replace(b" ", b""):
        raise RuntimeError(f"run failed: {status} {raw[:300]!r}")
    return elapsed


async def _bench(url: str) -> dict[str, Any]:
    conns = [await RawConnection.open(url) for _ in range(CONCURRENT_CLIENTS)]
    try:
        for _ in range(WARMUP):
            await _one(conns[0])
        t0 = time.perf_counter()
        seq = [await _one(conns[0]) for _ in range(SEQUENTIAL)]
        seq_wall = time.perf_counter() - t0

        async def client(conn: RawConnection) -> list[float]:
            return [await _one(conn) for _ in range(PER_CLIENT)]

        t0 = time.perf_counter()
        groups = await asyncio.gather(*(client(c) for c in conns))
        conc_wall = time.perf_counter() - t0
    finally:
        for conn in conns:
            conn.close()
    conc = [x for g in groups for x in g]
    return {
        "sequential": {"per_s": SEQUENTIAL / seq_wall, **_percentiles(seq)},
        "concurrent": {"per_s": len(conc) / conc_wall, **_percentiles(conc)},
    }


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "n": len(ordered),
    }


def _pg_url() -> tuple[str, Any] | None:
    try:
        import sqlalchemy as sa

        admin = sa.create_engine(PG_BASE.replace("postgresql://", "postgresql+psycopg://", 1))
        schema = f"conv3n_bench_{uuid.uuid4().hex[:8]}"
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # PostgreSQL not reachable: the row says so
        print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
        return None

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return f"{PG_BASE}?options=-csearch_path%3D{schema}", drop


def _rows(label: str, figures: dict[str, Any]) -> list[Row]:
    s, c = figures["sequential"], figures["concurrent"]
    return [
        Row(
            f"api ({label}): POST /api/run, 3 nodes, 1 client",
            f"{s['per_s']:,.0f}/s, p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms",
            value=s["per_s"],
            unit="executions/s",
            extra=s,
        ),
        Row(
            f"api ({label}): POST /api/run, 3 nodes, {CONCURRENT_CLIENTS} clients",
            f"{c['per_s']:,.0f}/s, p50 {c['p50_ms']:.1f} ms, p99 {c['p99_ms']:.1f} ms",
            value=c["per_s"],
            unit="executions/s",
            extra=c,
        ),
    ]


def main() -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        configs: list[tuple[str, str, Any]] = [("SQLite", f"sqlite:///{work / 'conv3n.db'}", None)]
        pg = _pg_url()
        if pg is not None:
            configs.append(("PostgreSQL", pg[0], pg[1]))
        for label, url, cleanup in configs:
            proc, base = start_server(url, work)
            try:
                rows += _rows(label, run_async(_bench(base)))
            finally:
                stop_server(proc)
                if cleanup is not None:
                    cleanup()
    rows.append(
        Row(
            "  Node-RED, 3-node webhook flow (no store), this machine",
            "~2,000/s",
            status="ref",
        )
    )
    return rows


if __name__ == "__main__":
    cli(main, "HTTP API")
