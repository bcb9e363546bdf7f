"""The roots an expression reads (``$input``, ``$node`` …), bundled per node run."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ._translate import ROOTS


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<unset>"


UNSET: Any = _Unset()
ATTRS = {root: root for root in ROOTS} | {"node": "nodes"}
LOOP_ONLY = {"item", "index"}


class Scope:
    """The roots an expression sees; built once per node run.

    ``nodes`` maps node id to result (``{"status", "port", "data"}``); only the nodes an
    expression references are ever handed to CEL. ``now`` defaults to the current UTC time,
    taken once at first use and shared with child scopes. Treat the values as read-only:
    results may share structure with them.

        scope = Scope(nodes=results, input=data, params={"city": "Berlin"})
        compile_expression("$item.qty > 0").evaluate(scope, item={"qty": 2})
    """

    __slots__ = (
        "_now",
        "env",
        "execution",
        "index",
        "input",
        "item",
        "nodes",
        "params",
        "secrets",
        "trigger",
        "vars",
        "workflow",
    )

    def __init__(
        self,
        *,
        nodes: Mapping[str, Any] | None = None,
        input: Any = None,
        params: Mapping[str, Any] | None = None,
        trigger: Mapping[str, Any] | None = None,
        vars: Mapping[str, Any] | None = None,
        secrets: Mapping[str, Any] | None = None,
        env: Mapping[str, Any] | None = None,
        execution: Mapping[str, Any] | None = None,
        workflow: Mapping[str, Any] | None = None,
        now: datetime | None = None,
        item: Any = UNSET,
        index: Any = UNSET,
    ) -> None:
        self.nodes = {} if nodes is None else nodes
        self.input = input
        self.params = {} if params is None else params
        self.trigger = {} if trigger is None else trigger
        self.vars = {} if vars is None else vars
        self.secrets = {} if secrets is None else secrets
        self.env = {} if env is None else env
        self.execution = {} if execution is None else execution
        self.workflow = {} if workflow is None else workflow
        self.item = item
        self.index = index
        self._now: list[datetime | None] = [now]

    @property
    def now(self) -> datetime:
        """``$now``: fixed at first use, so every expression of a run sees the same instant."""
        cell = self._now
        value = cell[0]
        if value is None:
            value = cell[0] = datetime.now(timezone.utc)
        return value

    def child(self, **overrides: Any) -> Scope:
        """A copy with some roots replaced, e.g. ``scope.child(item=x, index=i)``."""
        new = Scope.__new__(Scope)
        for name in Scope.__slots__:
            setattr(new, name, getattr(self, name))
        for name, value in overrides.items():
            if name == "now":
                new._now = [value]
                continue
            attr = "nodes" if name == "nodes" else ATTRS.get(name)
            if attr is None:
                raise TypeError(f"unknown root {name!r} (known: {', '.join(ROOTS)})")
            setattr(new, attr, value)
        return new

    def __repr__(self) -> str:
        shown = [f"{len(self.nodes)} nodes"]
        shown += [f"{r}=…" for r in ("item", "index") if getattr(self, r) is not UNSET]
        return f"<Scope {' '.join(shown)}>"
