"""A real ``conv3n serve`` app on uvicorn (127.0.0.1, a free port, a helper thread) and clients.

The app runs with the in-process executor on a temporary SQLite store; its JSON log lines are
collected in :class:`LogSink` so that tests can read them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conv3n_jupyter.server.app import create_app
from conv3n_jupyter.settings import Settings, load_settings
from tests.conftest import free_socket, serve_in_thread

MAX_BODY = 64 * 1024


class LogSink:
    """A thread-safe text stream keeping every line written to it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = ""
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        with self._lock:
            self._buffer += text
            *done, self._buffer = self._buffer.split("\n")
            self.lines.extend(done)
        return len(text)

    def flush(self) -> None:
        pass

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(line) for line in self.lines if line.strip()]


@dataclass
class Api:
    url: str
    settings: Settings
    logs: LogSink
    app: Any


def start_api(
    db: Path | str, prepare: Callable[[Any], None] | None = None, **overrides: Any
) -> tuple[Api, Any]:
    """Start the app on a free port (``db``: a SQLite file or a URL); returns it and ``stop``."""
    settings = load_settings(
        environ={},
        config_path=None,
        overrides={
            "database_url": db if isinstance(db, str) else f"sqlite:///{db}",
            "workers": 0,
            "api_max_body": MAX_BODY,
            "log_level": "debug",
            "log_format": "json",
            **overrides,
        },
    )
    logs = LogSink()
    app = create_app(settings, log_stream=logs)
    if prepare is not None:
        prepare(app)
    sock = free_socket()
    port = sock.getsockname()[1]
    stop = serve_in_thread(app, sock, lifespan="on", grace=1, what="the API server")
    return Api(f"http://127.0.0.1:{port}", settings, logs, app), stop


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The shared API server (one store for the session: tests use their own workflow ids)."""
    found, stop = start_api(tmp_path_factory.mktemp("api") / "api.db")
    try:
        yield found
    finally:
        stop()


@pytest.fixture
def client(api: Api) -> Iterator[httpx.Client]:
    """An httpx client on the shared API server."""
    with httpx.Client(base_url=api.url, timeout=30) as c:
        yield c
