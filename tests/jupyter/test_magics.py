"""The IPython magics, in a real in-process IPython shell and, for runs, in a real kernel."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from nbclient import NotebookClient
from traitlets.config import Config

from conv3n_jupyter.model import load

TEMPLATES = Path(__file__).parent.parent.parent / "templates"
HELLO = TEMPLATES / "hello.conv3n.json"
CODE = "def main(input, ctx):\n    return {'seen': input}\n"


@pytest.fixture(scope="module")
def shell() -> Iterator[Any]:
    """An IPython shell in this process with the extension loaded (the existing one if any)."""
    existed = InteractiveShell.initialized()
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    ip = InteractiveShell.instance(config=config)
    ip.run_line_magic("load_ext", "conv3n_jupyter")
    yield ip
    from conv3n_jupyter.jupyter.magics import unload_ipython_extension

    unload_ipython_extension(ip)
    ip.extension_manager.loaded.discard("conv3n_jupyter")
    if not existed:
        InteractiveShell.clear_instance()


@pytest.fixture
def ns(shell: Any) -> Iterator[dict[str, Any]]:
    """The shell's user namespace, emptied of what a test put there."""
    before = set(shell.user_ns)
    yield shell.user_ns
    for name in set(shell.user_ns) - before:
        del shell.user_ns[name]


def test_validate_prints_valid_or_every_problem(
    shell: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """%conv3n validate says 'valid: N nodes' for a good file and lists the problems of a bad one."""
    bad = tmp_path / "bad.conv3n.json"
    bad.write_text(json.dumps({"name": "b", "nodes": {"a": {"type": "std/nope", "retry": 3}}}))
    assert shell.run_line_magic("conv3n", f"validate {HELLO} {tmp_path}/*.json") is None
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{HELLO}: valid: 1 node, 0 edges"
    assert out[1] == f"{bad}: 2 problems"
    assert any(line.startswith("  nodes.a.type: ") and "std/nope" in line for line in out[2:])
    assert any(line.startswith("  nodes.a.retry: ") for line in out[2:])


def test_blocks_lists_the_block_types(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """%conv3n blocks prints one line per block type with its ports."""
    shell.run_line_magic("conv3n", "blocks")
    out = capsys.readouterr().out
    assert "std/condition" in out and "(ports: true, false)" in out
    assert "custom/code" in out


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "the following arguments are required: command"),
        ("jump", "invalid choice: 'jump'"),
        ("run", "the following arguments are required: file"),
        ("run nowhere.conv3n.json", "file not found: nowhere.conv3n.json"),
        (f"run {HELLO} -p name", "expected KEY=VALUE, got 'name'"),
        (f"run {HELLO} --params-file nowhere.env", "--params-file: cannot read nowhere.env"),
        ("validate 'unclosed", "No closing quotation"),
    ],
)
def test_mistakes_are_one_usage_error(shell: Any, line: str, message: str) -> None:
    """A bad command, option, file or parameter is a UsageError saying what is wrong."""
    with pytest.raises(UsageError, match=message):
        shell.run_line_magic("conv3n", line)


def test_help_prints_and_returns_nothing(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """-h prints the help of the magic instead of exiting the kernel."""
    assert shell.run_line_magic("conv3n", "run -h") is None
    assert "--params-file FILE" in capsys.readouterr().out


def test_code_cell_creates_then_updates_a_node(
    shell: Any, ns: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """%%conv3n_code adds a custom/code node after --after, then replaces only its code."""
    wf = ns["wf"] = load(HELLO)
    calls: list[Any] = []
    wf._watchers.append(calls.append)
    shell.run_cell_magic("conv3n_code", "wf double --after greet", CODE)
    assert (
        capsys.readouterr().out
        == "added node 'double' (custom/code, 2 lines) after 'greet' to 'hello'\n"
    )
    assert wf.nodes["double"].config == {"code": CODE} and wf.nodes["double"].depends_on == [
        "greet"
    ]
    wf.configure("double", {"code": CODE, "timeout": "5s", "language": "python"})
    new = "def main(input, ctx):\n    return 2\n"
    shell.run_cell_magic("conv3n_code", "wf double", "\n" + new + "\n\n")
    assert capsys.readouterr().out == "updated the code of node 'double' (2 lines) in 'hello'\n"
    assert wf.nodes["double"].config == {"code": new, "timeout": "5s", "language": "python"}
    shell.run_cell_magic("conv3n_code", "wf double", new)
    assert capsys.readouterr().out.startswith("kept the code of node 'double'")
    assert len(calls) == 3


def test_code_cell_refusals_name_the_node_and_change_nothing(
    shell: Any, ns: dict[str, Any]
) -> None:
    """Bad code, a node of another type, an unknown workflow or upstream is refused as is."""
    wf = ns["wf"] = load(HELLO)
    ns["text"] = "not a workflow"
    before = wf.to_dict()
    cases = [
        ("wf c", "def main(input, ctx:\n", "node 'c': SyntaxError: "),
        ("wf c", "return 1\n", "node 'c': SyntaxError: 'return' outside function"),
        (
            "wf c",
            "def helper(input, ctx):\n    pass\n",
            "node 'c': the cell must define a top-level function main",
        ),
        (
            "wf c",
            "def main(input):\n    pass\n",
            "nodes.c.config.code: main must take two arguments",
        ),
        ("wf greet", CODE, "node 'greet' is a std/transform node, not custom/code"),
        ("wf c --after nowhere", CODE, "no node 'nowhere'"),
        ("text c", CODE, "'text' is a str, not a Workflow"),
        ("missing c", CODE, "'missing' is neither a Workflow variable nor a workflow file"),
        ("wf", CODE, "the following arguments are required: node"),
    ]
    for line, cell, message in cases:
        with pytest.raises(UsageError, match=message):
            shell.run_cell_magic("conv3n_code", line, cell)
    assert wf.to_dict() == before


def test_code_cell_on_a_file_saves_it_keeping_its_layout(shell: Any, tmp_path: Path) -> None:
    """Given a workflow file, %%conv3n_code loads, edits and saves it; the rest of the file is kept."""
    path = tmp_path / "hello.conv3n.json"
    shutil.copy(HELLO, path)
    shell.run_cell_magic("conv3n_code", f"{path} shout --after greet", CODE)
    wf = load(path)
    assert wf.nodes["shout"].config["code"] == CODE
    assert path.read_text().startswith(HELLO.read_text()[:-12])  # only the end changed


def test_save_flag_writes_the_workflow_variable_to_its_file(
    shell: Any, ns: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--save writes a workflow variable back to its file; one without a file is a UsageError."""
    path = tmp_path / "hello.conv3n.json"
    shutil.copy(HELLO, path)
    ns["wf"] = load(path)
    shell.run_cell_magic("conv3n_code", "wf shout --after greet --save", CODE)
    assert capsys.readouterr().out.endswith(f"; saved {path}\n")
    assert load(path).nodes["shout"].depends_on == ["greet"]
    ns["loose"] = load(json.loads(HELLO.read_text()))
    with pytest.raises(UsageError, match="pass a path"):
        shell.run_cell_magic("conv3n_code", "loose shout --save", CODE)


def test_unload_removes_the_magics(shell: Any) -> None:
    """After unloading the magics are gone; loading again brings them back."""
    from conv3n_jupyter.jupyter.magics import load_ipython_extension, unload_ipython_extension

    unload_ipython_extension(shell)
    assert shell.find_line_magic("conv3n") is None and shell.find_cell_magic("conv3n_code") is None
    load_ipython_extension(shell)
    assert shell.find_line_magic("conv3n") is not None


def _outputs(cell: Any, kind: str) -> list[Any]:
    return [o for o in cell.outputs if o.output_type == kind]


@pytest.mark.slow
def test_run_in_a_kernel_displays_the_run_once_and_can_be_awaited(tmp_path: Path) -> None:
    """In a real kernel, %conv3n run starts a run, shows it once, and its handle can be awaited."""
    cells = [
        "%load_ext conv3n_jupyter",
        f"r = %conv3n run {HELLO} -p name=Ada",
        "await r\nprint(r.status, r['greet'].output['greeting'])",
        f"%conv3n run {HELLO} -p name=Bob",
        f"x = 1\n%conv3n run {HELLO} -p name=Cy\nx = 2",
        f"f = %conv3n run {HELLO} --params-file params.env\n(await f)['greet'].output",
    ]
    (tmp_path / "params.env").write_text("# who\nname=Zed\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    ran, awaited, bare, inner, from_file = nb.cells[1:]
    assert len(ran.outputs) == 1 and ran.outputs[0].output_type == "display_data"
    assert _outputs(awaited, "stream")[0].text == "success Hello, Ada!\n"
    assert [o.output_type for o in bare.outputs] == ["execute_result"]
    assert [o.output_type for o in inner.outputs] == ["display_data"]
    assert "Hello, Zed!" in _outputs(from_file, "execute_result")[0].data["text/plain"]
