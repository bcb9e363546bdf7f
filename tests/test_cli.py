"""The ``conv3n`` commands, called in-process through click's test runner."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from conv3n_jupyter import __version__
from conv3n_jupyter.cli import coerce_param, main, summary_line


def write(tmp_path: Path, doc: Any, name: str = "wf.conv3n.json") -> str:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return str(path)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="conv3n", catch_exceptions=False)


def echo_params(params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A one-node workflow whose output is its parameters."""
    doc: dict[str, Any] = {
        "name": "echo",
        "nodes": {"out": {"type": "std/noop", "config": {"value": "{{ $params }}"}}},
    }
    if params is not None:
        doc["params"] = params
    return doc


TWO_NODES = {
    "name": "two",
    "nodes": {
        "a": {"type": "std/noop", "config": {"value": {"n": 1}}},
        "b": {"type": "std/noop", "depends_on": ["a"]},
    },
}

FAILING = {
    "name": "failing",
    "nodes": {
        "start": {"type": "std/noop", "config": {"value": 5}},
        "check": {
            "type": "std/condition",
            "config": {"expression": "$input"},
            "depends_on": ["start"],
        },
    },
}


# -- parameters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "declared", "expected"),
    [
        ("42", "integer", 42),
        ("4.0", "integer", 4),
        ("42", "string", "42"),
        ("2.5", "number", 2.5),
        ("7", "number", 7),
        ("true", "boolean", True),
        ("No", "boolean", False),
        ("on", "boolean", True),
        ('{"a": [1, 2]}', "object", {"a": [1, 2]}),
        ("[1, 2]", "array", [1, 2]),
        ("null", "null", None),
        ("12", ["integer", "string"], 12),
        ("twelve", ["integer", "string"], "twelve"),
        ("12", ["string", "integer"], 12),
        ("[1]", None, [1]),
        ("3", None, 3),
        ("Berlin", None, "Berlin"),
        ("", None, ""),
        # Values that do not fit stay strings, so the run names the parameter and its type.
        ("abc", "integer", "abc"),
        ("2.5", "integer", "2.5"),
        ("maybe", "boolean", "maybe"),
        ("[1]", "object", "[1]"),
        ("true", "number", "true"),
    ],
)
def test_coerce_param_reads_the_declared_type(raw: str, declared: Any, expected: Any) -> None:
    """A -p value becomes the declared type when it fits, and stays the raw string otherwise."""
    value = coerce_param(raw, declared)
    assert value == expected
    assert type(value) is type(expected)


def test_params_are_coerced_by_declared_type(tmp_path: Path) -> None:
    """-p values reach the run typed by the declaration; undeclared params are read as JSON."""
    wf = write(
        tmp_path,
        echo_params(
            {
                "n": {"type": "integer"},
                "zip": {"type": "string"},
                "flag": {"type": "boolean", "default": False},
                "tags": {"type": "array", "default": []},
            }
        ),
    )
    result = invoke("run", wf, "-p", "n=3", "-p", "zip=01234", "-p", "flag=yes", "-p", "tags=[1,2]")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["output"] == {
        "n": 3,
        "zip": "01234",
        "flag": True,
        "tags": [1, 2],
    }


def test_value_may_contain_equals_signs(tmp_path: Path) -> None:
    """Only the first '=' separates key and value."""
    wf = write(tmp_path, echo_params({"q": {"type": "string"}}))
    result = invoke("run", wf, "-p", "q=a=b")
    assert json.loads(result.stdout)["output"] == {"q": "a=b"}


@pytest.mark.parametrize("bad", ["novalue", "=5"])
def test_param_without_key_value_is_a_usage_error(tmp_path: Path, bad: str) -> None:
    """A -p without KEY=VALUE exits 2 with a usage message, before anything runs."""
    wf = write(tmp_path, echo_params())
    result = invoke("run", wf, "-p", bad)
    assert result.exit_code == 2
    assert "KEY=VALUE" in result.stderr
    assert result.stdout == ""


def test_missing_required_param_lists_the_problem(tmp_path: Path) -> None:
    """A declared param without default and without a value exits 2 naming it."""
    wf = write(tmp_path, echo_params({"city": {"type": "string"}, "n": {"type": "integer"}}))
    result = invoke("run", wf, "-p", "n=notanumber")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == f"{wf}: 2 problems"
    assert any(line.startswith("  params.city: ") and "required" in line for line in lines)
    assert any(line.startswith("  params.n: ") and "integer" in line for line in lines)
    assert result.stdout == ""


def test_params_file_json_and_lines(tmp_path: Path) -> None:
    """--params-file reads a JSON object or KEY=VALUE lines; -p overrides the file."""
    wf = write(tmp_path, echo_params({"n": {"type": "integer"}, "city": {"type": "string"}}))
    as_json = tmp_path / "p.json"
    as_json.write_text('{"n": 1, "city": "Oslo"}', encoding="utf-8")
    result = invoke("run", wf, "--params-file", str(as_json), "-p", "city=Rome")
    assert json.loads(result.stdout)["output"] == {"n": 1, "city": "Rome"}

    lines = tmp_path / "p.env"
    lines.write_text("# comment\n\nn = 7\ncity=Lima\n", encoding="utf-8")
    result = invoke("run", wf, "--params-file", str(lines))
    assert result.exit_code == 0
    assert json.loads(result.stdout)["output"] == {"n": 7, "city": "Lima"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"n": 1,', "malformed JSON at line 1, column 9"),
        ("n=1\njust words\n", "line 2: expected KEY=VALUE"),
        (None, "cannot read"),
    ],
)
def test_bad_params_file_is_a_usage_error(
    tmp_path: Path, content: str | None, message: str
) -> None:
    """A malformed or missing params file exits 2 and says where the problem is."""
    wf = write(tmp_path, echo_params({"n": {"type": "integer"}}))
    params = tmp_path / "params.txt"
    if content is not None:
        params.write_text(content, encoding="utf-8")
    result = invoke("run", wf, "--params-file", str(params))
    assert result.exit_code == 2
    assert message in result.stderr


def test_params_file_must_hold_an_object(tmp_path: Path) -> None:
    """A JSON params file must be an object."""
    wf = write(tmp_path, echo_params())
    result = invoke("run", wf, "--params-file", write(tmp_path, "[1, 2]", "p.json"))
    assert result.exit_code == 2
    assert "expected a JSON object" in result.stderr


def test_trigger_file_becomes_the_trigger(tmp_path: Path) -> None:
    """--trigger-file is $trigger, which is also the input of the start nodes."""
    wf = write(tmp_path, {"name": "t", "nodes": {"n": {"type": "std/noop"}}})
    trig = write(tmp_path, {"body": {"id": 7}, "method": "POST"}, "trigger.json")
    result = invoke("run", wf, "--trigger-file", trig)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["output"] == {"body": {"id": 7}, "method": "POST"}
    bad = write(tmp_path, "[1]", "bad.json")
    assert invoke("run", wf, "--trigger-file", bad).exit_code == 2


# -- run ------------------------------------------------------------------------------------------


def test_run_success_prints_the_result_json(tmp_path: Path) -> None:
    """A successful run prints the execution result on stdout, nothing on stderr, and exits 0."""
    result = invoke("run", write(tmp_path, TWO_NODES))
    assert result.exit_code == 0
    assert result.stderr == ""
    doc = json.loads(result.stdout)
    assert doc["status"] == "success"
    assert doc["output"] == {"n": 1}
    assert set(doc["nodes"]) == {"a", "b"}
    assert doc["workflow"] == "two"
    assert result.stdout.startswith("{\n  ")  # indented, one key per line


def test_run_keeps_non_ascii_text(tmp_path: Path) -> None:
    """Non-ASCII output is written as is, not as \\u escapes."""
    doc = {"name": "u", "nodes": {"n": {"type": "std/noop", "config": {"value": "Grüße ✓"}}}}
    result = invoke("run", write(tmp_path, doc))
    assert '"Grüße ✓"' in result.stdout


def test_run_failure_exits_1_with_one_line_error(tmp_path: Path) -> None:
    """A failed workflow exits 1; the JSON has the error and stderr one summary line."""
    result = invoke("run", write(tmp_path, FAILING), "-q")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["status"] == "error"
    assert doc["error"]["node"] == "check"
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("✖ error at node 'check': ")
    assert "boolean" in lines[0]


def test_run_timeout_fails_the_execution(tmp_path: Path) -> None:
    """--timeout stops a run that takes too long; the run then fails (exit 1)."""
    doc = {"name": "slow", "nodes": {"wait": {"type": "std/delay", "config": {"duration": "5s"}}}}
    result = invoke("run", write(tmp_path, doc), "--timeout", "200ms")
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["status"] == "error"
    assert out["duration_ms"] < 3000
    assert "timed out" in result.stderr


@pytest.mark.parametrize("bad", ["soon", "-1s", "0"])
def test_bad_timeout_is_a_usage_error(tmp_path: Path, bad: str) -> None:
    """An unreadable or non-positive --timeout exits 2."""
    result = invoke("run", write(tmp_path, TWO_NODES), "--timeout", bad)
    assert result.exit_code == 2
    assert "--timeout" in result.stderr


def test_use_pins(tmp_path: Path) -> None:
    """--use-pins takes pinned outputs from config.pin instead of running the node."""
    doc = {
        "name": "pinned",
        "nodes": {
            "fetch": {"type": "std/noop", "config": {"value": "live"}},
            "show": {"type": "std/noop", "depends_on": ["fetch"]},
        },
        "config": {"pin": {"fetch": {"data": "pinned"}}},
    }
    wf = write(tmp_path, doc)
    assert json.loads(invoke("run", wf).stdout)["output"] == "live"
    assert json.loads(invoke("run", wf, "--use-pins").stdout)["output"] == "pinned"


def test_invalid_workflow_lists_problems(tmp_path: Path) -> None:
    """An invalid workflow exits 2: 'FILE: N problems', then one 'path: reason' line each."""
    doc = {
        "name": "bad",
        "nodes": {
            "wait": {"type": "std/delay", "config": {"duration": 5, "unit": "hours"}},
            "x": {"type": "std/nope"},
        },
    }
    wf = write(tmp_path, doc)
    result = invoke("run", wf)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"{wf}: 2 problems"
    assert any(line.startswith("  nodes.wait.config.unit: ") for line in lines)
    assert any(line.startswith("  nodes.x.type: ") and "std/noop" in line for line in lines)
    assert "Traceback" not in result.stderr


def test_malformed_json_shows_line_and_column(tmp_path: Path) -> None:
    """A malformed file exits 2 with the line and column of the mistake."""
    wf = write(tmp_path, '{\n  "name": "x",\n  "nodes": {,}\n}')
    result = invoke("run", wf)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{wf}: 1 problem",
        "  malformed JSON at line 3, column 13: Expecting property name enclosed in double quotes",
    ]


def test_missing_file(tmp_path: Path) -> None:
    """A missing workflow file exits 2 and says so."""
    missing = str(tmp_path / "nope.conv3n.json")
    result = invoke("run", missing)
    assert result.exit_code == 2
    assert "file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_pretty_output(tmp_path: Path) -> None:
    """--output pretty prints the output and a table of the nodes on stdout."""
    result = invoke("run", write(tmp_path, TWO_NODES), "--output", "pretty")
    assert result.exit_code == 0
    out = result.stdout
    assert "two · success" in out
    assert '"n": 1' in out
    for word in ("node", "block", "status", "std/noop", "success"):
        assert word in out


def test_pretty_output_of_a_failure(tmp_path: Path) -> None:
    """--output pretty of a failed run ends with the whole error on stdout and exits 1."""
    result = invoke("run", write(tmp_path, FAILING), "-o", "pretty")
    assert result.exit_code == 1
    assert "error at node 'check': BlockError:" in result.stdout
    assert "must" in result.stdout and "boolean" in result.stdout


@pytest.mark.parametrize(
    ("result", "line"),
    [
        (
            {"status": "success", "duration_ms": 123.4, "nodes": {key: {} for key in "abcde"}},
            "✔ success 5 nodes in 123 ms",
        ),
        (
            {
                "status": "success",
                "duration_ms": 12_345,
                "nodes": {"a": {"status": "success"}, "b": {"status": "skipped"}},
            },
            "✔ success 2 nodes (1 skipped) in 12.3 s",
        ),
        (
            {"status": "success", "duration_ms": 1, "nodes": {"a": {}}},
            "✔ success 1 node in 1 ms",
        ),
        (
            {"status": "error", "error": {"node": "fetch", "message": "HTTP 500"}, "nodes": {}},
            "✖ error at node 'fetch': HTTP 500",
        ),
        (
            {"status": "error", "error": {"node": None, "message": "timed out"}, "nodes": {}},
            "✖ error: timed out",
        ),
        (
            {
                "status": "cancelled",
                "duration_ms": 500,
                "nodes": {"a": {"status": "success"}, "b": {"status": "cancelled"}},
            },
            "■ cancelled after 500 ms (1 of 2 nodes done)",
        ),
    ],
)
def test_summary_line(result: dict[str, Any], line: str) -> None:
    """The one-line summary names the status, the node count and time, or the failing node."""
    assert summary_line(result) == line


# -- validate -------------------------------------------------------------------------------------


def test_validate_reports_each_file(tmp_path: Path) -> None:
    """validate prints ✔ for good files and the problems of bad ones; exit 2 when any is bad."""
    good = write(tmp_path, TWO_NODES, "good.conv3n.json")
    bad = write(
        tmp_path, {"name": "b", "nodes": {"a": {"type": "std/noop", "bogus": 1}}}, "bad.json"
    )
    result = invoke("validate", good)
    assert result.exit_code == 0
    assert result.stdout == f"✔ {good}\n"
    result = invoke("validate", good, bad)
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines[0] == f"✔ {good}"
    assert lines[1] == f"{bad}: 1 problem"
    assert lines[2].startswith("  nodes.a.bogus: ")


def test_validate_json(tmp_path: Path) -> None:
    """validate --json prints {file: [problems]} with path, node, key and reason."""
    good = write(tmp_path, TWO_NODES, "good.json")
    bad = write(tmp_path, {"name": "b", "nodes": {"w": {"type": "std/delay"}}}, "bad.json")
    missing = str(tmp_path / "missing.json")
    result = invoke("validate", "--json", good, bad, missing)
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert list(doc) == [good, bad, missing]
    assert doc[good] == []
    assert doc[bad] and doc[bad][0]["path"].startswith("nodes.w.config")
    assert set(doc[bad][0]) == {"path", "node", "key", "reason"}
    assert "file not found" in doc[missing][0]["reason"]


def test_validate_needs_a_file() -> None:
    """validate without files is a usage error."""
    assert invoke("validate").exit_code == 2


# -- blocks, schema, version ----------------------------------------------------------------------


def test_blocks_table() -> None:
    """blocks prints a table with the built-in types, their titles and ports."""
    result = invoke("blocks")
    assert result.exit_code == 0
    for word in ("std/noop", "std/delay", "std/condition", "true, false", "No-op"):
        assert word in result.stdout


def test_blocks_json() -> None:
    """blocks --json lists each block with its config schema and ports."""
    result = invoke("blocks", "--json")
    items = {b["type"]: b for b in json.loads(result.stdout)}
    assert items["std/condition"]["ports"] == ["true", "false"]
    assert items["std/delay"]["config_schema"]["properties"]["unit"]["enum"] == ["ms", "s", "m"]
    assert {"type", "title", "description", "icon", "ports", "config_schema"} <= set(
        items["std/noop"]
    )


def test_schema_command() -> None:
    """schema prints the draft 2020-12 workflow schema; --block prints one block's config schema."""
    result = invoke("schema")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "std/noop" in doc["$defs"]["node"]["properties"]["type"]["enum"]
    result = invoke("schema", "--block", "std/delay")
    block = json.loads(result.stdout)
    assert block["title"] and "duration" in block["properties"]
    result = invoke("schema", "--block", "std/nope")
    assert result.exit_code == 2
    assert "unknown block type" in result.stderr


def test_version() -> None:
    """--version prints the package version."""
    result = invoke("--version")
    assert result.stdout == f"conv3n {__version__}\n"


@pytest.mark.parametrize("command", [[], ["run"], ["validate"], ["blocks"], ["schema"]])
def test_help_has_examples(command: list[str]) -> None:
    """Every command's --help carries examples."""
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    assert "conv3n " in result.stdout


# -- the live progress ----------------------------------------------------------------------------


async def test_progress_listener_draws_the_nodes(tmp_path: Path) -> None:
    """The progress listener shows each node with its block type, status and attempts."""
    from rich.console import Console

    from conv3n_jupyter._progress import ProgressListener
    from conv3n_jupyter.engine.executor import Execution
    from conv3n_jupyter.model import load

    wf = load(
        {
            "name": "p",
            "nodes": {
                "first": {"type": "std/noop", "config": {"value": 1}},
                "gate": {"type": "std/condition", "config": {"expression": "$input > 5"}},
                "big": {"type": "std/noop"},
            },
            "edges": [
                {"source": "first", "target": "gate"},
                {"source": "gate", "target": "big", "sourceHandle": "true"},
            ],
        }
    )
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120, height=30, color_system=None)
    with ProgressListener(wf, console) as progress:
        result = await Execution(wf, listeners=[progress]).run()
    assert result["status"] == "success"
    final = buf.getvalue().split("node")[-1]  # the last drawing of the table
    assert "first" in final and "std/noop" in final and "success" in final
    assert "gate" in final and "→ false" in final
    assert "big" in final and "skipped" in final
