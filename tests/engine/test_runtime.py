"""Runtime resources and the `$env` allow-list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conv3n_jupyter.engine import Runtime, run
from conv3n_jupyter.engine.runtime import allowed_env
from conv3n_jupyter.model import load


def test_env_allow_list_matches_names_and_globs_only() -> None:
    environ = {
        "HOME": "/root",
        "MY_APP_URL": "u",
        "MY_APP_KEY": "k",
        "AWS_SECRET": "s",
        "CONV3N_ENV_ALLOW": "HOME, MY_APP_*",
    }
    assert allowed_env(environ) == {"HOME": "/root", "MY_APP_URL": "u", "MY_APP_KEY": "k"}
    assert allowed_env({"AWS_SECRET": "s"}) == {}


async def test_env_root_sees_only_allowed_variables(monkeypatch: Any) -> None:
    monkeypatch.setenv("CONV3N_ENV_ALLOW", "GREETING")
    monkeypatch.setenv("GREETING", "hi")
    monkeypatch.setenv("SECRET_TOKEN", "do-not-leak")
    ok = load(
        {
            "name": "e",
            "nodes": {"a": {"type": "std/noop", "config": {"value": "{{ $env.GREETING }}"}}},
        }
    )
    assert (await run(ok))["output"] == "hi"
    leak = load(
        {
            "name": "e",
            "nodes": {"a": {"type": "std/noop", "config": {"value": "{{ $env.SECRET_TOKEN }}"}}},
        }
    )
    result = await run(leak)
    assert result["status"] == "error"
    assert "do-not-leak" not in str(result)


async def test_resources_are_made_once_and_closed(tmp_path: Path) -> None:
    closed: list[str] = []

    class Pool:
        async def aclose(self) -> None:
            closed.append("pool")

    rt = Runtime(files_root=tmp_path)
    first = rt.resource("pool", Pool)
    assert rt.resource("pool", Pool) is first
    client = rt.http()
    assert rt.http() is client
    await rt.aclose()
    assert closed == ["pool"]
    assert client.is_closed
    assert rt.files_root == tmp_path.resolve()


async def test_shared_http_client_keeps_no_cookies(http_server: str) -> None:
    wf = load(
        {
            "name": "cookies",
            "nodes": {
                "login": {"type": "std/http_request", "config": {"url": f"{http_server}/cookie"}},
                "next": {
                    "type": "std/http_request",
                    "config": {"url": f"{http_server}/cookie"},
                    "depends_on": ["login"],
                },
            },
        }
    )
    async with Runtime() as rt:
        result = await run(wf, runtime=rt)
        assert "set-cookie" in result["nodes"]["login"]["data"]["headers"]
        assert result["output"]["body"] == {"received": None}  # not sent back by the shared pool
        assert len(rt.http().cookies.jar) == 0
