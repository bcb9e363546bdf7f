"""What each notebook cell reads and binds, seen without running it, and where each read comes from.

ipyflow's liveness analysis gives each cell's reads (live refs) and the values it changes in place
(dead and killed refs with an attribute or subscript), :mod:`symtable` its bindings and the globals
its functions read, and a reaching-definitions pass (the last binder in notebook order wins) links
them. Reading a definition (function, class, lambda, import) inlines it into the reader.
"""

from __future__ import annotations

import ast
import re
import symtable
from dataclasses import dataclass, field
from typing import Any

# %time and %timeit become their statement (run once); the statement is what the workflow needs.
_TIME_LINE = re.compile(r"^(?P<indent>[ \t]*)%time(?:it)?\b[ \t]*(?P<rest>.*)$")
_TIME_CELL = re.compile(r"^%%time(?:it)?\b[ \t]*(?P<rest>.*)$")
_TIMEIT_OPTION = re.compile(r"^(?:-[nrp][ \t]*\d+|-[qoct])(?:[ \t]+|$)")
# Magics with no effect on a workflow's data: dropped (the node's shell stand-in ignores them).
IGNORED_MAGICS = frozenset(
    {"matplotlib", "config", "load_ext", "reload_ext", "autoreload", "aimport", "pinfo", "pinfo2"}
)
SHELL_CELL_MAGICS = frozenset({"bash", "sh"})
_SHELL_NAME = re.compile(r"\$([A-Za-z_]\w*)|\{([A-Za-z_]\w*)\}")
HEAD = re.compile(r"[A-Za-z_]\w*")
_NO_DESCENT = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
OWN_SCOPE = (*_NO_DESCENT, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


class CellProblem(Exception):
    """A cell that cannot become a node (syntax error, unsupported magic, failed run)."""

    def __init__(self, cell: str, reason: str) -> None:
        super().__init__(reason)
        self.cell = cell
        self.reason = reason


@dataclass
class Cell:
    """What one cell reads and binds, seen statically."""

    id: str
    source: str
    tree: ast.Module
    reads: set[str] = field(default_factory=set)
    values: set[str] = field(default_factory=set)  # names bound to data
    code: dict[str, tuple[int, int]] = field(default_factory=dict)  # def/class/import: lines
    requires: dict[str, set[str]] = field(default_factory=dict)  # globals a definition reads
    effects: dict[str, set[str]] = field(default_factory=dict)  # globals it rebinds
    mutates: set[str] = field(default_factory=set)
    shell_reads: set[str] = field(default_factory=set)  # $name / {name} in ! commands
    bound: set[str] = field(default_factory=set)  # every top-level name (the `global` list)


def prepare(source: str) -> str:
    """The cell as plain Python: %time/%timeit unwrapped, other IPython syntax transformed."""
    from IPython.core import inputtransformer2

    lines = source.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and (match := _TIME_CELL.match(lines[first])):
        lines[first] = _strip_timeit_options(match["rest"])  # %%timeit's setup statement
    for i, line in enumerate(lines):
        if match := _TIME_LINE.match(line):
            lines[i] = match["indent"] + _strip_timeit_options(match["rest"])
    text = "\n".join(lines) + "\n"
    manager: Any = inputtransformer2.TransformerManager  # untyped
    transformed: str = manager().transform_cell(text)
    return transformed


def _strip_timeit_options(rest: str) -> str:
    while match := _TIMEIT_OPTION.match(rest):
        rest = rest[match.end() :]
    return rest


def analyse(cell_id: str, source: str) -> Cell:
    """Static facts of one prepared cell; raises :class:`CellProblem` for what cannot run."""
    from ipyflow.analysis.live_refs import compute_live_dead_symbol_refs

    try:
        compile(source, cell_id, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
        tree = ast.parse(source)
        table = symtable.symtable(source, cell_id, "exec")
    except SyntaxError as exc:
        raise CellProblem(cell_id, f"SyntaxError: {exc.msg} (line {exc.lineno})") from None
    cell = Cell(cell_id, source, tree)
    live, dead, killed = compute_live_dead_symbol_refs(tree)
    cell.reads = {h for ref in live if (h := _head(ref.ref.chain))}
    for ref in (*dead, *killed):
        if len(ref.chain) > 1 and (h := _head(ref.chain)):
            cell.mutates.add(h)
    _bindings(cell, tree)
    _mutations(tree.body, cell.mutates)
    cell.shell_reads = _magic_reads(cell_id, tree)
    cell.bound = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    # Changing a value in place reads it, unless the cell made it (ipyflow says which it read).
    cell.reads |= (cell.mutates - cell.bound) | cell.shell_reads
    _function_globals(cell, table)
    cell.values = cell.bound - set(cell.code)
    return cell


def _head(chain: Any) -> str | None:
    value = getattr(chain[0], "value", None) if chain else None
    match = HEAD.match(value) if isinstance(value, str) else None
    return match.group(0) if match else None


def _bindings(cell: Cell, tree: ast.Module) -> None:
    """Names bound to code (def, class, lambda, import) and the top-level statement binding them.

    Repeating the statement elsewhere reads what it reads at once: decorators, defaults, bases.
    """
    from ipyflow.analysis.live_refs import compute_live_dead_symbol_refs

    for stmt in tree.body:
        start = min([stmt.lineno, *(d.lineno for d in getattr(stmt, "decorator_list", []))])
        span = (start, stmt.end_lineno or stmt.lineno)
        code = _code_names(stmt)
        if code:
            live = compute_live_dead_symbol_refs([stmt])[0]
            now = {h for ref in live if (h := _head(ref.ref.chain))}
        for name in code:
            cell.code[name] = span
            cell.requires[name] = now - {name}
        for name in _stored_names(stmt) - code:
            cell.code.pop(name, None)  # rebound to data later in the cell


def _code_names(stmt: ast.stmt) -> set[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in stmt.names if a.name != "*"}
    if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Lambda):
        return {t.id for t in stmt.targets if isinstance(t, ast.Name)}
    names: set[str] = set()
    for block in _blocks(stmt):
        for inner in block:
            names |= _code_names(inner)
    return names


def _blocks(stmt: ast.stmt) -> list[list[ast.stmt]]:
    if isinstance(stmt, _NO_DESCENT):
        return []
    blocks = [getattr(stmt, key) for key in ("body", "orelse", "finalbody") if hasattr(stmt, key)]
    blocks += [h.body for h in getattr(stmt, "handlers", [])]
    blocks += [c.body for c in getattr(stmt, "cases", [])]
    return [b for b in blocks if isinstance(b, list)]


def _stored_names(node: ast.AST) -> set[str]:
    names: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Name) and isinstance(item.ctx, ast.Store):
            names.add(item.id)
        stack.extend(c for c in ast.iter_child_nodes(item) if not isinstance(c, OWN_SCOPE))
    return names


def _root(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _mutations(body: list[ast.stmt], out: set[str]) -> None:
    """Names changed in place: ``x.method(...)`` statements, ``x[k] = v``, ``x.a = v``, ``del x[k]``."""
    for stmt in body:
        targets: list[ast.expr] = []
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            if isinstance(stmt.value.func, ast.Attribute):
                targets = [stmt.value.func.value]
        elif isinstance(stmt, ast.Assign):
            targets = [t for t in stmt.targets if isinstance(t, (ast.Attribute, ast.Subscript))]
        elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign, ast.Delete)):
            group = stmt.targets if isinstance(stmt, ast.Delete) else [stmt.target]
            targets = [t for t in group if isinstance(t, (ast.Attribute, ast.Subscript))]
        out.update(r for t in targets if (r := _root(t)))
        for block in _blocks(stmt):
            _mutations(block, out)


def _magic_reads(cell_id: str, tree: ast.Module) -> set[str]:
    """Names a ``!command`` interpolates; refuses magics a workflow run cannot honour."""
    reads: set[str] = set()
    for node in ast.walk(tree):
        method = magic_method(node)
        if method is None or not isinstance(node, ast.Call):
            continue
        args = [a.value if isinstance(a, ast.Constant) else None for a in node.args]
        name = args[0] if args and method.startswith("run_") else None
        if method in ("system", "getoutput") or name in SHELL_CELL_MAGICS:
            command = args[-1] if args else None
            if isinstance(command, str):
                reads |= {m[0] or m[1] for m in _SHELL_NAME.findall(command)}
        elif method == "run_line_magic" and name in IGNORED_MAGICS:
            pass
        else:
            what = f"get_ipython().{method}"
            if isinstance(name, str):
                what = f"%{name}" if method == "run_line_magic" else f"%%{name}"
            raise CellProblem(
                cell_id,
                f"{what} has no equivalent in a workflow run (supported: %time, %timeit, "
                f"!commands, %%bash, %%sh; ignored: %{', %'.join(sorted(IGNORED_MAGICS))})",
            )
    return reads


def _function_globals(cell: Cell, table: symtable.SymbolTable) -> None:
    """What definitions read (and rebind with ``global``) when called; what runs now reads."""
    for child in table.get_children():
        line = child.get_lineno()
        owners = [n for n, (a, b) in cell.code.items() if a <= line <= b]
        reads, writes = _table_globals(child)
        for owner in owners:
            cell.requires.setdefault(owner, set()).update(reads - {owner})
            cell.effects.setdefault(owner, set()).update(writes)
        if child.get_type() == "class":
            cell.reads |= {s.get_name() for s in child.get_symbols() if s.is_global()}
        elif not owners:
            cell.reads |= reads  # a lambda or comprehension run by the cell itself
    # Functions the cell defines and calls itself: their globals are the cell's reads.
    used = {s.get_name() for s in table.get_symbols() if s.is_referenced()}
    called = set(cell.code) & used
    todo = list(called)
    while todo:
        for name in cell.requires.get(todo.pop(), set()) & set(cell.code) - called:
            called.add(name)
            todo.append(name)
    for name in called:
        cell.reads |= cell.requires.get(name, set()) - cell.bound
        cell.bound |= cell.effects.get(name, set())


def _table_globals(table: symtable.SymbolTable) -> tuple[set[str], set[str]]:
    """Globals a scope and its nested scopes read, and those they assign (``global x``)."""
    reads = {s.get_name() for s in table.get_symbols() if s.is_global()}
    writes = {
        s.get_name() for s in table.get_symbols() if s.is_declared_global() and s.is_assigned()
    }
    for child in table.get_children():
        inner_reads, inner_writes = _table_globals(child)
        reads |= inner_reads
        writes |= inner_writes
    return reads, writes


# -- linking cells -------------------------------------------------------------------------------


@dataclass
class Link:
    """Where the names one cell reads come from."""

    values: dict[str, int] = field(default_factory=dict)  # name -> binder's position
    inline: set[tuple[int, str]] = field(default_factory=set)  # (binder's position, name)
    carried: dict[int, set[str]] = field(default_factory=dict)  # binder's position -> names
    writes: set[str] = field(default_factory=set)  # globals rebound by the definitions it calls


def link_static(cells: list[Cell]) -> list[Link]:
    """Reaching definitions: each read comes from the last earlier cell binding the name.

    Reading a definition (function, class, lambda, import) inlines it into the reader, so the
    globals its body reads become reads of the calling cell too, resolved at the caller.
    """
    binder: dict[str, int] = {}
    links: list[Link] = []
    for pos, cell in enumerate(cells):
        link = Link()
        resolve(link, cells, binder, cell.reads, set())
        links.append(link)
        rebind(binder, cells, pos, link)
    return links


def resolve(
    link: Link, cells: list[Cell], binder: dict[str, int], names: set[str], done: set[str]
) -> None:
    """Link ``names`` to their binders, and the names the definitions among them read."""
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in done or name not in binder:
            continue
        done.add(name)
        source = binder[name]
        carry(link, cells, source, name)
        todo.extend(cells[source].requires.get(name, ()))
        link.writes |= cells[source].effects.get(name, set())


def rebind(binder: dict[str, int], cells: list[Cell], pos: int, link: Link) -> None:
    cell = cells[pos]
    for name in cell.bound | set(cell.code) | link.writes:
        binder[name] = pos
    for name in cell.mutates:
        if name in binder and name not in cells[binder[name]].code:
            binder[name] = pos  # the changed value is the one later readers see


def carry(link: Link, cells: list[Cell], source: int, name: str) -> None:
    link.carried.setdefault(source, set()).add(name)
    if name in cells[source].code:
        link.inline.add((source, name))
    else:
        link.values[name] = source


def magic_method(node: ast.AST) -> str | None:
    """``system`` for ``get_ipython().system(...)`` (what a ``!`` or ``%`` line becomes), else None."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Call)
        and isinstance(node.func.value.func, ast.Name)
        and node.func.value.func.id == "get_ipython"
    ):
        return node.func.attr
    return None
