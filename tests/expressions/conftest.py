"""The ``scope`` fixture: every root set (see :func:`helpers.full_scope`)."""

from __future__ import annotations

import pytest

from conv3n_jupyter.expressions import Scope

from .helpers import full_scope


@pytest.fixture
def scope() -> Scope:
    return full_scope()
