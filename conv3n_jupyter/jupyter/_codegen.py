"""The code of a ``custom/code`` node made from one notebook cell.

:func:`node_code` turns a cell, as analysed by :mod:`conv3n_jupyter.jupyter._flow_worker`, into
a ``main(input, ctx)`` that runs it as a notebook would run it at top level:

- the cell's names are declared ``global`` in ``main``, so functions the cell defines see them
  as globals (``global`` lines of the cell itself are dropped, ``import *`` is hoisted out);
- the names the cell reads from earlier cells are bound from those nodes' data
  (``ctx.node("cell_1")["df"]``), and the definitions it uses from them (functions, classes,
  imports) are repeated in front of the cell;
- ``main`` returns the names later cells read, plus the cell's other names and its displayed
  value under ``_`` (as JSON, else as their ``repr``, via ``_conv3n_shown``).

Code calling ``get_ipython()`` (what IPython turns ``!cmd``, ``x = !cmd``, ``%%bash`` and
display magics into) gets a small stand-in shell that runs the commands through ``subprocess``
(``$name`` and ``{name}`` expanded from the cell's names) and ignores display magics.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["node_code"]

_INDENT = "    "
_GLOBAL_LINE = re.compile(r"^global\s+[\w\s,]+(#.*)?$")
_SHOWN = '''

def _conv3n_shown(names, *keys):
    """The cell's other names: as JSON when they are, else as the text a notebook shows."""
    import json

    out = {}
    for key in keys:
        if key not in names or (key == "_" and names[key] is None):
            continue
        value = names[key]
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError, OverflowError, RecursionError):
            value = repr(value)
        out[key] = value
    return out
'''
_SHELL = '''

class _Conv3nShell:
    """Stands in for IPython in a workflow run: runs ! commands; display magics do nothing."""

    def system(self, command):
        print(self._run(command), end="")

    def getoutput(self, command):
        return self._run(command).splitlines()

    def run_line_magic(self, name, line):
        return None

    def run_cell_magic(self, name, line, cell):
        self.system(cell)

    def _run(self, command):
        import subprocess

        done = subprocess.run(
            _conv3n_expand(command),
            shell=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return done.stdout


def get_ipython():
    return _Conv3nShell()


def _conv3n_expand(command):
    """IPython's $name and {name} in a ! command, taken from the cell's names."""
    import re

    names = globals()

    def value(match):
        name = match.group(1) or match.group(2)
        return str(names[name]) if name in names else match.group(0)

    return re.sub(r"\\$([A-Za-z_]\\w*)|\\{([A-Za-z_]\\w*)\\}", value, command)
'''


def node_code(plan: dict[str, Any], plans: dict[str, dict[str, Any]]) -> str:
    """The ``custom/code`` source of one analysed cell (``plan`` from ``_flow_worker``).

    ``main`` declares the cell's names ``global`` so that the cell runs as at a notebook's top
    level (its functions see them as globals), binds what it reads from the upstream nodes'
    data, repeats the definitions it uses from earlier cells, runs the cell and returns
    the names later cells read plus the cell's other names.
    """
    lines = plan["source"].splitlines()
    hoisted: list[str] = []
    for start, end in plan["star_imports"]:  # `import *` is refused inside a function
        hoisted += lines[start - 1 : end]
        lines[start - 1 : end] = [""] * (end - start + 1)
    for line in plan["globals"]:  # no-ops at a notebook's top level
        if _GLOBAL_LINE.match(lines[line - 1]):
            lines[line - 1] = ""
    if plan["display"]:
        lines[plan["display"] - 1] = "_ = " + lines[plan["display"] - 1]
    inlined = plan["inline"]
    names = set(plan["bound"]) | set(plan["reads"]) | {n for *_, ns in inlined for n in ns}
    if plan["display"]:
        names.add("_")
    ctx = "_conv3n_ctx" if names & {"input", "ctx"} else "ctx"
    head = "async def" if plan["is_async"] else "def"
    out = [*hoisted, f"{head} main({'_conv3n_input' if ctx != 'ctx' else 'input'}, {ctx}):"]
    out += _global_lines(sorted(names))
    for name, source in plan["reads"].items():
        out.append(f"{_INDENT}{name} = {ctx}.node({json.dumps(source)})[{json.dumps(name)}]")
    for i, (source, start, end, _names) in enumerate(inlined):
        if i == 0 or inlined[i - 1][0] != source:
            out.append(f"{_INDENT}# from {source}:")
        out.append(_indent("\n".join(plans[source]["source"].splitlines()[start - 1 : end])))
    if plan["reads"] or inlined:
        out.append(f"{_INDENT}# {plan['id']}:")
    out.append(_indent("\n".join(lines)))
    needed = plan["needed"]
    extras = [n for n in plan["values"] if n not in needed and n != "_"]
    extras += ["_"] if plan["display"] else []
    returned = ", ".join(f"{json.dumps(n)}: {n}" for n in needed)
    shown = f"_conv3n_shown(globals(), {', '.join(json.dumps(n) for n in extras)})"
    if extras and needed:
        returned = f"{{{returned}, **{shown}}}"
    else:
        returned = shown if extras else f"{{{returned}}}"
    out.append(f"{_INDENT}return {returned}")
    code = "\n".join(line.rstrip() for line in out) + "\n"
    code += _SHOWN if extras else ""
    code += _SHELL if "get_ipython" in code else ""
    return code


def _global_lines(names: list[str], width: int = 88) -> list[str]:
    lines: list[str] = []
    for name in names:
        if lines and len(lines[-1]) + len(name) + 2 <= width:
            lines[-1] += f", {name}"
        else:
            lines.append(f"{_INDENT}global {name}")
    return lines


def _indent(text: str) -> str:
    """Indent code one level, leaving the inside of multi-line strings as it is."""
    import io
    import tokenize

    keep: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.STRING and token.end[0] > token.start[0]:
                keep.update(range(token.start[0] + 1, token.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        keep = set()
    return "\n".join(
        line if n in keep or not line.strip() else _INDENT + line
        for n, line in enumerate(text.splitlines(), start=1)
    )
