"""Prometheus metrics of one app, in a registry of its own (two apps in a process do not mix).

>>> metrics = Metrics()
>>> metrics.on_result("e1", {"status": "success"})
>>> b"conv3n_executions_total" in metrics.render(None)[0]
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from ..executors.base import Executor

_NODE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60)


class Metrics:
    """The service's counters, gauges and histograms; fed by executor hooks and requests."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.executions = Counter(
            "conv3n_executions", "Executions that ended, by status", ["status"], registry=r
        )
        self.node_duration = Histogram(
            "conv3n_node_duration_seconds",
            "Time a node run took, by status",
            ["status"],
            buckets=_NODE_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "conv3n_queue_depth", "Executions submitted and waiting for a worker", registry=r
        )
        self.running = Gauge("conv3n_executions_running", "Executions running now", registry=r)
        self.workers_alive = Gauge(
            "conv3n_workers_alive", "Worker processes (or in-process runners) alive", registry=r
        )
        self.http_duration = Histogram(
            "conv3n_http_request_duration_seconds",
            "HTTP request time, by method, route template and status",
            ["method", "route", "status"],
            buckets=_HTTP_BUCKETS,
            registry=r,
        )

    def on_event(self, execution_id: str, event: dict[str, Any]) -> None:
        """Executor hook: every ``node_finished`` event feeds the node duration histogram."""
        if event.get("type") != "node_finished":
            return
        data = event.get("data") or {}
        ms = data.get("duration_ms")
        if isinstance(ms, (int, float)) and not isinstance(ms, bool) and ms >= 0:
            self.node_duration.labels(str(data.get("status") or "unknown")).observe(ms / 1000)

    def on_result(self, execution_id: str, result: dict[str, Any]) -> None:
        """Executor hook: count an execution that ended, by its status."""
        self.executions.labels(str(result.get("status") or "unknown")).inc()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one HTTP request under its route template (``/api/executions/{id}``)."""
        self.http_duration.labels(method, route, str(status)).observe(seconds)

    def render(self, executor: Executor | None) -> tuple[bytes, str]:
        """The exposition text (gauges refreshed from ``executor.stats()``) and its type."""
        if executor is not None:
            stats = executor.stats()
            self.queue_depth.set(stats.queued)
            self.running.set(stats.running)
            alive = sum(1 for w in stats.workers if w.get("alive", True)) if stats.alive else 0
            self.workers_alive.set(alive)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
