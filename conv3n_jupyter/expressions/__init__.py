"""``{{ }}`` templates and safe expressions over a run's data.

A config string may hold ``{{ EXPR }}`` parts; a setting that takes an expression (such as
``std/condition``'s ``expression``) holds a bare ``EXPR``. Expressions are written in the
Common Expression Language (CEL) and read the run's data through roots: ``$input``,
``$node.ID`` (a node's result: ``.data``, ``.port``, ``.status``; ``$node["my-id"]`` or
``$node.my-id`` for ids with dashes), ``$params``, ``$trigger``, ``$vars``, ``$secrets``,
``$env``, ``$execution``, ``$workflow``, ``$now`` (one timestamp per run), and ``$item`` /
``$index`` inside ``std/loop``.

Beyond CEL's operators, macros (``filter``, ``map``, ``exists``, ``all``, ``exists_one``,
``has``) and built-ins (``size``, ``contains``, ``startsWith``, ``matches``, ``int``,
``double``, ``string``, ``timestamp``, ``duration`` …), expressions may call string functions
(``split``, ``replace``, ``trim``, ``lowerAscii``, ``join`` …), list functions (``sort``,
``distinct``, ``flatten``, ``slice``, ``reverse``, ``min``, ``max``, ``sum``), and the
``math.*``, ``sets.*``, ``lists.range``, ``base64.*``, ``url.*`` and ``json.decode`` groups.
A function without a dot may be called either way: ``"a,b".split(",")`` or
``split("a,b", ",")``.

``size()`` of a path and macros on a path (``$input.items.filter(i, i.price > 10)``, also
chained, as in ``$input.filter(x, x.ok).map(x, x.name)``) are computed in Python, in time that
grows linearly with the list; a macro over a computed list (``[1, 2].map(…)``,
``($input.a + $input.b).filter(…)``) is left to the CEL engine, whose time grows with the
square of the list's length. Both give the same results and errors.

CEL never mixes ``int`` and ``double`` in arithmetic: ``1 + 2.0`` is an error; convert
with ``double(x)`` or ``int(x)``. Comparisons across them work: ``1 < 2.5`` is true.

A template that is exactly one ``{{ EXPR }}`` gives the value with its type; otherwise each
value is spliced in as text (JSON for objects and lists). Maps keep the key order of the map
literal or input they come from, else their keys are sorted. Only the workflow's own config
is compiled: data containing ``{{`` stays text. See ``docs/expressions.md`` for the reference.

    >>> from conv3n_jupyter.expressions import Scope, compile_expression, compile_template
    >>> compile_template("Hello {{ $params.name }}!").render(Scope(params={"name": "Ada"}))
    'Hello Ada!'
    >>> compile_expression("$item.price * 2").evaluate(Scope(), item={"price": 21})
    42
"""

from __future__ import annotations

from ._expression import Expression, compile_expression
from ._json import to_json_value, to_text
from ._scope import Scope
from ._syntax import DEFAULT_LIMITS, Limits
from ._template import Template, compile_template, has_template
from ._value import CompiledValue, compile_value, evaluate

__all__ = [
    "DEFAULT_LIMITS",
    "CompiledValue",
    "Expression",
    "Limits",
    "Scope",
    "Template",
    "compile_expression",
    "compile_template",
    "compile_value",
    "evaluate",
    "has_template",
    "to_json_value",
    "to_text",
]
