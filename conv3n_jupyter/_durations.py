"""Durations as workflows write them: ``"30s"``, ``"1m"``, ``"200ms"``, or milliseconds."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)", re.IGNORECASE)
_HINT = (
    "expected milliseconds (a number) or a number with a unit ms, s, m, h or d: "
    "'200ms', '1.5s', '1h30m'"
)


def parse_duration(value: object) -> float:
    """Return ``value`` in seconds.

    A number (or a string holding only a number) counts milliseconds; a string may chain parts
    with units, largest first or not: ``"1h30m"``, ``"1.5s"``. Raises :class:`ValueError` with
    the reason when the value is not a duration or is negative.

        >>> parse_duration("1.5s"), parse_duration(250), parse_duration("1m30s")
        (1.5, 0.25, 90.0)
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: a boolean is not a duration; {_HINT}")
    if isinstance(value, (int, float)):
        return _checked(value / 1000.0, value)
    if not isinstance(value, str):
        raise ValueError(
            f"invalid duration {value!r}: expected a string or a number, got {type(value).__name__}"
        )
    text = value.strip()
    if not text:
        raise ValueError(f"invalid duration {value!r}: it is empty; {_HINT}")
    if text.startswith("-"):
        raise ValueError(f"invalid duration {value!r}: a duration cannot be negative")
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        return _checked(number / 1000.0, value)
    total = 0.0
    pos = 0
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            raise ValueError(
                f"invalid duration {value!r}: cannot read {text[pos:].strip()!r}; {_HINT}"
            )
        total += float(match.group(1)) * _UNITS[match.group(2).lower()]
        pos = match.end()
    return _checked(total, value)


def _checked(seconds: float, original: object) -> float:
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"invalid duration {original!r}: it must be a finite number")
    if seconds < 0:
        raise ValueError(f"invalid duration {original!r}: a duration cannot be negative")
    return seconds
