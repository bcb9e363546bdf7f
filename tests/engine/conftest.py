from __future__ import annotations

from collections.abc import Iterator

import pytest

from conv3n_jupyter.blocks import register, unregister

from .testblocks import RECORDER, Probe


@pytest.fixture(autouse=True)
def probe_block() -> Iterator[None]:
    """Register `test/probe` for the test and restore the registry afterwards."""
    register(Probe)
    RECORDER.reset()
    yield
    unregister("test/probe")
