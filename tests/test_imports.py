"""Import smoke tests: the package, the engine and the CLI stay light to import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "sqlalchemy",
    "starlette",
    "uvicorn",
    "ipywidgets",
    "IPython",
    "jupyter",
    "jupyter_client",
    "jupyter_core",
    "jupyter_server",
    "jupyterlab",
    "dask",
    "httpx",
    "jsonpath_ng",
    "typer",
    "cel.cli",
)


def _modules_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout))


def _forbidden(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.mark.parametrize(
    "statement",
    ["import conv3n_jupyter", "import conv3n_jupyter.engine", "import conv3n_jupyter.cli"],
)
def test_import_pulls_in_no_heavy_module(statement: str) -> None:
    """Importing the package, the engine or the CLI loads no server, notebook or HTTP library."""
    modules = _modules_after(statement)
    assert _forbidden(modules, HEAVY) == []
    # jupyter* covers every jupyter-prefixed distribution, not only the well-known ones.
    assert not [m for m in modules if m.startswith("jupyter")]


def test_cli_import_does_not_load_rich() -> None:
    """The CLI module imports only click: rich is loaded when something is drawn on a terminal."""
    modules = _modules_after("import conv3n_jupyter.cli")
    assert _forbidden(modules, ("rich",)) == []
    assert "click" in modules


def test_package_import_loads_nothing_of_its_own_layers() -> None:
    """``import conv3n_jupyter`` is lazy: the model, engine and CEL are loaded on first use."""
    modules = _modules_after("import conv3n_jupyter")
    assert _forbidden(modules, ("conv3n_jupyter.engine", "conv3n_jupyter.model", "cel")) == []


def test_validation_skips_jsonschema_format_libraries() -> None:
    """Validating a workflow does not import jsonschema's format checkers (rfc3987_syntax
    alone costs seconds), and those libraries stay importable afterwards."""
    statement = (
        "from conv3n_jupyter.model import load\n"
        "load('templates/hello.conv3n.json')\n"
        "assert 'rfc3987_syntax' not in sys.modules and 'isoduration' not in sys.modules\n"
        "import importlib.util\n"
        "for name in ('idna', 'jsonpointer'):\n"
        "    assert sys.modules.get(name, 0) is not None, name\n"
    )
    modules = _modules_after(statement)
    assert "jsonschema" in modules
    assert _forbidden(modules, ("rfc3987_syntax", "isoduration", "arrow")) == []


def test_notebook_layer_is_not_imported_by_the_cli_or_model() -> None:
    """Loading and running a workflow never imports the notebook layer."""
    modules = _modules_after(
        "import asyncio\nimport conv3n_jupyter as c3\n"
        "asyncio.run(c3.run('templates/hello.conv3n.json'))"
    )
    assert _forbidden(modules, ("conv3n_jupyter.jupyter", "ipycytoscape", "nbformat")) == []
