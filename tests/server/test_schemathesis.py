"""Property-based API test: inputs generated from the OpenAPI document never get a 5xx answer.

The document comes from the app itself (at collection time, so that each operation is its
own test); the requests go to the live server of the ``api`` fixture.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from conv3n_jupyter.server.app import create_app
from conv3n_jupyter.settings import load_settings

from .conftest import Api

_SPEC = create_app(load_settings(environ={}, config_path=None, overrides={"workers": 0})).openapi()
SCHEMA = schemathesis.openapi.from_dict(_SPEC)
OPERATIONS = {op.label: op for op in (r.ok() for r in SCHEMA.get_all_operations())}


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_no_server_errors(api: Api, label: str) -> None:
    """Any generated request to this operation answers below 500, errors in the JSON shape."""
    operation = OPERATIONS[label]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        response = case.call(base_url=api.url, timeout=30)
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
        if response.status_code >= 400 and label != "GET /metrics":
            assert set(response.json()["error"]) == {"code", "message", "details"}

    check()
