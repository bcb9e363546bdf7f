"""The autofit of ipycytoscape views, on the Python side (the browser side is in
tests/e2e/browser/test_cytoscape_fit.py)."""

from __future__ import annotations

import ipycytoscape
import ipywidgets

from conv3n_jupyter.jupyter._fit import fit, install_autofit


def test_fit_toggles_between_two_spellings_of_the_same_height() -> None:
    """fit() changes layout.height to an equivalent spelling and back, so ipycytoscape sees a
    change while the CSS stays the same."""
    sized = ipycytoscape.CytoscapeWidget(layout=ipywidgets.Layout(height="300px"))
    seen = []
    for _ in range(3):
        fit(sized)
        seen.append(sized.layout.height)
    assert seen == ["300px ", "300px", "300px "]
    unsized = ipycytoscape.CytoscapeWidget()
    fit(unsized)
    assert unsized.layout.height == ""
    fit(unsized)
    assert unsized.layout.height is None


def test_autofit_fits_on_each_new_view_only() -> None:
    """install_autofit turns on view counting and fits once per new view the frontend
    reports, not when a view goes away, and installing twice does not fit twice."""
    graph = ipycytoscape.CytoscapeWidget(layout=ipywidgets.Layout(height="300px"))
    install_autofit(graph)
    install_autofit(graph)
    assert graph._view_count == 0
    changes: list[object] = []
    graph.layout.observe(lambda change: changes.append(change["new"]), names="height")
    # set_state is how the frontend's messages update a widget.
    for count in (1, 2, 1, 2):
        graph.set_state({"_view_count": count})
    assert changes == ["300px ", "300px", "300px "]
