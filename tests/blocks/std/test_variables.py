"""Tests of ``std/set_var`` and ``std/get_var`` in execution scope, and refusal of the others."""

from __future__ import annotations

import jsonschema
import pytest

from conv3n_jupyter.blocks.std.variables import GetVar, SetVar
from conv3n_jupyter.errors import BlockError
from tests.blocks.fakectx import FakeContext

SET, GET = SetVar(), GetVar()


async def test_set_then_get_in_execution_scope() -> None:
    """set_var stores into ctx.vars and emits the value; get_var reads it back."""
    shared: dict = {}
    value = {"count": 3, "items": [1, 2]}
    out = await SET.run(FakeContext(SET, {"key": "state", "value": value}, vars=shared))
    assert out == value
    assert shared == {"state": value}
    got = await GET.run(FakeContext(GET, {"key": "state"}, vars=shared))
    assert got == value


async def test_set_overwrites_and_accepts_null() -> None:
    """A later set replaces the value; null is a value like any other."""
    shared: dict = {"k": 1}
    await SET.run(FakeContext(SET, {"key": "k", "value": None, "scope": "execution"}, vars=shared))
    assert shared == {"k": None}
    assert await GET.run(FakeContext(GET, {"key": "k", "default": 5}, vars=shared)) is None


async def test_get_default_for_missing_key() -> None:
    """A missing key gives `default`, even a falsy one."""
    assert await GET.run(FakeContext(GET, {"key": "nope", "default": 0})) == 0
    assert await GET.run(FakeContext(GET, {"key": "nope", "default": None})) is None


async def test_get_missing_key_without_default_names_the_key() -> None:
    """A missing key with no default is an error naming the key, without retry."""
    with pytest.raises(BlockError, match="'counter' is not set") as info:
        await GET.run(FakeContext(GET, {"key": "counter"}))
    assert info.value.retryable is False


@pytest.mark.parametrize("scope", ["workflow", "global"])
@pytest.mark.parametrize("block", [SET, GET])
async def test_persistent_scopes_need_a_store(block, scope: str) -> None:
    """Workflow and global scopes refuse to run without a store instead of falling back."""
    shared: dict = {}
    config = (
        {"key": "k", "value": 1, "scope": scope} if block is SET else {"key": "k", "scope": scope}
    )
    with pytest.raises(BlockError, match=f"scope '{scope}' needs a store") as info:
        await block.run(FakeContext(block, config, vars=shared))
    assert info.value.retryable is False
    assert shared == {}


@pytest.mark.parametrize(
    ("config", "match"),
    [({"key": "", "value": 1}, "'key'"), ({"key": 5, "value": 1}, "'key'"),
     ({"key": "a", "value": 1, "scope": "session"}, "'scope'")],
)  # fmt: skip
async def test_bad_config(config: dict, match: str) -> None:
    """Bad key or scope values name the config key."""
    with pytest.raises(BlockError, match=match):
        await SET.run(FakeContext(SET, config))


def test_config_schemas() -> None:
    """Both schemas are valid and closed; set_var needs key and value, get_var a key."""
    for block in (SetVar, GetVar):
        jsonschema.Draft202012Validator.check_schema(block.config_schema)
    set_v = jsonschema.Draft202012Validator(SetVar.config_schema)
    get_v = jsonschema.Draft202012Validator(GetVar.config_schema)
    assert not list(set_v.iter_errors({"key": "a", "value": [1], "scope": "workflow"}))
    assert list(set_v.iter_errors({"key": "a"}))
    assert list(set_v.iter_errors({"key": "a", "value": 1, "scope": "everywhere"}))
    assert not list(get_v.iter_errors({"key": "a", "default": {"x": 1}}))
    assert list(get_v.iter_errors({"key": "a", "value": 1}))
