"""The one error hierarchy of conv3n-jupyter.

    Conv3nError
    ├── WorkflowValidationError   (also a ValueError; .problems: list[Problem])
    ├── ExpressionError           (.node, .key, .expression, .reason)
    ├── BlockError                (.block_type, .node, .retryable)
    │   ├── HTTPBlockError
    │   ├── CodeError             (.error_type: SyntaxError|ImportError|RuntimeError|TimeoutError, .user_stack)
    │   └── FileAccessError
    ├── NodeTimeout               (a node attempt ran past its timeout)
    ├── StoreError
    ├── NotFound
    └── AlreadyExists

Control signals are not errors: ``ExecutionCancelled`` derives from ``BaseException`` so that a
user's ``except Exception`` cannot swallow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class Conv3nError(Exception):
    """Base class of every error conv3n-jupyter raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One validation problem: where (JSON path, node, key) and why."""

    path: str
    reason: str
    node: str | None = None
    key: str | None = None

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "node": self.node, "key": self.key, "reason": self.reason}


class WorkflowValidationError(Conv3nError, ValueError):
    """A workflow is invalid; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        n = len(self.problems)
        head = f"{where}{n} problem{'s' if n != 1 else ''} in workflow"
        super().__init__(head + "".join(f"\n  - {p}" for p in self.problems))


class ExpressionError(Conv3nError):
    """An expression failed to compile or to evaluate.

    The message names the node, the config key, the expression and the reason.
    """

    def __init__(
        self,
        reason: str,
        *,
        expression: str | None = None,
        node: str | None = None,
        key: str | None = None,
    ) -> None:
        self.reason = reason
        self.expression = expression
        self.node = node
        self.key = key
        super().__init__(self._format())

    def _format(self) -> str:
        parts = []
        if self.node is not None:
            parts.append(f"node {self.node!r}")
        if self.key is not None:
            parts.append(f"key {self.key!r}")
        if self.expression is not None:
            parts.append(f"expression {self.expression!r}")
        where = ", ".join(parts)
        return f"{where}: {self.reason}" if where else self.reason

    def locate(self, node: str | None = None, key: str | None = None) -> ExpressionError:
        """Return the same error with node and key filled in (where not already set)."""
        return ExpressionError(
            self.reason,
            expression=self.expression,
            node=self.node if self.node is not None else node,
            key=self.key if self.key is not None else key,
        )


class BlockError(Conv3nError):
    """A block failed at run time. ``retryable`` tells the engine whether a retry may help."""

    def __init__(
        self,
        message: str,
        *,
        block_type: str | None = None,
        node: str | None = None,
        retryable: bool = True,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.message = message
        self.block_type = block_type
        self.node = node
        self.retryable = retryable
        self.details = details or {}
        super().__init__(message)

    def __str__(self) -> str:
        if self.node:
            return f"node {self.node!r} ({self.block_type}): {self.message}"
        return self.message


class HTTPBlockError(BlockError):
    """A network-level failure of ``std/http_request`` (connect, read, TLS, ...)."""


class FileAccessError(BlockError):
    """A ``std/file`` path was refused (outside the root) or an operation failed."""


class CodeError(BlockError):
    """User code in ``custom/code`` failed; ``error_type`` and ``user_stack`` use the user's lines."""

    def __init__(
        self,
        message: str,
        *,
        error_type: str,
        user_stack: str = "",
        line: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.error_type = error_type
        self.user_stack = user_stack
        self.line = line
        kwargs.setdefault("details", {"error_type": error_type, "line": line, "stack": user_stack})
        super().__init__(message, **kwargs)


class NodeTimeout(Conv3nError):
    """A node attempt did not finish within its timeout."""


class StoreError(Conv3nError):
    """The store failed."""


class InvalidCursor(StoreError, ValueError):
    """A page cursor that the store did not hand out."""


class NotFound(Conv3nError):
    """A workflow, execution or other named thing does not exist."""


class AlreadyExists(Conv3nError):
    """A thing with that id already exists."""


class ExecutionCancelled(BaseException):
    """The execution was cancelled (Ctrl-C, API cancel, timeout of the whole execution)."""
