"""The block registry: lazy built-ins, clear errors, and third-party blocks from entry points."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conv3n_jupyter.blocks import registry


@pytest.fixture
def plugin_on_path(tmp_path: Path) -> Iterator[Path]:
    """A real installed-looking distribution with a `conv3n.blocks` entry point."""
    pkg = tmp_path / "acme_blocks"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "ping.py").write_text(
        "from conv3n_jupyter.blocks import Block, Output\n"
        "class Ping(Block):\n"
        "    type = 'acme/ping'\n"
        "    ports = ('pong',)\n"
        "    config_schema = {'type': 'object', 'properties': {'times': {'type': 'integer'}}, 'additionalProperties': False}\n"
        "    async def run(self, ctx):\n"
        "        return Output('pong' * ctx.config.get('times', 1), 'pong')\n"
    )
    dist = tmp_path / "acme_blocks-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-blocks\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[conv3n.blocks]\nacme/ping = acme_blocks.ping:Ping\n")
    sys.path.insert(0, str(tmp_path))
    saved = registry._entry_points_scanned
    registry._entry_points_scanned = False
    yield tmp_path
    sys.path.remove(str(tmp_path))
    registry.unregister("acme/ping")
    registry._entry_points_scanned = saved
    sys.modules.pop("acme_blocks.ping", None)
    sys.modules.pop("acme_blocks", None)


def test_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(registry.UnknownBlockError) as info:
        registry.get("std/nope")
    assert "std/http_request" in str(info.value)


def test_builtins_are_listed_without_being_imported() -> None:
    assert "std/transform" in registry.known_types()


async def test_third_party_block_from_an_entry_point_runs_in_a_workflow(
    plugin_on_path: Path,
) -> None:
    from conv3n_jupyter.engine import run
    from conv3n_jupyter.model import load

    assert "acme/ping" in registry.known_types()
    wf = load(
        {
            "name": "p",
            "nodes": {
                "p": {"type": "acme/ping", "config": {"times": 2}},
                "after": {"type": "std/noop"},
            },
            "edges": [{"source": "p", "target": "after", "sourceHandle": "pong"}],
        }
    )
    result = await run(wf)
    assert result["output"] == "pongpong"
    bad = {"name": "p", "nodes": {"p": {"type": "acme/ping", "config": {"times": "x"}}}}
    from conv3n_jupyter.model import validate

    assert [p.path for p in validate(bad)] == ["nodes.p.config.times"]
