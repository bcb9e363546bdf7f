"""ipycytoscape graphs end fitted with ``install_autofit``, in JupyterLab and in Voilà."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from playwright.sync_api import Page

from tests.e2e.browser._lab import (
    CyGraph,
    click_node,
    cy_graphs,
    fit_timeline,
    open_notebook,
    run_all_cells,
    run_new_cell,
    screenshot,
    track_fit,
    wait_until,
)
from tests.e2e.browser.conftest import LabServer, PageLog, VoilaServer

NODES = 200
FIT_DEADLINE = 20.0

# ipycytoscape lays a graph out for its stylesheet's 100% x 400px before the widget's own size
# applies, so a graph sized otherwise (300px high here) is cut off unless fitted.
SETUP = f"""\
import ipycytoscape
import ipywidgets
from IPython.display import display

from conv3n_jupyter.jupyter._fit import install_autofit


def grid_graph(n={NODES}, cols=20, **size):
    nodes = [{{"data": {{"id": f"n{{i}}"}}}} for i in range(n)]
    edges = [
        {{"data": {{"source": f"n{{i}}", "target": f"n{{i + 1}}"}}}}
        for i in range(n - 1)
        if (i + 1) % cols
    ]
    graph = ipycytoscape.CytoscapeWidget(layout=ipywidgets.Layout(**size))
    graph.graph.add_graph_from_json({{"nodes": nodes, "edges": edges}})
    graph.set_layout(name="grid")
    return graph
"""

FITTED = """\
fitted = grid_graph({size})
install_autofit(fitted)
clicked = ipywidgets.Label("clicked: none")
clicked.add_class("clicked-node")
fitted.on("node", "click", lambda node: setattr(clicked, "value", "clicked: " + node["data"]["id"]))
display(ipywidgets.VBox([clicked, fitted]))
"""

UNFITTED = """\
unfitted = grid_graph(height="300px")
display(unfitted)
"""


def write_notebook(path: Path, size: str) -> Path:
    """A notebook with a grid graph of the given size (Layout keywords) fitted by
    ``install_autofit``, and a 300px-high one without it."""
    cells = (SETUP, FITTED.format(size=size), UNFITTED)
    notebook = new_notebook(  # type: ignore[no-untyped-call]
        cells=[new_code_cell(code) for code in cells],  # type: ignore[no-untyped-call]
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    nbformat.write(notebook, str(path))  # type: ignore[no-untyped-call]
    return path


def both_graphs_drawn(page: Page) -> list[CyGraph] | None:
    graphs = cy_graphs(page)
    if len(graphs) == 2 and all(len(g.nodes) == NODES for g in graphs):
        return graphs
    return None


def wait_fitted(page: Page, index: int) -> CyGraph:
    """The graph ``index`` once all its nodes are inside its box (fails after the deadline)."""

    def fitted() -> CyGraph | None:
        graphs = cy_graphs(page)
        graph = graphs[index] if len(graphs) > index else None
        if graph is not None and len(graph.nodes) == NODES and not graph.outside():
            return graph
        return None

    return wait_until(fitted, timeout=FIT_DEADLINE, what=f"graph {index} to be fitted")


def check_click(page: Page) -> None:
    """A click on a node reaches the Python handler, whose label update comes back."""
    click_node(page, "n57", graph_index=0)
    label = page.locator(".clicked-node")
    wait_until(
        lambda: "clicked: n57" in label.inner_text(),
        timeout=10,
        what="the Python click handler to update the label",
    )


@pytest.mark.browser
def test_autofit_in_lab(lab_server: LabServer, page: Page, page_log: PageLog) -> None:
    """In JupyterLab the graph with install_autofit ends with every node visible (a later
    second view too), the one without it keeps nodes cut off, and node clicks reach Python."""
    write_notebook(lab_server.root / "fit.ipynb", size='height="300px"')
    track_fit(page)
    open_notebook(page, lab_server.url, lab_server.token, "fit.ipynb")
    run_all_cells(page)
    wait_until(lambda: both_graphs_drawn(page), timeout=FIT_DEADLINE, what="both graphs drawn")

    fitted = wait_fitted(page, 0)
    screenshot(page, "lab-cytoscape-fit")
    unfitted = cy_graphs(page)[1]
    assert fitted.container.height == 300  # the fit changed no size
    assert len(unfitted.outside()) > 0, "the defect no longer shows: the control graph is fitted"
    first = fit_timeline(page)[0]
    assert first is not None and first.first_outside > 0  # autofit repaired a real defect

    check_click(page)

    # A view displayed later is fitted as well.
    run_new_cell(page, "display(fitted)")
    wait_fitted(page, 2)
    page_log.assert_clean()


@pytest.mark.browser
def test_autofit_in_voila(
    voila_server: Callable[[Path], VoilaServer], tmp_path: Path, page: Page, page_log: PageLog
) -> None:
    """In Voilà the graph with install_autofit (a width set, no height) ends with every node
    visible, the one without it keeps nodes cut off, and node clicks reach Python."""
    server = voila_server(write_notebook(tmp_path / "fit.ipynb", size='width="400px"'))
    track_fit(page)
    page.goto(server.url)
    try:
        wait_until(lambda: both_graphs_drawn(page), timeout=30, what="both graphs drawn")
    except AssertionError:
        # Seen once in about ten full runs on a loaded 2-core machine: Voilà showed one cell's
        # widgets and never the other's. A reload executes the notebook again; a second miss fails.
        screenshot(page, "voila-cytoscape-fit-first-load")
        page.reload()
        wait_until(lambda: both_graphs_drawn(page), timeout=60, what="both graphs drawn")

    fitted = wait_fitted(page, 0)
    screenshot(page, "voila-cytoscape-fit")
    assert (fitted.container.width, fitted.container.height) == (400, 400)
    assert len(cy_graphs(page)[1].outside()) > 0, "the defect no longer shows in Voilà"
    first = fit_timeline(page)[0]
    assert first is not None and first.first_outside > 0

    check_click(page)
    page_log.assert_clean()
