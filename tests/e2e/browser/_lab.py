"""Drive JupyterLab, Voilà and ipycytoscape graphs in a Playwright page (sync API).

Every wait has a deadline and polls the page; nothing sleeps a fixed time and hopes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from playwright.sync_api import Page

REPO = Path(__file__).resolve().parents[3]
SCREENSHOTS = REPO / "out" / "screenshots"

T = TypeVar("T")

# Lab keeps every notebook tab in the DOM; the current one is the panel that is not hidden.
_PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"

_KERNEL_STATE_JS = """(panel) => {
  const p = document.querySelector(panel);
  if (!p) return null;
  const indicator = p.querySelector('.jp-Notebook-ExecutionIndicator');
  const name = p.querySelector('.jp-Toolbar-kernelName');
  const prompts = Array.from(p.querySelectorAll('.jp-CodeCell .jp-InputPrompt'))
    .map((e) => e.textContent.trim());
  return {
    status: indicator ? indicator.getAttribute('data-status') : null,
    saw_busy: Boolean(window.__c3SawBusy),
    kernel: name ? name.textContent.trim() : null,
    prompts,
  };
}"""

# Remembers that the kernel went busy, however briefly: a notebook saved with execution counts
# looks "all ran" before Run All has even started.
_ARM_BUSY_JS = """(panel) => {
  window.__c3SawBusy = false;
  const indicator = document.querySelector(panel + ' .jp-Notebook-ExecutionIndicator');
  if (!indicator) return false;
  new MutationObserver(() => {
    if (indicator.getAttribute('data-status') === 'busy') window.__c3SawBusy = true;
  }).observe(indicator, {attributes: true, attributeFilter: ['data-status']});
  return true;
}"""

# ipycytoscape's view element has the class ``custom-widget`` and is cytoscape.js's container,
# which keeps its instance as ``_cyreg.cy``. Hidden tabs' graphs (no offsetParent) are skipped.
_VISIBLE_GRAPHS_JS = """Array.from(document.querySelectorAll('.custom-widget'))
  .filter((el) => el._cyreg && el._cyreg.cy && el.offsetParent !== null)"""

_GRAPHS_JS = f"""() => {_VISIBLE_GRAPHS_JS}
  .map((el) => {{
    const cy = el._cyreg.cy;
    const box = el.getBoundingClientRect();
    // Rendered positions start inside the border (ipycytoscape draws one on hover).
    return {{
      container: {{
        x: box.x + el.clientLeft, y: box.y + el.clientTop,
        width: el.clientWidth, height: el.clientHeight,
      }},
      nodes: cy.nodes().map((n) => {{
        const b = n.renderedBoundingBox();
        return {{id: n.id(), x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2}};
      }}),
    }};
  }})"""

_SCROLL_TO_GRAPH_JS = f"""(i) => {{
  const el = {_VISIBLE_GRAPHS_JS}[i];
  if (el) el.scrollIntoView({{block: 'center'}});
  return Boolean(el);
}}"""

_FIT_TRACKER_JS = f"""(() => {{
  if (window.__cyFit) return;
  const records = new Map();
  window.__cyFit = records;
  const tick = () => {{
    const now = performance.now();
    for (const el of {_VISIBLE_GRAPHS_JS}) {{
      const cy = el._cyreg.cy;
      let record = records.get(el);
      if ((record && record.fitted !== null) || cy.nodes().length === 0) continue;
      const w = el.clientWidth, h = el.clientHeight;
      const outside = cy.nodes().filter((n) => {{
        const b = n.renderedBoundingBox();
        return b.x1 < -1 || b.y1 < -1 || b.x2 > w + 1 || b.y2 > h + 1;
      }}).length;
      if (!record) {{
        record = {{first: now, firstOutside: outside, fitted: null}};
        records.set(el, record);
      }}
      if (outside === 0) record.fitted = now;
    }}
    requestAnimationFrame(tick);
  }};
  requestAnimationFrame(tick);
}})()"""

_FIT_TIMELINE_JS = f"""() => {_VISIBLE_GRAPHS_JS}
  .map((el) => window.__cyFit && window.__cyFit.get(el))
  .map((r) => r ? {{first_ms: r.first, first_outside: r.firstOutside,
                    fitted_ms: r.fitted}} : null)"""


@dataclass(frozen=True)
class NodeBox:
    """A node's rendered bounding box, in pixels relative to its container's top left."""

    id: str
    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def center(self) -> tuple[float, float]:
        return (self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2


@dataclass(frozen=True)
class Box:
    """A container's position on the page (``x``, ``y``) and its inner size."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class CyGraph:
    """One rendered cytoscape graph: its container box and its nodes' rendered boxes."""

    container: Box
    nodes: tuple[NodeBox, ...]

    def outside(self, tolerance: float = 1.0) -> list[str]:
        """Ids of the nodes not entirely inside the container's visible box."""
        w, h = self.container.width, self.container.height
        return [
            n.id
            for n in self.nodes
            if n.x1 < -tolerance
            or n.y1 < -tolerance
            or n.x2 > w + tolerance
            or n.y2 > h + tolerance
        ]


@dataclass(frozen=True)
class FitRecord:
    """When a graph first drew nodes, how many lay outside then, and when all were inside.

    Times are the page's ``performance.now()`` in ms, sampled once per animation frame.
    """

    first_ms: float
    first_outside: int
    fitted_ms: float | None


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
) -> T:
    """Call ``probe`` until it returns something truthy and return that; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})"
            )
        time.sleep(interval)


def lab_url(base_url: str, token: str, path: str) -> str:
    """The URL opening ``path`` (relative to the server root) in a fresh Lab workspace."""
    # ``reset`` drops the tabs a previous page of the same server left in the workspace.
    return f"{base_url}lab/tree/{quote(path)}?reset&token={quote(token)}"


def open_notebook(page: Page, base_url: str, token: str, path: str, *, timeout: float = 60) -> None:
    """Open a notebook in JupyterLab and wait until its kernel is started and idle."""
    page.goto(lab_url(base_url, token, path))
    page.wait_for_selector(f"{_PANEL} .jp-Notebook .jp-Cell", timeout=timeout * 1000)
    wait_kernel_idle(page, timeout=timeout)


def _kernel_state(page: Page) -> dict[str, Any] | None:
    state: dict[str, Any] | None = page.evaluate(_KERNEL_STATE_JS, _PANEL)
    return state


def wait_kernel_idle(page: Page, *, timeout: float = 60) -> None:
    """Wait until the current notebook has a kernel that is idle and no cell shows ``[*]``."""

    def idle() -> bool:
        state = _kernel_state(page)
        # The indicator says "idle" while the panel still has "No Kernel": not ready yet.
        return bool(
            state
            and state["status"] == "idle"
            and state["kernel"] not in (None, "", "No Kernel")
            and "[*]:" not in state["prompts"]
        )

    wait_until(idle, timeout=timeout, what="an idle kernel")


def run_all_cells(page: Page, *, timeout: float = 60) -> None:
    """Run every cell through the Run menu and wait until all ran and the kernel is idle."""
    # Focus the notebook through a prompt: a cell's middle may be an output that keeps clicks.
    page.locator(f"{_PANEL} .jp-Notebook .jp-Cell .jp-InputPrompt").first.click()
    if not page.evaluate(_ARM_BUSY_JS, _PANEL):
        raise AssertionError("no notebook with a kernel indicator is open")
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

    def all_ran() -> bool:
        state = _kernel_state(page)
        prompts = state["prompts"] if state else []
        # Every prompt numbered ("[3]:"): neither queued/running ("[*]:") nor never run ("[ ]:").
        return bool(
            state
            and state["saw_busy"]
            and state["status"] == "idle"
            and prompts
            and all(p[1:-2].isdigit() for p in prompts)
        )

    wait_until(all_ran, timeout=timeout, what="all cells to run")


def run_new_cell(page: Page, code: str, *, timeout: float = 60) -> None:
    """Append a code cell after the last one, type ``code`` (one line), run it, wait for it."""
    cells = page.locator(f"{_PANEL} .jp-Notebook .jp-Cell")
    count = cells.count()
    # The new cell is the last code cell: its prompt's index among code cells.
    index = page.locator(f"{_PANEL} .jp-Notebook .jp-CodeCell").count()
    # The prompt selects the cell in command mode; the middle of a cell may be an output
    # (a graph canvas) that keeps the click.
    cells.last.locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    wait_until(lambda: cells.count() > count, timeout=10, what="a new cell")
    page.keyboard.press("Enter")
    # The editor closes brackets itself; typing the closing one steps over it.
    page.keyboard.type(code)
    page.keyboard.press("Shift+Enter")

    def ran() -> bool:
        state = _kernel_state(page)
        prompts = state["prompts"] if state else []
        return bool(
            state
            and state["status"] == "idle"
            and len(prompts) > index
            and prompts[index][1:-2].isdigit()
        )

    wait_until(ran, timeout=timeout, what=f"the new cell {code!r} to run")


def cy_graphs(page: Page) -> list[CyGraph]:
    """Every visible cytoscape graph on the page, in document order."""
    raw: list[dict[str, Any]] = page.evaluate(_GRAPHS_JS)
    return [
        CyGraph(container=Box(**g["container"]), nodes=tuple(NodeBox(**n) for n in g["nodes"]))
        for g in raw
    ]


def nodes_outside_viewport(page: Page) -> list[list[str]]:
    """Per visible graph (document order), the ids of nodes not entirely inside its box."""
    return [g.outside() for g in cy_graphs(page)]


def click_node(page: Page, node_id: str, graph_index: int = 0) -> None:
    """Click a node with the mouse at its rendered centre, as a user would."""
    if not page.evaluate(_SCROLL_TO_GRAPH_JS, graph_index):
        raise AssertionError(f"no visible graph number {graph_index}")
    graph = cy_graphs(page)[graph_index]
    node = next((n for n in graph.nodes if n.id == node_id), None)
    if node is None:
        raise AssertionError(f"graph {graph_index} has no node {node_id!r}")
    cx, cy = node.center
    page.mouse.click(graph.container.x + cx, graph.container.y + cy)


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as ``out/screenshots/<name>.png`` (a CI artifact)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def track_fit(page: Page) -> None:
    """Record, from the next page load on, each graph's first frame and first fitted frame."""
    page.add_init_script(script=_FIT_TRACKER_JS)


def fit_timeline(page: Page) -> list[FitRecord | None]:
    """Per visible graph (document order) its :class:`FitRecord`; needs :func:`track_fit`."""
    raw: list[dict[str, Any] | None] = page.evaluate(_FIT_TIMELINE_JS)
    return [FitRecord(**r) if r else None for r in raw]
