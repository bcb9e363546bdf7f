"""Tests of duration parsing (``30s``, ``1m``, ``200ms``, plain milliseconds)."""

from __future__ import annotations

import pytest

from conv3n_jupyter._durations import parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30.0),
        ("1m", 60.0),
        ("200ms", 0.2),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        ("2d", 172800.0),
        ("1h30m", 5400.0),
        ("1m 30s", 90.0),
        (" 10S ", 10.0),
        (".5s", 0.5),
        (250, 0.25),
        (1500.0, 1.5),
        ("750", 0.75),
        (0, 0.0),
        ("0s", 0.0),
    ],
)
def test_parses_units_and_milliseconds(value: object, seconds: float) -> None:
    """Strings with units give seconds; plain numbers count milliseconds."""
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("30x", "cannot read '30x'"),
        ("s", "cannot read 's'"),
        ("1.5", None),
        ("-1s", "negative"),
        (-5, "negative"),
        (True, "boolean"),
        (None, "expected a string or a number, got NoneType"),
        ([1], "got list"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        ("inf", "finite"),
        ("10s garbage", "cannot read 'garbage'"),
    ],
)
def test_rejects_bad_values_with_a_reason(value: object, reason: str | None) -> None:
    """Anything that is not a non-negative finite duration raises ValueError saying why."""
    if reason is None:
        assert parse_duration(value) == pytest.approx(0.0015)
        return
    with pytest.raises(ValueError, match="invalid duration") as info:
        parse_duration(value)
    assert reason in str(info.value)


def test_error_shows_the_accepted_forms() -> None:
    """The message teaches the accepted syntax."""
    with pytest.raises(ValueError, match=r"ms, s, m, h or d"):
        parse_duration("soon")
