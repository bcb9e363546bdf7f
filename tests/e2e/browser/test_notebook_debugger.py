"""The notebook debugger in a real JupyterLab and in Voilà, driven through headless chromium.

A user's path: display a debug run, see the graph fitted, hit a breakpoint, step, click a node
and read its data in the inspector, continue to the end, with status colours on the canvas.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from playwright.sync_api import Page

from tests.e2e.browser._lab import (
    click_node,
    cy_graphs,
    open_notebook,
    run_all_cells,
    run_new_cell,
    screenshot,
    wait_until,
)
from tests.e2e.browser.conftest import LabServer, PageLog, VoilaServer

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[3]
ROUTER = REPO / "templates" / "order_router.conv3n.json"
SHOTS = REPO / "out" / "screenshots"
SUCCESS_RGB = "rgb(67,160,71)"
PAUSED_RGB = "rgb(251,140,0)"


def _notebook(path: Path, *cells: str) -> Path:
    nb = new_notebook(
        cells=[new_code_cell(c) for c in cells],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    nbformat.write(nb, str(path))
    return path


def _colours(page: Page, graph_index: int = 0) -> dict[str, str]:
    """Each node's background colour as cytoscape renders it ("rgb(r,g,b)")."""
    colours: dict[str, str] = page.evaluate(
        """(i) => {
          const els = Array.from(document.querySelectorAll('.custom-widget'))
            .filter((el) => el._cyreg && el._cyreg.cy && el.offsetParent !== null);
          const cy = els[i]._cyreg.cy;
          const out = {};
          cy.nodes().forEach((n) => { out[n.id()] = n.style('background-color').replace(/ /g, ''); });
          return out;
        }""",
        graph_index,
    )
    return colours


def _edges(page: Page, graph_index: int = 0) -> set[tuple[str, str]]:
    pairs: list[list[str]] = page.evaluate(
        """(i) => {
          const els = Array.from(document.querySelectorAll('.custom-widget'))
            .filter((el) => el._cyreg && el._cyreg.cy && el.offsetParent !== null);
          return els[i]._cyreg.cy.edges().map((e) => [e.source().id(), e.target().id()]);
        }""",
        graph_index,
    )
    return {(a, b) for a, b in pairs}


def _text_shown(page: Page, text: str, timeout: float = 20) -> None:
    wait_until(
        lambda: page.get_by_text(text, exact=False).count() > 0,
        timeout=timeout,
        what=f"the text {text!r} on the page",
    )


def _status(page: Page) -> str:
    loc = page.locator(".c3-status").first
    return loc.inner_text() if loc.count() else ""


def _wait_status(page: Page, text: str, timeout: float = 20) -> None:
    wait_until(lambda: text in _status(page), timeout=timeout, what=f"debugger status {text!r}")


def _inspector_text(page: Page) -> str:
    """The text of the first inspector the user can see (hidden ones do not count)."""
    loc = page.locator(".c3-inspector").filter(visible=True)
    return loc.first.inner_text() if loc.count() else ""


def _wait_inspector(page: Page, text: str, timeout: float = 20) -> None:
    wait_until(
        lambda: text in _inspector_text(page), timeout=timeout, what=f"inspector showing {text!r}"
    )


def _button(page: Page, name: str) -> Any:
    return (
        page.locator(".c3-debugger button", has_text=name)
        .filter(has_not_text="branch" if name == "Step" else "\u0000")
        .first
    )


def test_debug_session_in_lab(lab_server: LabServer, page: Page, page_log: PageLog) -> None:
    """Breakpoint, step, click-to-inspect and continue work end to end in JupyterLab."""
    shutil.copy(ROUTER, lab_server.root / "order_router.conv3n.json")
    _notebook(
        lab_server.root / "debug.ipynb",
        "import conv3n_jupyter as c3\nwf = c3.load('order_router.conv3n.json')",
        "dbg = wf.debug(breakpoints=['route'])\ndbg",
    )
    open_notebook(page, lab_server.url, lab_server.token, "debug.ipynb")
    run_all_cells(page)

    graph = wait_until(
        lambda: next((g for g in cy_graphs(page) if len(g.nodes) == 6), None),
        timeout=30,
        what="the 6-node workflow graph",
    )
    wait_until(
        lambda: not cy_graphs(page)[0].outside() or None, timeout=20, what="the graph fitted"
    )
    assert {n.id for n in graph.nodes} == {
        "normalize",
        "route",
        "reject",
        "priority",
        "standard",
        "ticket",
    }
    assert ("route", "priority") in _edges(page)

    _wait_status(page, "paused before route")
    _wait_inspector(page, "route")
    wait_until(
        lambda: _colours(page).get("route") == PAUSED_RGB or None,
        timeout=10,
        what="the paused node drawn orange",
    )
    assert _colours(page)["normalize"] == SUCCESS_RGB
    screenshot(page, "lab-debugger-paused")
    page.locator(".c3-debugger").first.screenshot(path=str(SHOTS / "lab-debugger-widget.png"))

    # A paused run does not hold the notebook: another cell runs meanwhile.
    run_new_cell(page, "print('still here', dbg.paused_at.id)")
    wait_until(
        lambda: page.get_by_text("still here route").count() > 0,
        timeout=10,
        what="a cell to run while the debug run is paused",
    )

    _button(page, "Step").click()
    _wait_status(page, "paused before priority")  # the order is a gold-tier VIP
    screenshot(page, "lab-debugger-stepped")

    click_node(page, "normalize")
    _wait_inspector(page, "ada@example.com")
    assert "normalize" in _inspector_text(page)
    screenshot(page, "lab-debugger-inspect")

    _button(page, "Continue").click()
    _wait_status(page, "run success")
    wait_until(
        lambda: _colours(page).get("ticket") == SUCCESS_RGB or None,
        timeout=10,
        what="the last node drawn green",
    )
    colours = _colours(page)
    assert colours["priority"] == SUCCESS_RGB and colours["reject"] != SUCCESS_RGB
    screenshot(page, "lab-debugger-done")
    page_log.assert_clean()


def test_large_run_reaches_the_screen_batched(
    lab_server: LabServer, page: Page, page_log: PageLog
) -> None:
    """A 200-node run ends with every node green on screen, through at most ~20 updates a second."""
    _notebook(
        lab_server.root / "big.ipynb",
        "import json, time\nfrom conv3n_jupyter.model import parse\n"
        "nodes = {'start': {'type': 'std/noop'}}\n"
        "for i in range(200):\n"
        "    nodes[f'd{i}'] = {'type': 'std/delay', 'depends_on': ['start'], 'config': {'duration': f'{(i % 20) * 20}ms'}}\n"
        "wf = parse({'conv3n': '1', 'name': 'big', 'nodes': nodes, 'config': {'max_concurrent_nodes': 256}})\n"
        "view = wf.graph()\nview",
        "t0 = time.monotonic()\nrun = await wf.run()\nelapsed = time.monotonic() - t0\n"
        "print(json.dumps({'status': run.status, 'flushes': view.flushes, 'elapsed': elapsed}))",
    )
    # Count the widget update messages the browser receives: per-node updates would be
    # hundreds (one per node per state change); batched ones are a few per flush.
    updates: list[int] = []

    def watch(ws: Any) -> None:
        def frame(payload: str | bytes) -> None:
            data = payload.encode() if isinstance(payload, str) else payload
            if b'"comm_msg"' in data and b'"method": "update"' in data.replace(b'":"', b'": "'):
                updates.append(len(data))

        ws.on("framereceived", frame)

    page.on("websocket", watch)
    open_notebook(page, lab_server.url, lab_server.token, "big.ipynb")
    run_all_cells(page)
    out = page.locator(".jp-OutputArea-output pre").filter(has_text='"flushes"').first
    wait_until(lambda: out.count() > 0, timeout=30, what="the run's figures")
    figures = json.loads(out.inner_text())
    assert figures["status"] == "success"
    assert figures["flushes"] <= figures["elapsed"] * 20 + 3, figures
    # Each flush is one stylesheet and one caption message; a few more set the graph up.
    assert len(updates) <= 2 * figures["flushes"] + 20, (len(updates), figures)

    def all_green() -> bool:
        colours = _colours(page)
        return len(colours) == 201 and all(c == SUCCESS_RGB for c in colours.values())

    wait_until(all_green, timeout=5, what="all 201 nodes green on screen")
    assert not cy_graphs(page)[0].outside()
    screenshot(page, "lab-200-nodes")
    page_log.assert_clean()


def test_inspector_in_voila(
    voila_server: Callable[[Path], VoilaServer], tmp_path: Path, page: Page, page_log: PageLog
) -> None:
    """In Voilà a finished debug run's graph is fitted and clicking a node shows its data."""
    shutil.copy(ROUTER, tmp_path / "order_router.conv3n.json")
    nb = _notebook(
        tmp_path / "dash.ipynb",
        "import conv3n_jupyter as c3\nwf = c3.load('order_router.conv3n.json')\n"
        "dbg = wf.debug()\nrun = await dbg\ndbg",
    )
    server = voila_server(nb)
    page.goto(server.url)
    wait_until(
        lambda: next((g for g in cy_graphs(page) if len(g.nodes) == 6), None),
        timeout=60,
        what="the graph in Voilà",
    )
    wait_until(lambda: not cy_graphs(page)[0].outside() or None, timeout=20, what="fitted graph")
    wait_until(
        lambda: _colours(page).get("ticket") == SUCCESS_RGB or None, timeout=20, what="green nodes"
    )
    click_node(page, "ticket")
    _wait_inspector(page, "priority")
    screenshot(page, "voila-debugger")
    page_log.assert_clean()


SALES = REPO / "notebooks" / "sales_analysis.ipynb"
SALES_EDGES = {
    ("cell_2", "cell_4"),
    ("cell_3", "cell_4"),
    ("cell_4", "cell_5"),
    ("cell_1", "cell_6"),
    ("cell_4", "cell_6"),
    ("cell_5", "cell_6"),
}


def test_from_notebook_graph_in_lab(lab_server: LabServer, page: Page, page_log: PageLog) -> None:
    """A 6-cell notebook becomes a graph with exactly its data dependencies; its run's data
    shows in the inspector."""
    shutil.copy(SALES, lab_server.root / "sales_analysis.ipynb")
    _notebook(
        lab_server.root / "derive.ipynb",
        "import conv3n_jupyter as c3\nflow = c3.from_notebook('sales_analysis.ipynb')\n"
        "dbg = flow.debug()\ndbg",
    )
    open_notebook(page, lab_server.url, lab_server.token, "derive.ipynb")
    run_all_cells(page)
    wait_until(
        lambda: next((g for g in cy_graphs(page) if len(g.nodes) == 6), None),
        timeout=30,
        what="the derived 6-node graph",
    )
    assert _edges(page) == SALES_EDGES
    _wait_status(page, "run success", timeout=30)
    wait_until(lambda: not cy_graphs(page)[0].outside() or None, timeout=20, what="fitted graph")
    click_node(page, "cell_6")
    _wait_inspector(page, "summary")
    search = page.locator(".c3-inspector input[type=text]").first
    search.fill("mean")
    search.press("Enter")  # the search opens the branches that match
    _wait_inspector(page, "193.5")
    screenshot(page, "lab-from-notebook")
    page_log.assert_clean()


def test_clicking_a_run_graph_inspects_the_node(
    lab_server: LabServer, page: Page, page_log: PageLog
) -> None:
    """A displayed run is a graph whose nodes open their data beside it when clicked."""
    shutil.copy(ROUTER, lab_server.root / "order_router.conv3n.json")
    _notebook(
        lab_server.root / "plain.ipynb",
        "import conv3n_jupyter as c3\nwf = c3.load('order_router.conv3n.json')\n"
        "run = await wf.run()\nrun",
    )
    open_notebook(page, lab_server.url, lab_server.token, "plain.ipynb")
    run_all_cells(page)
    wait_until(
        lambda: next((g for g in cy_graphs(page) if len(g.nodes) == 6), None),
        timeout=30,
        what="the run's graph",
    )
    wait_until(
        lambda: _colours(page).get("ticket") == SUCCESS_RGB or None, timeout=10, what="green"
    )
    assert not page.locator(".c3-inspector").first.is_visible()
    click_node(page, "route")
    _wait_inspector(page, "std/condition")
    _wait_inspector(page, "vip")
    wait_until(
        lambda: not cy_graphs(page)[0].outside() or None,
        timeout=10,
        what="the graph refitted beside the inspector",
    )
    screenshot(page, "lab-run-inspect")
    page_log.assert_clean()
