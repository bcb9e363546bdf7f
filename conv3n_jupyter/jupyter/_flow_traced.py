"""Cell dependencies seen by running the notebook's cells in ipyflow's tracing shell.

Each cell is linked to its traced parents; what the trace cannot see (the globals of repeated
definitions the run did not call, ``$name`` in ``!`` commands) is linked statically.
"""

from __future__ import annotations

from typing import Any

from conv3n_jupyter.jupyter._flow_static import (
    HEAD,
    Cell,
    CellProblem,
    Link,
    carry,
    rebind,
    resolve,
)


def link_traced(cells: list[Cell]) -> list[Link]:
    """Run the cells in ipyflow's tracing shell and link each cell to its traced parents.

    A traced symbol such as ``data[3]`` or ``data.__ipyflow_mutation`` counts as ``data``; each
    name comes from the last parent carrying it. Names neither bound by the parent nor read by
    the child (modules reached through an attribute) are left out.
    """
    from ipyflow.config import FlowDirection
    from ipyflow.flow import NotebookFlow
    from ipyflow.models import cells as flow_cells
    from ipyflow.singletons import flow, shell
    from ipyflow.slicing.context import SlicingContext
    from ipyflow.tracing.ipyflow_tracer import DataflowTracer

    NotebookFlow.clear_instance()
    NotebookFlow.instance(test_context=True, flow_direction=FlowDirection.ANY_ORDER)
    DataflowTracer.clear_instance()
    DataflowTracer.reset_bookkeeping()
    DataflowTracer.instance()
    ipython: Any = shell()
    for pos, cell in enumerate(cells, start=1):
        ipython.execution_count = flow_cells().next_exec_counter()
        flow().set_active_cell(pos)
        flow_cells()._position_by_cell_id[pos] = pos
        result = ipython.run_cell(cell.source, cell_id=pos)
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            raise CellProblem(cell.id, f"raised {type(error).__name__}: {error}")
    links: list[Link] = []
    binder: dict[str, int] = {}
    for pos, cell in enumerate(cells):
        parents: dict[str, int] = {}
        for _ in SlicingContext.iter_slicing_contexts():
            for parent, symbols in flow_cells().from_id(pos + 1).raw_parents.items():
                source = int(parent) - 1
                if not 0 <= source < pos:
                    continue
                src = cells[source]
                known = src.bound | set(src.code) | src.mutates | links[source].writes
                for symbol in symbols:
                    match = HEAD.match(symbol.readable_name)
                    name = match.group(0) if match else ""
                    if name in known or name in cell.reads:
                        parents[name] = max(parents.get(name, source), source)
        link = Link()
        for name, source in parents.items():
            carry(link, cells, source, name)
            link.writes |= cells[source].effects.get(name, set())
        # Linked statically: what repeated definitions read (a decorator, a function the run
        # did not call) and $name in ! commands (IPython expands it outside the tracer's view).
        needs = set(cell.shell_reads)
        for source, name in link.inline:
            needs |= cells[source].requires.get(name, set())
        resolve(link, cells, binder, needs, set(parents))
        links.append(link)
        rebind(binder, cells, pos, link)
    return links
