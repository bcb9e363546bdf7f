"""Structured logs of the service: one JSON object (or one text line) per event, on stderr.

Every line carries ``ts`` (ISO 8601, UTC), ``level``, ``event`` and ``message``, plus the
fields an event has: ``execution_id``, ``node_id``, ``workflow``, and for requests
``method``, ``path``, ``status`` and ``duration_ms``.

    >>> logger = configure_logging("info", "json")  # a logger of its own, on stderr
    >>> log(logger, "info", "execution_started", "execution abc started", execution_id="abc")
    {"ts": "2026-01-01T10:00:00.000Z", "level": "info", "event": "execution_started", ...}
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import IO, Any

LOGGER_NAME = "conv3n.server"
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and v is not None}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: ``ts``, ``level``, ``event``, ``message``, fields."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        line: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname.lower(),
            "event": fields.pop("event", record.name),
            "message": record.getMessage(),
        }
        line.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Formats a record as ``TS LEVEL event: message key=value ...``."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        event = fields.pop("event", record.name)
        extra = "".join(f" {k}={v}" for k, v in fields.items())
        text = f"{_iso(record.created)} {record.levelname:<7} {event}: {record.getMessage()}{extra}"
        if record.exc_info and record.exc_info[0] is not None:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(
    level: str = "info",
    fmt: str = "json",
    stream: IO[str] | None = None,
    logger: logging.Logger | None = None,
) -> logging.Logger:
    """A logger writing to ``stream`` (default stderr) at ``level`` in ``fmt``.

    Without ``logger``: a new one of its own, outside the ``logging`` tree, so that two apps
    in one process (tests) keep their own handlers. Calling it again on the same logger
    replaces its handler.
    """
    if logger is None:
        logger = logging.Logger(LOGGER_NAME)
    reset_logging(logger)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    return logger


def reset_logging(logger: logging.Logger) -> None:
    """Remove (and close) the handlers :func:`configure_logging` added."""
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        if handler.stream not in (sys.stderr, sys.stdout):  # type: ignore[attr-defined]
            handler.close()


def log(logger: logging.Logger, level: str, event: str, message: str, **fields: Any) -> None:
    """Log one event; ``fields`` become keys of the JSON line (``None`` values are left out)."""
    number = logging.getLevelName(level.upper())
    if logger.isEnabledFor(number):
        logger.log(number, message, extra={"event": event, **fields})
