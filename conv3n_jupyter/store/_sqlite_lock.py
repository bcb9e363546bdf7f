"""One writer at a time on a SQLite store, across threads and processes, without sleeping.

SQLite lets one connection write at a time. A connection that finds the database locked is
put to sleep by SQLite's busy handler for 1, 2, 5, 10, ... 100 ms before it looks again; with
an API process and several worker processes writing small transactions, those sleeps, not
the writes, set the throughput and the tail latency. So the store's transactions take this
lock first: a re-entrant lock between the threads of a process, then an exclusive ``flock`` on
a file beside the database between processes. The kernel wakes the next waiter the moment
the holder lets go, and frees the lock of a process that dies holding it.

    >>> lock = SqliteLock("/srv/conv3n.db")
    >>> with lock:
    ...     ...  # one transaction
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: threads of one process only
    fcntl = None  # type: ignore[assignment]


class SqliteLock:
    """Re-entrant in a thread; exclusive between threads and (through ``flock``) processes."""

    def __init__(self, database: str | Path | None) -> None:
        self.path = Path(f"{database}.lock") if database else None
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._pid = os.getpid()

    def __enter__(self) -> None:
        self._threads.acquire()
        try:
            if self._depth == 0 and self.path is not None and fcntl is not None:
                fcntl.flock(self._file(), fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        self._depth += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None and fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _file(self) -> int:
        # A forked child must not share its parent's open file (and so its flock).
        if self._fd is None or self._pid != os.getpid():
            assert self.path is not None
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd

    def close(self) -> None:
        """Close the lock file (the store is closing)."""
        with self._threads:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None

    def __repr__(self) -> str:
        return f"<SqliteLock {self.path or 'in-process'}>"
