"""Tests of ``std/delay``: durations, units, timestamps, cancellation and pass-through."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import jsonschema
import pytest

from conv3n_jupyter.blocks.std.delay import Delay
from conv3n_jupyter.errors import BlockError
from tests.blocks.fakectx import FakeContext

BLOCK = Delay()


async def timed(config: dict, **kw) -> tuple[object, float]:
    started = time.perf_counter()
    out = await BLOCK.run(FakeContext(BLOCK, config, **kw))
    return out, time.perf_counter() - started


@pytest.mark.parametrize(
    ("config", "seconds"),
    [
        ({"duration": 50}, 0.05),
        ({"duration": 50, "unit": "ms"}, 0.05),
        ({"duration": 0.05, "unit": "s"}, 0.05),
        ({"duration": 0.001, "unit": "m"}, 0.06),
        ({"duration": "50"}, 0.05),
        ({"duration": "0.05s"}, 0.05),
        ({"duration": "60ms", "unit": "s"}, 0.06),
    ],
)
async def test_waits_for_the_duration(config: dict, seconds: float) -> None:
    """duration counts in `unit` (ms by default); a string may carry its own unit."""
    out, elapsed = await timed(config, input={"x": 1})
    assert out == {"x": 1}
    assert seconds - 0.005 <= elapsed < seconds + 0.5


async def test_zero_duration_returns_at_once() -> None:
    """A zero wait does not sleep."""
    out, elapsed = await timed({"duration": 0}, input=[1, 2])
    assert out == [1, 2]
    assert elapsed < 0.05


@pytest.mark.parametrize("aware", [True, False])
async def test_waits_until_a_timestamp(aware: bool) -> None:
    """`until` waits for an ISO timestamp; a naive one is UTC."""
    moment = datetime.now(timezone.utc) + timedelta(milliseconds=120)
    text = moment.isoformat() if aware else moment.replace(tzinfo=None).isoformat()
    out, elapsed = await timed({"until": text}, input="in")
    assert out == "in"
    assert 0.08 <= elapsed < 0.6


async def test_until_with_z_suffix_and_other_offset() -> None:
    """'Z' and non-UTC offsets are understood."""
    moment = datetime.now(timezone(timedelta(hours=5))) + timedelta(milliseconds=80)
    _, elapsed = await timed({"until": moment.isoformat()})
    assert 0.04 <= elapsed < 0.6
    utc = (datetime.now(timezone.utc) + timedelta(milliseconds=80)).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )
    _, elapsed = await timed({"until": utc})
    assert 0.04 <= elapsed < 0.6


async def test_past_timestamp_does_not_wait() -> None:
    """A moment already past ends the wait at once."""
    _, elapsed = await timed({"until": "2000-01-01T00:00:00Z"})
    assert elapsed < 0.05


async def test_cancellation_ends_the_wait_at_once() -> None:
    """Cancelling the node's task stops a long wait immediately."""
    task = asyncio.ensure_future(BLOCK.run(FakeContext(BLOCK, {"duration": 60, "unit": "s"})))
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.perf_counter() - started < 0.1


async def test_wait_longer_than_the_time_limit_fails_early() -> None:
    """A wait that cannot finish within the node's time limit fails at once, without retry."""
    started = time.perf_counter()
    with pytest.raises(BlockError, match="longer than the node's remaining time limit") as info:
        await BLOCK.run(FakeContext(BLOCK, {"duration": 10, "unit": "s"}, timeout=1.0))
    assert info.value.retryable is False
    assert time.perf_counter() - started < 0.1


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({}, "exactly one"),
        ({"duration": 1, "until": "2030-01-01"}, "exactly one"),
        ({"duration": -1}, "'duration'"),
        ({"duration": "soon"}, "'duration'"),
        ({"duration": True}, "'duration'"),
        ({"duration": [1]}, "'duration'"),
        ({"duration": 1, "unit": "h"}, "'unit'"),
        ({"until": "tomorrow"}, "'until'"),
        ({"until": 5}, "'until'"),
    ],
)
async def test_bad_config_is_rejected(config: dict, match: str) -> None:
    """Bad settings name the key and are not retryable."""
    with pytest.raises(BlockError, match=match) as info:
        await BLOCK.run(FakeContext(BLOCK, config))
    assert info.value.retryable is False


def test_check_requires_exactly_one_of_duration_and_until() -> None:
    """Validation reports a config with both or neither, with the config's path."""
    assert Delay.check({"duration": 1}, "nodes.d.config") == []
    assert Delay.check({"until": "2030-01-01T00:00:00Z"}, "nodes.d.config") == []
    [problem] = Delay.check({}, "nodes.d.config")
    assert problem.path == "nodes.d.config"
    [problem] = Delay.check({"until": "x", "unit": "s"}, "nodes.d.config")
    assert problem.path == "nodes.d.config.unit"


def test_config_schema() -> None:
    """The schema is valid and closed."""
    jsonschema.Draft202012Validator.check_schema(Delay.config_schema)
    validator = jsonschema.Draft202012Validator(Delay.config_schema)
    assert not list(validator.iter_errors({"duration": "{{ $params.wait }}", "unit": "s"}))
    assert list(validator.iter_errors({"duration": 1, "unit": "h"}))
    assert list(validator.iter_errors({"wait": 1}))
