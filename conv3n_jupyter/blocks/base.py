"""The block contract: config JSON Schema, output ports, expression paths and ``async run``.

A block is one module defining one subclass of :class:`Block`. The engine resolves the node's
``{{ }}`` templates before calling ``run``, except at the paths a block declares:

* ``expression_paths`` hold bare expressions (``std/condition.expression``); they are compiled
  when the workflow loads and reach ``run`` as :class:`~conv3n_jupyter.expressions.Expression`
  objects, evaluated by the block with ``ctx.evaluate(expr, item=..., index=...)``.
* ``deferred_paths`` hold templates the block renders itself, per item (``std/transform`` set
  values); they reach ``run`` as compiled templates (or the plain value when they hold no
  ``{{ }}``), rendered with ``ctx.evaluate``.
* ``opaque_paths`` are left alone entirely (an inline sub-workflow of ``std/loop``).

Paths are dotted; ``*`` matches any key or list index: ``"operations.*.expression"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

    from ..errors import Problem


class Output:
    """What a block's ``run`` returns: the data and the port it leaves on.

    A block may also return a plain value, which means ``Output(value, "default")``.
    """

    __slots__ = ("data", "port")

    def __init__(self, data: Any = None, port: str = "default") -> None:
        self.data = data
        self.port = port

    def __repr__(self) -> str:
        return f"Output(port={self.port!r}, data={self.data!r:.80})"


class NodeContext(Protocol):
    """What the engine hands a block's ``run``: the node, its resolved config and its input."""

    node_id: str
    block_type: str
    config: dict[str, Any]
    input: Any
    attempt: int
    timeout: float | None  # the attempt's time limit in seconds, None when unlimited

    @property
    def params(self) -> Mapping[str, Any]: ...
    @property
    def trigger(self) -> Mapping[str, Any]: ...
    @property
    def vars(self) -> dict[str, Any]: ...
    @property
    def execution_id(self) -> str: ...
    @property
    def files_root(self) -> Path: ...

    def log(self, *parts: Any, level: str = "info") -> None:
        """Add a line to the node's logs (and to the event stream)."""

    def evaluate(self, compiled: Any, **extra_roots: Any) -> Any:
        """Evaluate a compiled expression or template in this node's scope.

        ``extra_roots`` add or override roots: ``item=x, index=i`` give ``$item``/``$index``.
        A plain (non-compiled) value is returned unchanged.
        """

    def http(self) -> httpx.AsyncClient:
        """The process's shared, pooled HTTP client."""

    async def run_workflow(
        self, workflow: Any, params: Mapping[str, Any] | None = None, *, key: str = "body"
    ) -> dict[str, Any]:
        """Run a sub-workflow (a Workflow, an inline dict or a path) and return its result dict."""

    def resource(self, name: str, factory: Any) -> Any:
        """A per-runtime shared resource (code worker pool, DB pools), created once by ``factory()``."""


class Block:
    """Base class of all blocks. Subclasses set the class attributes and implement ``run``."""

    type: ClassVar[str]
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    icon: ClassVar[str] = "●"
    config_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    ports: ClassVar[tuple[str, ...]] = ("default",)
    expression_paths: ClassVar[tuple[str, ...]] = ()
    deferred_paths: ClassVar[tuple[str, ...]] = ()
    opaque_paths: ClassVar[tuple[str, ...]] = ()
    eager: ClassVar[bool] = False
    """True for blocks that usually finish without awaiting anything (pure data blocks). The
    engine then starts them synchronously instead of as a Task, which is much cheaper; such a
    block must not rely on ``asyncio.current_task()`` before its first ``await``."""

    @classmethod
    def output_ports(cls, config: Mapping[str, Any]) -> tuple[str, ...]:
        """The ports a node with this config may emit (``std/condition`` adds its cases' ports)."""
        return cls.ports

    @classmethod
    def check(cls, config: Mapping[str, Any], path: str) -> list[Problem]:
        """Validation beyond the JSON Schema (e.g. compile user code); ``path`` is the config's."""
        return []

    async def run(self, ctx: NodeContext) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Block {self.type}>"
