"""The tutorial notebook runs top to bottom under papermill, offline, in a real kernel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"


def _outputs(nb: dict[str, Any]) -> dict[str, str]:
    """First source line of each code cell → its text outputs joined."""
    out = {}
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        first = "".join(cell["source"]).splitlines()[0]
        texts = []
        for o in cell.get("outputs", []):
            if o["output_type"] == "stream":
                texts.append("".join(o["text"]))
            elif "data" in o:
                texts.append("".join(o["data"].get("text/plain", "")))
        out[first] = "\n".join(texts)
    return out


@pytest.mark.slow
def test_tutorial_runs_under_papermill(tmp_path: Path) -> None:
    """Every cell of notebooks/tutorial.ipynb runs without error and shows what the text says."""
    import papermill

    out_path = tmp_path / "tutorial.out.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / "tutorial.ipynb"),
        str(out_path),
        cwd=str(NOTEBOOKS),
        kernel_name="python3",
        progress_bar=False,
        execution_timeout=120,
    )
    nb = json.loads(out_path.read_text(encoding="utf-8"))
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    outputs = _outputs(nb)
    assert outputs['run.status, run["route"].port'] == "('success', 'vip')"
    assert outputs["node = await dbg.paused()"].startswith("('route',")
    assert (
        outputs['dbg.edit_input({**node.input, "tier": "silver", "total": 42.0})'] == "'standard'"
    )
    assert "reused" in outputs['partial = await wf.run(start_from="route")']
    # Two cells share that first line; the later one (after %%conv3n_code) wins in the map.
    assert (
        outputs['(await hello.run(params={"name": "Ada"})).output']
        == "{'loud': 'HELLO, ADA!', 'letters': 11}"
    )
    deps = outputs["from conv3n_jupyter.jupyter.notebook import describe_dependencies"]
    assert set(deps.strip().splitlines()) == {
        "cell_2 → cell_4 (orders)",
        "cell_3 → cell_4 (threshold)",
        "cell_4 → cell_5 (big)",
        "cell_1 → cell_6 (statistics)",
        "cell_4 → cell_6 (big)",
        "cell_5 → cell_6 (by_region)",
    }
    assert "'mean': 193.5" in outputs["result = await flow.run()"]
    # The widgets went out as widget views (what JupyterLab renders as the live graph).
    views = [
        o
        for c in nb["cells"]
        for o in c.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert len(views) >= 4
