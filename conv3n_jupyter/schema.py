"""The JSON Schema (draft 2020-12) of the whole workflow format, with every block's config.

Editors use it to check a ``*.conv3n.json`` file while it is typed: the node ``type`` is an
enum of the known blocks, and each node's ``config`` is checked against the schema of the block
it names (``if``/``then`` on ``type``). The model's own validation still goes further (edges
between existing nodes, ports, cycles, expressions); this schema covers what JSON Schema can say.

    >>> from conv3n_jupyter.schema import workflow_schema
    >>> schema = workflow_schema()
    >>> schema["properties"]["nodes"]["propertyNames"]["pattern"]
    '^[A-Za-z_][A-Za-z0-9_-]*$'

In VS Code, map the schema to the files in ``settings.json``::

    "json.schemas": [{"fileMatch": ["*.conv3n.json"], "url": "./conv3n.schema.json"}]
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from .model import ID_RE, PARAM_TYPES, TRIGGER_TYPES

if TYPE_CHECKING:
    from .blocks.base import Block

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "urn:conv3n:workflow:1"

_X_KEYS = {"^x-": {"description": "custom key, preserved untouched (editor state and the like)"}}
_NUMBER = r"(\d+(\.\d*)?|\.\d+)"
_UNIT = "([mM][sS]|[sS]|[mM]|[hH]|[dD])"
DURATION_PATTERN = rf"^\s*({_NUMBER}|({_NUMBER}\s*{_UNIT}\s*)+)\s*$"
_CRON_PATTERN = r"^\s*\S+(\s+\S+){4,5}\s*$"


def load_blocks(types: list[str] | None = None) -> tuple[dict[str, Block], dict[str, str]]:
    """Load the given (default: every known) block types: ``(blocks by type, errors by type)``.

    A block whose module cannot be imported (a missing optional dependency, a broken plugin)
    lands in the errors with the reason instead of failing the whole listing.
    """
    from .blocks import registry

    blocks: dict[str, Block] = {}
    errors: dict[str, str] = {}
    for block_type in types if types is not None else registry.known_types():
        try:
            blocks[block_type] = registry.get(block_type)
        except registry.UnknownBlockError as exc:
            errors[block_type] = str(exc)
        except (ImportError, AttributeError) as exc:
            errors[block_type] = f"cannot be loaded: {exc}"
    return blocks, errors


def block_config_schema(block: Block) -> dict[str, Any]:
    """The config schema of one block, standalone (with ``$schema``, title and description)."""
    schema = copy.deepcopy(block.config_schema)
    out: dict[str, Any] = {"$schema": DRAFT}
    out["title"] = schema.pop("title", None) or f"{block.type} config"
    description = schema.pop("description", None) or block.description
    if description:
        out["description"] = description
    out.update(schema)
    return out


def workflow_schema(blocks: dict[str, Block] | None = None) -> dict[str, Any]:
    """The JSON Schema of a workflow file, with the config schemas of ``blocks`` (default: all).

    Blocks that cannot be loaded are left out (see :func:`load_blocks` for the reasons), so a
    node naming one fails the ``type`` enum, as it fails validation.
    """
    if blocks is None:
        blocks, _ = load_blocks()
    types = sorted(blocks)
    defs: dict[str, Any] = {
        "duration": _duration(),
        "param": _param(),
        "retry": _retry(),
        "node": _node(types, with_id=False),
        "list_node": _node(types, with_id=True),
        "edge": _edge(),
        "trigger": _trigger(),
        "group": _group(),
        "config": _config(),
    }
    branches = []
    used: set[str] = set(defs)
    for block_type in types:
        name = _def_name(block_type, used)
        defs[name] = _embedded(blocks[block_type])
        branches.append(
            {
                "if": {"properties": {"type": {"const": block_type}}, "required": ["type"]},
                "then": {"properties": {"config": {"$ref": f"#/$defs/{name}"}}},
            }
        )
    defs["block_config"] = {
        "description": "each node's config is checked against the schema of its block type",
        "allOf": branches,
    }
    id_pattern = ID_RE.pattern
    return {
        "$schema": DRAFT,
        "$id": SCHEMA_ID,
        "title": "conv3n workflow",
        "description": "A conv3n workflow (format 1): nodes running blocks, joined by edges",
        "type": "object",
        "required": ["name", "nodes"],
        "properties": {
            "conv3n": {"const": "1", "default": "1", "description": "format version"},
            "id": {
                "type": "string",
                "description": "stable id; the store assigns one when missing",
            },
            "name": {
                "type": "string",
                "minLength": 1,
                "pattern": r"\S",
                "description": "human name",
            },
            "description": {"type": "string"},
            "params": {
                "type": "object",
                "description": "declared inputs; one without a default is required at run time",
                "propertyNames": {"pattern": id_pattern},
                "additionalProperties": {"$ref": "#/$defs/param"},
            },
            "nodes": {
                # Object keywords apply only to the map shape, array keywords only to the list
                # shape; unlike a oneOf, errors then point into the node that is wrong.
                "description": "the nodes: an object by id, or a list of nodes with 'id'",
                "type": ["object", "array"],
                "minProperties": 1,
                "propertyNames": {"pattern": id_pattern},
                "additionalProperties": {"$ref": "#/$defs/node"},
                "minItems": 1,
                "items": {"$ref": "#/$defs/list_node"},
            },
            "edges": {"type": "array", "items": {"$ref": "#/$defs/edge"}},
            "triggers": {
                "type": "array",
                "description": "what starts the workflow besides a manual run",
                "items": {"$ref": "#/$defs/trigger"},
            },
            "groups": {
                "type": "object",
                "description": "error boundaries by name",
                "additionalProperties": {"$ref": "#/$defs/group"},
            },
            "config": {"$ref": "#/$defs/config"},
        },
        "patternProperties": _X_KEYS,
        "additionalProperties": False,
        "$defs": defs,
    }


# -- parts ----------------------------------------------------------------------------------


def _def_name(block_type: str, used: set[str]) -> str:
    base = "config_" + re.sub(r"[^A-Za-z0-9_-]", "_", block_type)
    name, n = base, 1
    while name in used:
        n += 1
        name = f"{base}_{n}"
    used.add(name)
    return name


def _embedded(block: Block) -> dict[str, Any]:
    schema = copy.deepcopy(block.config_schema)
    schema.pop("$schema", None)
    schema.setdefault("title", block.title or block.type)
    if block.description:
        schema.setdefault("description", block.description)
    if _has_ref(schema):
        # Its own base URI keeps the block's "#/..." references pointing into the block schema.
        schema.setdefault("$id", f"urn:conv3n:block:{block.type}")
    return schema


def _has_ref(value: Any) -> bool:
    if isinstance(value, dict):
        return "$ref" in value or "$dynamicRef" in value or any(_has_ref(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_ref(v) for v in value)
    return False


def _duration() -> dict[str, Any]:
    return {
        "description": "milliseconds as a number, or a string like '200ms', '30s', '1m', '1h30m'",
        "anyOf": [
            {"type": "number", "minimum": 0},
            {"type": "string", "pattern": DURATION_PATTERN},
        ],
    }


def _param() -> dict[str, Any]:
    type_name = {"enum": list(PARAM_TYPES)}
    return {
        "type": "object",
        "properties": {
            "type": {
                "description": "JSON Schema type name(s); default 'string'",
                "default": "string",
                "anyOf": [type_name, {"type": "array", "items": type_name, "minItems": 1}],
            },
            "default": {"description": "value used when the run does not give one"},
            "description": {"type": "string"},
            "title": {"type": "string"},
            "enum": {"type": "array", "description": "the allowed values"},
        },
        "patternProperties": _X_KEYS,
        "additionalProperties": False,
    }


def _retry() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "max_attempts": {"type": "integer", "minimum": 1, "maximum": 100, "default": 3},
            "backoff": {"enum": ["exponential", "linear", "fixed"], "default": "exponential"},
            "initial_delay": {"$ref": "#/$defs/duration"},
            "max_delay": {"$ref": "#/$defs/duration"},
            "jitter": {"type": "boolean", "default": True},
        },
        "additionalProperties": False,
    }


def _node(types: list[str], *, with_id: bool) -> dict[str, Any]:
    id_ref = {"type": "string", "pattern": ID_RE.pattern}
    properties: dict[str, Any] = {}
    if with_id:
        properties["id"] = {**id_ref, "description": "the node id"}
    properties.update(
        {
            "type": {"type": "string", "enum": types, "description": "block type"},
            "config": {
                "type": "object",
                "description": "the block's settings; strings may hold {{ }} expressions",
            },
            "depends_on": {
                "description": "shorthand for plain edges from these nodes",
                "anyOf": [id_ref, {"type": "array", "items": id_ref}],
            },
            "retry": {"$ref": "#/$defs/retry"},
            "timeout": {"$ref": "#/$defs/duration", "description": "per attempt"},
            "on_error": {"enum": ["stop", "continue"], "default": "stop"},
            "fallback": {**id_ref, "description": "node run instead after the last failed attempt"},
            "breakpoint": {"enum": [True, False, "before", "after"], "default": False},
            "disabled": {"type": "boolean", "default": False},
            "position": {
                "type": "object",
                "description": "editor layout only",
                "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                "required": ["x", "y"],
            },
            "notes": {"type": "string"},
        }
    )
    return {
        "type": "object",
        "required": ["id", "type"] if with_id else ["type"],
        "properties": properties,
        "patternProperties": _X_KEYS,
        "additionalProperties": False,
        "allOf": [{"$ref": "#/$defs/block_config"}],
    }


def _edge() -> dict[str, Any]:
    handle = {"type": ["string", "null"]}
    return {
        "type": "object",
        "required": ["source", "target"],
        "properties": {
            "id": handle,
            "source": {"type": "string", "description": "node id"},
            "target": {"type": "string", "description": "node id"},
            "sourceHandle": {**handle, "description": "fire only when the source emits this port"},
            "targetHandle": handle,
        },
        "patternProperties": _X_KEYS,
        "additionalProperties": False,
    }


_TRIGGER_PROPERTIES: dict[str, dict[str, Any]] = {
    "manual": {},
    "webhook": {
        "path": {"type": "string"},
        "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE"], "default": "POST"},
        "schema": {"type": ["object", "boolean"], "description": "JSON Schema for the body"},
        "respond": {
            "type": "string",
            "description": "'immediately' (202 with the execution id), 'last_node', or a node id",
        },
    },
    "cron": {
        "expression": {"type": "string", "pattern": _CRON_PATTERN, "description": "5 or 6 fields"},
        "timezone": {"type": "string"},
    },
    "file": {
        "path": {"type": "string", "description": "a folder"},
        "events": {
            "type": "array",
            "items": {"enum": ["created", "modified", "deleted"]},
        },
        "pattern": {"type": "string", "description": "glob"},
    },
}
_TRIGGER_REQUIRED = {"webhook": ["path"], "cron": ["expression"], "file": ["path"]}


def _trigger() -> dict[str, Any]:
    branches = []
    for name, props in _TRIGGER_PROPERTIES.items():
        then: dict[str, Any] = {
            "properties": {
                "type": {"const": name},
                "id": {"type": "string"},
                "enabled": {"type": "boolean", "default": True},
                **props,
            },
            "patternProperties": _X_KEYS,
            "additionalProperties": False,
        }
        if name in _TRIGGER_REQUIRED:
            then["required"] = _TRIGGER_REQUIRED[name]
        branches.append(
            {"if": {"properties": {"type": {"const": name}}, "required": ["type"]}, "then": then}
        )
    return {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": [t for t in TRIGGER_TYPES if t in _TRIGGER_PROPERTIES]}},
        "allOf": branches,
    }


def _group() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["nodes"],
        "properties": {
            "nodes": {"type": "array", "items": {"type": "string"}},
            "on_error": {"type": "string", "description": "node run with the error as $input"},
        },
        "patternProperties": _X_KEYS,
        "additionalProperties": False,
    }


def _config() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "max_concurrent_nodes": {"type": "integer", "minimum": 1, "default": 8},
            "timeout": {"$ref": "#/$defs/duration", "description": "of the whole execution"},
            "pin": {
                "type": "object",
                "description": "pinned node outputs, used by debug and partial runs",
                "additionalProperties": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {"data": {}, "port": {"type": "string"}},
                },
            },
        },
        "patternProperties": _X_KEYS,
        "additionalProperties": False,
    }
