"""The :class:`NodeContext` a block's ``run`` receives (see ``blocks/base.py`` for the contract)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ExpressionError as _ExpressionError
from ..expressions import Scope
from ..expressions import evaluate as _evaluate

if TYPE_CHECKING:
    from pathlib import Path

    from ..model import Node
    from .executor import Execution


class NodeContext:
    """One node run's view of the execution: resolved config, input, logs, shared resources."""

    __slots__ = (
        "_scope",
        "attempt",
        "block_type",
        "config",
        "execution",
        "input",
        "logs",
        "node",
        "node_id",
        "timeout",
    )

    def __init__(self, execution: Execution, node: Node, node_input: Any) -> None:
        self.execution = execution
        self.node = node
        self.node_id = node.id
        self.block_type = node.type
        self.input = node_input
        self.config: dict[str, Any] = node.config
        self.attempt = 0
        self.timeout: float | None = None
        self.logs: list[dict[str, Any]] = []
        self._scope: Scope | None = None

    # -- what the blocks read ---------------------------------------------------------
    @property
    def params(self) -> dict[str, Any]:
        return self.execution.params

    @property
    def trigger(self) -> dict[str, Any]:
        return self.execution.trigger

    @property
    def vars(self) -> dict[str, Any]:
        return self.execution.vars

    @property
    def execution_id(self) -> str:
        return self.execution.id

    @property
    def nodes(self) -> dict[str, dict[str, Any]]:
        """Results of the nodes upstream of this one (what ``$node`` may read), by id."""
        ex = self.execution
        results = ex.results
        return {i: results[i] for i in ex.plan.ancestors(ex.workflow, self.node_id) if i in results}

    @property
    def files_root(self) -> Path:
        return self.execution.runtime.files_root  # type: ignore[union-attr]

    @property
    def scope(self) -> Scope:
        scope = self._scope
        if scope is None:
            ex = self.execution
            rt = ex.runtime
            scope = self._scope = Scope(
                nodes=ex.results,
                input=self.input,
                params=ex.params,
                trigger=ex.trigger,
                vars=ex.vars,
                secrets=rt.secrets if rt is not None else {},
                env=rt.env if rt is not None else {},
                execution=ex.meta,
                workflow=ex.wf_meta,
            )
        return scope

    def resolve_config(self) -> dict[str, Any]:
        """The node's config with its ``{{ }}`` templates rendered (the same object when none)."""
        compiled = self.node.compiled
        if compiled is None:
            return self.node.config
        if compiled.constant:
            return compiled.resolve(None)  # type: ignore[arg-type,no-any-return]  # constant: no scope
        try:
            return compiled.resolve(self.scope)  # type: ignore[no-any-return]
        except _ExpressionError as exc:
            raise exc.locate(node=self.node_id) from None

    def evaluate(self, compiled: Any, **extra_roots: Any) -> Any:
        """Evaluate a compiled expression or template in this node's scope (``item=``, ``index=``)."""
        try:
            return _evaluate(compiled, self.scope, **extra_roots)
        except _ExpressionError as exc:
            raise exc.locate(node=self.node_id) from None

    def log(self, *parts: Any, level: str = "info") -> None:
        import time

        message = " ".join(p if isinstance(p, str) else repr(p) for p in parts)
        self.logs.append({"ts": time.time(), "level": level, "message": message})
        self.execution.emit("log", self.node_id, level=level, message=message)

    # -- shared resources -------------------------------------------------------------
    def http(self) -> Any:
        return self.execution.runtime.http()  # type: ignore[union-attr]

    def resource(self, name: str, factory: Any) -> Any:
        return self.execution.runtime.resource(name, factory)  # type: ignore[union-attr]

    async def run_workflow(
        self, workflow: Any, params: Any = None, *, key: str = "body"
    ) -> dict[str, Any]:
        return await self.execution.run_subworkflow(workflow, params, f"{self.node_id}.{key}")

    def __repr__(self) -> str:
        return f"<NodeContext {self.node_id} ({self.block_type}) attempt {self.attempt}>"
