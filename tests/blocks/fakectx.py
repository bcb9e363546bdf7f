"""A small, generic :class:`~conv3n_jupyter.blocks.base.NodeContext` for unit-testing blocks.

``FakeContext`` hands a block its config the way the engine does: given the ``block``, the
block's ``expression_paths`` and ``deferred_paths`` are compiled (so ``ctx.evaluate`` works on
them) and other ``{{ }}`` templates are resolved against the fake's own scope (``input``,
``params``, ``vars``, ``nodes`` (results by node id), ``secrets``, ``env``).

    ctx = FakeContext(Condition(), {"expression": "$input.n > 1"}, input={"n": 2})
    out = await Condition().run(ctx)

Sub-workflows run through a Python callback: ``run_workflow=lambda wf, params, key: {...}``
(sync or async); every call is recorded in ``ctx.workflow_calls``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from conv3n_jupyter import expressions
from conv3n_jupyter.errors import ExpressionError

RunWorkflow = Callable[[Any, dict[str, Any], str], "dict[str, Any] | Awaitable[dict[str, Any]]"]


# -- the context -------------------------------------------------------------------------------


class FakeContext:
    """A NodeContext built from plain values; see the module docstring."""

    def __init__(
        self,
        block: Any = None,
        config: Mapping[str, Any] | None = None,
        input: Any = None,
        *,
        node_id: str = "node",
        block_type: str | None = None,
        attempt: int = 1,
        params: Mapping[str, Any] | None = None,
        trigger: Mapping[str, Any] | None = None,
        vars: dict[str, Any] | None = None,
        nodes: Mapping[str, Any] | None = None,
        secrets: Mapping[str, Any] | None = None,
        env: Mapping[str, Any] | None = None,
        execution_id: str = "exec-test",
        files_root: Path | None = None,
        timeout: float | None = None,
        http_client: httpx.AsyncClient | None = None,
        run_workflow: RunWorkflow | None = None,
        resources: dict[str, Any] | None = None,
    ) -> None:
        self.block = block
        self.node_id = node_id
        self.block_type = block_type or getattr(block, "type", "test/block")
        self.input = input
        self.attempt = attempt
        self.params = dict(params or {})
        self.trigger = dict(trigger or {})
        self.vars = vars if vars is not None else {}
        self.nodes = dict(nodes or {})
        self.secrets = dict(secrets or {})
        self.env = dict(env or {})
        self.execution_id = execution_id
        self.files_root = files_root or Path.cwd()
        self.timeout = timeout
        self.logs: list[tuple[str, str]] = []
        self.workflow_calls: list[dict[str, Any]] = []
        self.resources = resources if resources is not None else {}
        self._http_client = http_client
        self._own_client: httpx.AsyncClient | None = None
        self._run_workflow = run_workflow
        self._scope: expressions.Scope | None = None
        self.config = self._compile_config(dict(config or {}))

    def _compile_config(self, config: dict[str, Any]) -> dict[str, Any]:
        compiled = expressions.compile_value(
            config,
            node_ids=set(self.nodes),
            expression_paths=getattr(self.block, "expression_paths", ()),
            deferred_paths=getattr(self.block, "deferred_paths", ()),
            opaque_paths=getattr(self.block, "opaque_paths", ()),
        )
        if compiled.errors:
            key, error = compiled.errors[0]
            raise error.locate(node=self.node_id, key=key)
        try:
            return compiled.resolve(self.scope)  # type: ignore[no-any-return]
        except ExpressionError as exc:
            raise exc.locate(node=self.node_id) from None

    @property
    def scope(self) -> expressions.Scope:
        """The node's expression scope, built on first use from the fields above."""
        if self._scope is None:
            self._scope = expressions.Scope(
                nodes=self.nodes,
                input=self.input,
                params=self.params,
                trigger=self.trigger,
                vars=self.vars,
                secrets=self.secrets,
                env=self.env,
                execution={"id": self.execution_id},
                workflow={"id": "wf-test", "name": "test"},
            )
        return self._scope

    def log(self, *parts: Any, level: str = "info") -> None:
        self.logs.append((level, " ".join(str(p) for p in parts)))

    def evaluate(self, compiled: Any, **extra_roots: Any) -> Any:
        # Expression, Template or CompiledValue (a deferred object or list); else unchanged.
        try:
            return expressions.evaluate(compiled, self.scope, **extra_roots)
        except ExpressionError as exc:
            raise exc.locate(node=self.node_id) from None

    def http(self) -> httpx.AsyncClient:
        if self._http_client is not None:
            return self._http_client
        if self._own_client is None:
            self._own_client = httpx.AsyncClient()
        return self._own_client

    async def run_workflow(
        self, workflow: Any, params: Mapping[str, Any] | None = None, *, key: str = "body"
    ) -> dict[str, Any]:
        call = {"workflow": workflow, "params": dict(params or {}), "key": key}
        self.workflow_calls.append(call)
        if self._run_workflow is None:
            raise AssertionError("this FakeContext was built without run_workflow=")
        result = self._run_workflow(workflow, call["params"], key)
        if inspect.isawaitable(result):
            result = await result
        return result

    def resource(self, name: str, factory: Any) -> Any:
        if name not in self.resources:
            self.resources[name] = factory()
        return self.resources[name]

    async def aclose(self) -> None:
        """Close the HTTP client this context created itself (a given one is left open)."""
        if self._own_client is not None:
            await self._own_client.aclose()
            self._own_client = None

    async def __aenter__(self) -> FakeContext:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<FakeContext {self.node_id} ({self.block_type})>"
