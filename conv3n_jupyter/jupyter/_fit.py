"""Fit every view of an ipycytoscape graph once it has rendered.

ipycytoscape 1.3.3 runs a view's first layout as soon as the view is attached, before the
widget's ``layout`` (width/height) is applied to it, so a graph whose ``layout`` sets a size
other than the stylesheet's 100% x 400px is zoomed for the wrong box: part of it lies
outside the visible area until the user zooms out by hand.

The fit is triggered from the frontend, never by a timer after ``display()`` (a race with the
browser): ipywidgets counts the views of a model in ``_view_count`` when that trait is a number,
and the browser reports each new view once it is displayed, right after ipycytoscape's first
layout. Each increase sends one change back: ``layout.height`` toggled between two spellings
of the same CSS value, which makes every view run ``cy.resize(); cy.fit()`` (ipycytoscape's
handler for a width/height change) with no visible change. One message each way per new
view, whatever the number of nodes. (Element events such as ``add`` would fire per node, and
ipycytoscape 1.3.3's ``on()`` rejects them: it accepts user-input events only.)
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ipycytoscape

__all__ = ["fit", "install_autofit"]

# Widgets that already observe their view count, so a second install adds no second fit.
_INSTALLED: weakref.WeakSet[Any] = weakref.WeakSet()


def fit(widget: ipycytoscape.CytoscapeWidget) -> None:
    """Make every displayed view of ``widget`` re-read its size and fit the whole graph.

    Sends one message to the frontend; views not rendered yet ignore it (they fit themselves
    when :func:`install_autofit` is installed). ``widget.layout.height`` then reads back with
    or without a trailing space (``None`` or ``""`` when unset): the same CSS either way.
    Widgets sharing that ``Layout`` object are refitted too.

    Example::

        graph = ipycytoscape.CytoscapeWidget(layout=ipywidgets.Layout(height="300px"))
        display(graph)
        fit(graph)  # after the user resized the notebook, say
    """
    layout = widget.layout
    height = layout.height
    # Two spellings of one CSS value: a change event for ipycytoscape's ``_resize`` but the
    # same computed style (the browser trims the space; "" and None both mean "not set").
    if height is None:
        layout.height = ""
    elif height == "":
        layout.height = None
    elif height.endswith(" "):
        layout.height = height.rstrip()
    else:
        layout.height = height + " "


def install_autofit(widget: ipycytoscape.CytoscapeWidget) -> None:
    """Fit each new view of ``widget`` as soon as the browser has rendered it.

    Call it before ``display(widget)``; views shown earlier are not counted (call :func:`fit`
    for them). Installing twice is harmless. The fit happens when the kernel reads the
    browser's report, i.e. between cell executions: when ``display()`` is followed by a
    long-running cell (or, under Run All, by any queued cells) the graph is fitted once they
    finish. A view rendered while hidden (an unselected tab) fits a zero-size box: call
    :func:`fit` once it is shown.

    Example::

        graph = ipycytoscape.CytoscapeWidget(layout=ipywidgets.Layout(height="300px"))
        graph.graph.add_graph_from_json(elements)
        install_autofit(graph)
        display(graph)
    """
    if widget in _INSTALLED:
        return
    _INSTALLED.add(widget)
    if widget._view_count is None:
        # A number turns on the frontend's view counting (None means "do not track").
        widget._view_count = 0
    widget.observe(_on_view_count, names="_view_count")


def _on_view_count(change: dict[str, Any]) -> None:
    old, new = change["old"], change["new"]
    # Only a new view needs a fit; a removed view lowers the count and needs nothing.
    if new is not None and (old is None or new > old):
        fit(change["owner"])
