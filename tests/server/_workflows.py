"""Workflow documents used by the API tests."""

from __future__ import annotations

from typing import Any


def hello(name: str = "hello", wid: str | None = None) -> dict[str, Any]:
    """One transform greeting ``$params.name``."""
    wf: dict[str, Any] = {
        "name": name,
        "params": {"name": {"type": "string", "default": "World"}},
        "nodes": {
            "greet": {
                "type": "std/transform",
                "config": {
                    "input": "{{ $params }}",
                    "operations": [
                        {"type": "set", "values": {"greeting": "Hello, {{ $item.name }}!"}},
                        {"type": "pick", "fields": ["greeting"]},
                    ],
                },
            }
        },
    }
    if wid is not None:
        wf["id"] = wid
    return wf


def delay(duration: str, name: str = "sleepy") -> dict[str, Any]:
    """``wait`` (a std/delay) then ``done`` (a noop)."""
    return {
        "name": name,
        "nodes": {
            "wait": {"type": "std/delay", "config": {"duration": duration}},
            "done": {"type": "std/noop"},
        },
        "edges": [{"source": "wait", "target": "done"}],
    }


def fetch(base: str, first_key: str, flaky_key: str, fail: int = 1) -> dict[str, Any]:
    """``first`` calls a counter URL, then ``fetch`` calls one that fails ``fail`` times."""
    return {
        "name": "fetch-twice",
        "nodes": {
            "first": {
                "type": "std/http_request",
                "config": {"url": f"{base}/flaky/{first_key}?fail=0"},
            },
            "fetch": {
                "type": "std/http_request",
                "config": {
                    "url": f"{base}/flaky/{flaky_key}?fail={fail}",
                    "fail_on_status": ["5xx"],
                },
            },
        },
        "edges": [{"source": "first", "target": "fetch"}],
    }
