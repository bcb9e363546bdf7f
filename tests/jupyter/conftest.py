"""Fixtures for the notebook layer: small workflows built in memory."""

from __future__ import annotations

from typing import Any

import pytest

from conv3n_jupyter.model import Workflow, parse


def chain(n: int, *, delay: str | None = None) -> dict[str, Any]:
    """A linear workflow of ``n`` transform nodes that each add one to ``count``."""
    nodes: dict[str, Any] = {
        "n0": {
            "type": "std/transform",
            "config": {"operations": [{"type": "set", "values": {"count": 0}}]},
        }
    }
    for i in range(1, n):
        nodes[f"n{i}"] = {
            "type": "std/transform",
            "depends_on": [f"n{i - 1}"],
            "config": {
                "operations": [{"type": "set", "values": {"count": "{{ $item.count + 1 }}"}}]
            },
        }
    if delay is not None:
        nodes["wait"] = {
            "type": "std/delay",
            "depends_on": [f"n{n - 1}"],
            "config": {"duration": delay},
        }
    return {"conv3n": "1", "name": f"chain{n}", "nodes": nodes}


def diamond() -> dict[str, Any]:
    """start → (left, right) → join, plus a branch on a condition."""
    return {
        "conv3n": "1",
        "name": "diamond",
        "params": {"x": {"type": "integer", "default": 2}},
        "nodes": {
            "start": {
                "type": "std/transform",
                "config": {"operations": [{"type": "set", "values": {"x": "{{ $params.x }}"}}]},
            },
            "left": {
                "type": "std/transform",
                "depends_on": ["start"],
                "config": {"operations": [{"type": "set", "values": {"l": "{{ $item.x * 10 }}"}}]},
            },
            "right": {
                "type": "std/transform",
                "depends_on": ["start"],
                "config": {"operations": [{"type": "set", "values": {"r": "{{ $item.x + 1 }}"}}]},
            },
            "join": {
                "type": "std/transform",
                "depends_on": ["left", "right"],
                "config": {
                    "operations": [
                        {"type": "set", "values": {"sum": "{{ $item.left.l + $item.right.r }}"}}
                    ]
                },
            },
        },
    }


@pytest.fixture
def diamond_wf() -> Workflow:
    return parse(diamond())


def fan(n: int, delay: str = "5ms") -> dict[str, Any]:
    """One start node, ``n`` parallel delays, one join."""
    nodes: dict[str, Any] = {"start": {"type": "std/noop"}}
    for i in range(n):
        nodes[f"d{i}"] = {
            "type": "std/delay",
            "depends_on": ["start"],
            "config": {"duration": delay},
        }
    nodes["join"] = {"type": "std/noop", "depends_on": [f"d{i}" for i in range(n)]}
    return {
        "conv3n": "1",
        "name": f"fan{n}",
        "nodes": nodes,
        "config": {"max_concurrent_nodes": 256},
    }
