"""Notebook ↔ workflow: dependency edges, generated node code run by the engine, round trips."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from conv3n_jupyter.engine.executor import run
from conv3n_jupyter.errors import Conv3nError, WorkflowValidationError
from conv3n_jupyter.jupyter.notebook import describe_dependencies, from_notebook, to_notebook
from conv3n_jupyter.model import Workflow, parse

DATA = Path(__file__).parent / "data"
SIX = DATA / "six_cells.ipynb"
TRICKY = DATA / "tricky.ipynb"

# The six cells: 1 imports math and sets threshold, 2 defines big() (reads both), 3 binds data
# and scale, 4 appends to data and runs `!echo ... {scale}`, 5 (%time) calls big on data and
# reads scale, 6 depends on nothing.
SIX_EDGES = {
    ("cell_3", "cell_4", ("data", "scale")),
    ("cell_1", "cell_5", ("math", "threshold")),
    ("cell_2", "cell_5", ("big",)),
    ("cell_3", "cell_5", ("scale",)),
    ("cell_4", "cell_5", ("data",)),
}
TRICKY_EDGES = {
    ("cell_1", "cell_2", ("bump", "counter")),
    ("cell_2", "cell_4", ("counter",)),
    ("shapes", "cell_4", ("Point", "square")),
    ("cell_2", "summary", ("counter",)),
    ("cell_4", "summary", ("norms", "sq")),
    ("cell_5", "summary", ("report",)),
    ("cell_7", "summary", ("slept",)),
    ("cell_8", "summary", ("root",)),
    ("cell_10", "cell_11", ("fib", "functools")),
}

# Runs the notebook top to bottom in a plain IPython shell (magics included) and records,
# after each cell, the given names and the value the cell displays.
_REFERENCE = r"""
import json, sys
from IPython.core.interactiveshell import InteractiveShell

request = json.load(open(sys.argv[1]))
shell = InteractiveShell.instance()
snapshots = []
for cell in request:
    result = shell.run_cell(cell["source"], store_history=True)
    result.raise_error()
    ns = shell.user_ns
    snapshot = {n: json.loads(json.dumps(ns[n])) for n in cell["names"] if n in ns}
    if result.execution_count in ns["Out"]:  # what the notebook displayed
        snapshot["_"] = json.loads(json.dumps(ns["Out"][result.execution_count]))
    snapshots.append(snapshot)
json.dump(snapshots, open(sys.argv[2], "w"))
"""


def edges(wf: Workflow) -> set[tuple[str, str, tuple[str, ...]]]:
    return {(e.source, e.target, tuple(e.extra["x-names"])) for e in wf.all_edges}


def notebook(*sources: str, tags: dict[int, list[str]] | None = None) -> dict[str, Any]:
    """An in-memory nbformat-4 notebook of code cells (``tags`` by cell index)."""
    cells = []
    for i, source in enumerate(sources):
        metadata = {"tags": (tags or {}).get(i, [])}
        cells.append({"cell_type": "code", "source": source, "metadata": metadata, "outputs": []})
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}


async def expect_same_values(wf: Workflow, tmp_path: Path) -> dict[str, Any]:
    """Run ``wf`` in the engine and check every node's data against the notebook's own run."""
    result = await run(wf)
    assert result["status"] == "success", result
    data = {node_id: result["nodes"][node_id]["data"] for node_id in wf.nodes}
    request = [
        {"source": node.extra["x-source"], "names": sorted(set(data[node_id]) - {"_"})}
        for node_id, node in wf.nodes.items()
    ]
    (tmp_path / "request.json").write_text(json.dumps(request))
    subprocess.run(
        [sys.executable, "-c", _REFERENCE, tmp_path / "request.json", tmp_path / "out.json"],
        check=True,
        capture_output=True,
        cwd=tmp_path,
        env={"IPYTHONDIR": str(tmp_path / "ipython"), "PATH": "/usr/bin:/bin"},
        timeout=30,
    )
    snapshots = json.loads((tmp_path / "out.json").read_text())
    assert data == dict(zip(wf.nodes, snapshots, strict=True))
    return result


@pytest.fixture(scope="module")
def six() -> Workflow:
    return from_notebook(SIX)


@pytest.fixture(scope="module")
def tricky() -> Workflow:
    return from_notebook(TRICKY)


# -- dependencies ----------------------------------------------------------------------------


def test_static_edges_are_the_cells_data_dependencies(six: Workflow) -> None:
    """Imports, defs, a read two cells later, an in-place change and magics give exact edges."""
    assert list(six.nodes) == [f"cell_{n}" for n in range(1, 7)]
    assert edges(six) == SIX_EDGES
    assert {n.type for n in six.nodes.values()} == {"custom/code"}
    assert six.nodes["cell_4"].extra["x-source"] == "data.append(16)\n!echo appended {scale}"
    assert six.name == "six_cells"


def test_traced_mode_finds_the_same_edges() -> None:
    """Executing the cells under ipyflow's tracer gives the same edges as the static pass."""
    assert edges(from_notebook(SIX, mode="traced")) == SIX_EDGES


def test_traced_mode_finds_the_same_edges_in_tricky_cells() -> None:
    """Traced globals rebound by a function, classes and shell reads match the static edges."""
    assert edges(from_notebook(TRICKY, mode="traced")) == TRICKY_EDGES


def test_tag_keeps_only_tagged_cells() -> None:
    """With a tag, untagged cells are left out and the reads link to the tagged binders."""
    wf = from_notebook(SIX, tag="conv3n", name="tagged")
    assert wf.name == "tagged"
    assert list(wf.nodes) == ["cell_1", "cell_2", "cell_3", "cell_5"]
    assert edges(wf) == {
        ("cell_1", "cell_5", ("math", "threshold")),
        ("cell_2", "cell_5", ("big",)),
        ("cell_3", "cell_5", ("data", "scale")),
    }


def test_describe_dependencies_lists_edges_with_names(six: Workflow) -> None:
    """The summary shows each edge with the names it carries and the unlinked nodes."""
    assert describe_dependencies(six).splitlines() == [
        "cell_3 → cell_4 (data, scale)",
        "cell_1 → cell_5 (math, threshold)",
        "cell_2 → cell_5 (big)",
        "cell_3 → cell_5 (scale)",
        "cell_4 → cell_5 (data)",
        "cell_6 (no dependencies)",
    ]


# -- running the generated code ----------------------------------------------------------------


async def test_six_cells_run_in_the_engine_like_the_notebook(six: Workflow, tmp_path: Path) -> None:
    """Every node returns what the notebook holds after its cell, displayed value included."""
    result = await expect_same_values(six, tmp_path)
    nodes = result["nodes"]
    assert nodes["cell_4"]["data"] == {"data": [1, 4, 9, 16]}
    assert nodes["cell_5"]["data"] == {"flags": [False, False, True, True], "total": 300, "_": 300}
    assert [entry["message"] for entry in nodes["cell_4"]["logs"]] == ["appended 10"]
    assert nodes["cell_2"]["data"] == {}  # a function is copied into its callers, not sent


async def test_tricky_cells_run_like_the_notebook(tricky: Workflow, tmp_path: Path) -> None:
    """global rebinding, classes, lambdas, decorators, strings, !output, %%bash, await run."""
    assert edges(tricky) == TRICKY_EDGES
    result = await expect_same_values(tricky, tmp_path)
    summary = result["nodes"]["summary"]["data"]["summary"]
    assert summary == {
        "counter": 3,
        "sq": 9,
        "norms": [2, 25],
        "report": "2 lines, query of 19 chars",
        "root": 4.0,
        "slept": True,
    }
    assert "_" not in result["nodes"]["summary"]["data"]  # `summary;` displays nothing
    assert result["nodes"]["cell_6"]["logs"][0]["message"] == "from bash"
    assert result["nodes"]["cell_11"]["data"]["_"] == 34


async def test_parameter_names_and_notebook_only_lines_still_run() -> None:
    """Cells binding input/ctx, a top-level `global` and a display magic run in the engine."""
    nb = notebook("%matplotlib inline\nglobal ctx\nctx = 2\ninput = 3", "total = ctx * input")
    wf = from_notebook(nb)
    assert "def main(_conv3n_input, _conv3n_ctx):" in wf.nodes["cell_1"].config["code"]
    result = await run(wf)
    assert result["nodes"]["cell_2"]["data"] == {"total": 6}


def test_ids_come_from_tags_metadata_and_comments() -> None:
    """conv3n:<id> tags, metadata.conv3n.node and `# conv3n: id` name nodes; empty cells count."""
    nb = notebook("a = 1", "", "b = a + 1", "# conv3n: third\nc = b", "d = c")
    nb["cells"][2]["metadata"]["conv3n"] = {"node": "second"}
    nb["cells"][4]["metadata"]["tags"] = ["conv3n:last"]
    wf = from_notebook(nb)
    assert list(wf.nodes) == ["cell_1", "second", "third", "last"]
    assert edges(wf) == {
        ("cell_1", "second", ("a",)),
        ("second", "third", ("b",)),
        ("third", "last", ("c",)),
    }
    assert wf.name == "notebook"


# -- errors --------------------------------------------------------------------------------------


def test_missing_and_malformed_files_are_named(tmp_path: Path) -> None:
    """A missing file, bad JSON and JSON that is no notebook each give an error naming the file."""
    with pytest.raises(WorkflowValidationError, match=r"(?s)nope\.ipynb.*file not found"):
        from_notebook(tmp_path / "nope.ipynb")
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [')
    with pytest.raises(
        WorkflowValidationError, match=r"(?s)broken\.ipynb.*malformed JSON at line 1"
    ):
        from_notebook(broken)
    broken.write_text('{"worksheets": []}')
    with pytest.raises(WorkflowValidationError, match=r"(?s)broken\.ipynb.*no 'cells' list"):
        from_notebook(broken)


def test_bad_cells_are_named(tmp_path: Path) -> None:
    """A syntax error and an unsupported magic are reported together, each naming its cell."""
    path = tmp_path / "bad.ipynb"
    path.write_text(json.dumps(notebook("x = 1", "def f(:\n    pass", "%who")))
    with pytest.raises(WorkflowValidationError) as caught:
        from_notebook(path)
    message = str(caught.value)
    assert "bad.ipynb" in message
    assert "cells[1]: cell_2: SyntaxError: invalid syntax (line 1)" in message
    assert "cells[2]: cell_3: %who has no equivalent in a workflow run" in message
    assert [p.node for p in caught.value.problems] == ["cell_2", "cell_3"]
    duplicate = notebook("a = 1", "b = 2", tags={0: ["conv3n:x"], 1: ["conv3n:x"]})
    with pytest.raises(WorkflowValidationError, match="'x' is used by an earlier cell"):
        from_notebook(duplicate)


def test_traced_mode_names_the_failing_cell() -> None:
    """A cell raising while traced stops the analysis with an error naming that cell."""
    with pytest.raises(WorkflowValidationError, match=r"cell_2: raised ZeroDivisionError"):
        from_notebook(notebook("x = 0", "y = 1 / x"), mode="traced")


def test_analysis_past_its_timeout_is_stopped_with_its_shell_commands() -> None:
    """A timeout kills the analysis process group (a running ! command too) and says so."""
    slow = notebook("!sleep 60")
    started = time.monotonic()
    with pytest.raises(Conv3nError, match=r"<notebook>: .*\(traced\) took longer than 1.5s"):
        from_notebook(slow, mode="traced", timeout=1.5)
    assert time.monotonic() - started < 10


def test_unknown_mode_is_refused() -> None:
    """Only the static and traced modes exist."""
    with pytest.raises(ValueError, match="'static' or 'traced'"):
        from_notebook(SIX, mode="kernel")


# -- workflow → notebook ---------------------------------------------------------------------------


def test_round_trip_gives_the_same_workflow(six: Workflow, tmp_path: Path) -> None:
    """from_notebook(to_notebook(wf)) rebuilds the same nodes, code and edges."""
    nb = to_notebook(six, tmp_path / "out" / "six.ipynb")
    again = from_notebook(nb)
    assert again.to_dict() == six.to_dict()
    read: Any = nbformat.read  # untyped
    written = read(tmp_path / "out" / "six.ipynb", as_version=4)
    nbformat.validate(written)
    assert written == nb
    assert [c.cell_type for c in nb.cells] == ["markdown"] + ["code"] * 6
    assert nb.cells[0].source.startswith("# six_cells\n\nBuilt from the notebook six_cells.ipynb")
    assert all(c.metadata["tags"] == ["conv3n"] for c in nb.cells)
    assert [c.metadata["conv3n"].get("node") for c in nb.cells[1:]] == list(six.nodes)
    assert list((tmp_path / "out").iterdir()) == [tmp_path / "out" / "six.ipynb"]


def test_edited_node_code_is_not_replaced_by_its_old_cell(six: Workflow) -> None:
    """A node whose code changed after from_notebook gives its new code, not the stale cell."""
    edited = parse(six.to_dict())
    edited.nodes["cell_6"].config["code"] = "def main(input, ctx):\n    return {'n': 1}\n"
    cells = {c.metadata["conv3n"].get("node"): c.source for c in to_notebook(edited).cells}
    assert cells["cell_6"].startswith(
        "# conv3n: cell_6\ndef main(input, ctx):\n    return {'n': 1}"
    )
    assert cells["cell_5"] == six.nodes["cell_5"].extra["x-source"]


def test_other_workflows_become_code_and_markdown_cells() -> None:
    """Code nodes give their code and a call, other blocks a markdown cell, in dependency order."""
    wf = parse(
        {
            "conv3n": "1",
            "name": "mixed",
            "description": "Two kinds of nodes.",
            "nodes": {
                "double": {
                    "type": "custom/code",
                    "depends_on": ["start"],
                    "config": {"code": "def main(input, ctx):\n    return {'n': input['n'] * 2}\n"},
                },
                "start": {
                    "type": "std/transform",
                    "config": {"operations": [{"type": "set", "values": {"n": "``` 21"}}]},
                },
            },
        }
    )
    nb = to_notebook(wf)
    title, start, double = nb.cells
    assert title.source == "# mixed\n\nTwo kinds of nodes."
    assert title.metadata["conv3n"] == {"workflow": "mixed", "description": "Two kinds of nodes."}
    assert start.cell_type == "markdown" and start.metadata["conv3n"] == {"node": "start"}
    assert start.source.startswith("**start** — `std/transform`\n\n````json\n")
    assert json.loads(start.source.split("\n", 3)[3].rsplit("\n", 1)[0]) == wf.nodes["start"].config
    assert double.cell_type == "code" and double.metadata["conv3n"] == {"node": "double"}
    assert double.source.startswith("# conv3n: double\ndef main(input, ctx):")
    assert double.source.endswith("double = main(None, None)\ndouble")
