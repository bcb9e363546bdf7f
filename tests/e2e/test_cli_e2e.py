"""``conv3n`` as a real process: exit codes, stdout/stderr, Ctrl-C, live progress on a terminal."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

COMMAND = [sys.executable, "-m", "conv3n_jupyter"]


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"CONV3N_FILES_ROOT": str(tmp_path), "PYTHONUNBUFFERED": "1"})
    env.pop("CONV3N_HTTP_ALLOW_PRIVATE", None)
    env.update(extra)
    return env


def conv3n(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env_for(tmp_path),
        timeout=timeout,
        check=False,
    )


def write(tmp_path: Path, name: str, doc: Any) -> str:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=2), encoding="utf-8")
    return str(path)


def branching(http_url: str) -> dict[str, Any]:
    """Fetch a document, then branch on a parameter: the `big` or the `small` path runs."""
    return {
        "name": "branching",
        "params": {"n": {"type": "integer"}, "label": {"type": "string", "default": "x"}},
        "nodes": {
            "fetch": {"type": "std/http_request", "config": {"url": f"{http_url}/json"}},
            "gate": {"type": "std/condition", "config": {"expression": "$params.n > 2"}},
            "big": {"type": "std/noop", "config": {"value": "{{ $params.label }}-big"}},
            "small": {"type": "std/noop", "config": {"value": "{{ $node.fetch.data.body.count }}"}},
        },
        "edges": [
            {"source": "fetch", "target": "gate", "sourceHandle": "success"},
            {"source": "gate", "target": "big", "sourceHandle": "true"},
            {"source": "gate", "target": "small", "sourceHandle": "false"},
        ],
    }


SLOW = {
    "name": "slow",
    "nodes": {
        "mark": {
            "type": "std/file",
            "config": {"operation": "write", "path": "started.txt", "content": "started"},
        },
        "wait": {"type": "std/delay", "config": {"duration": "30s"}, "depends_on": ["mark"]},
        "after": {"type": "std/noop", "depends_on": ["wait"]},
    },
}


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- run ------------------------------------------------------------------------------------------


def test_run_success(tmp_path: Path, http_server: str) -> None:
    """A good run exits 0 and prints the execution result as JSON on stdout, nothing on stderr."""
    wf = write(tmp_path, "b.conv3n.json", branching(http_server))
    proc = conv3n(tmp_path, "run", wf, "-p", "n=1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    result = json.loads(proc.stdout)
    assert result["status"] == "success"
    # Two sinks: the output is an object of those that ran; the count is the document's.
    assert result["output"] == {"small": 3}
    assert result["nodes"]["fetch"]["port"] == "success"
    assert result["nodes"]["big"]["status"] == "skipped"


def test_param_coercion(tmp_path: Path, http_server: str) -> None:
    """-p n=5 arrives as the integer 5 (the comparison works); a string param stays a string."""
    wf = write(tmp_path, "b.conv3n.json", branching(http_server))
    proc = conv3n(tmp_path, "run", wf, "-p", "n=5", "-p", "label=007")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["params"] == {"n": 5, "label": "007"}
    assert result["output"] == {"big": "007-big"}


def test_params_file(tmp_path: Path, http_server: str) -> None:
    """--params-file supplies params (KEY=VALUE lines here), typed like -p."""
    wf = write(tmp_path, "b.conv3n.json", branching(http_server))
    params = write(tmp_path, "run.env", "# production\nn=10\nlabel=prod\n")
    proc = conv3n(tmp_path, "run", wf, "--params-file", params)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["output"] == {"big": "prod-big"}


def test_run_failure(tmp_path: Path) -> None:
    """A failing node fails the run: exit 1, status error in the JSON, one line on stderr."""
    doc = {
        "name": "unreachable",
        "nodes": {
            "fetch": {
                "type": "std/http_request",
                "config": {"url": "http://127.0.0.1:9/", "timeout": "2s"},
            },
            "after": {"type": "std/noop", "depends_on": ["fetch"]},
        },
    }
    proc = conv3n(tmp_path, "run", write(tmp_path, "f.conv3n.json", doc))
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert result["status"] == "error"
    assert result["error"]["node"] == "fetch"
    assert proc.stderr.startswith("✖ error at node 'fetch': ")
    assert len(proc.stderr.splitlines()) == 1


def test_invalid_workflow(tmp_path: Path) -> None:
    """An invalid workflow exits 2 with every problem and its path on stderr, no traceback."""
    doc = {
        "name": "bad",
        "nodes": {
            "wait": {"type": "std/delay", "config": {"duration": 5, "unit": "weeks"}},
            "gate": {"type": "std/condition", "config": {"expression": "$node.later.data"}},
            "later": {"type": "std/noop", "depends_on": ["gate"]},
        },
        "edges": [{"source": "wait", "target": "ghost"}],
    }
    wf = write(tmp_path, "bad.conv3n.json", doc)
    proc = conv3n(tmp_path, "run", wf)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines[0] == f"{wf}: 3 problems"
    paths = {line.split(": ")[0].strip() for line in lines[1:]}
    assert {"nodes.wait.config.unit", "edges[0].target", "nodes.gate.config"} <= paths
    assert "Traceback" not in proc.stderr


def test_malformed_json(tmp_path: Path) -> None:
    """Malformed JSON exits 2 and names the line and the column."""
    wf = write(
        tmp_path, "m.conv3n.json", '{\n  "name": "m",\n  "nodes": {"a": {"type": "std/noop"}},,\n}'
    )
    proc = conv3n(tmp_path, "run", wf)
    assert proc.returncode == 2
    assert "malformed JSON at line 3, column 40" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_file(tmp_path: Path) -> None:
    """A missing file exits 2 and says which."""
    proc = conv3n(tmp_path, "run", "nowhere.conv3n.json")
    assert proc.returncode == 2
    assert "file not found: nowhere.conv3n.json" in proc.stderr


def test_usage_errors(tmp_path: Path) -> None:
    """Bad options exit 2 before running anything."""
    wf = write(tmp_path, "ok.conv3n.json", {"name": "ok", "nodes": {"a": {"type": "std/noop"}}})
    proc = conv3n(tmp_path, "run", wf, "-p", "oops")
    assert proc.returncode == 2
    assert "expected KEY=VALUE" in proc.stderr
    proc = conv3n(tmp_path, "run", wf, "--output", "xml")
    assert proc.returncode == 2


def test_missing_required_param(tmp_path: Path, http_server: str) -> None:
    """A required param left out exits 2 with the problem list."""
    wf = write(tmp_path, "b.conv3n.json", branching(http_server))
    proc = conv3n(tmp_path, "run", wf)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == f"{wf}: 1 problem"
    assert proc.stderr.splitlines()[1].startswith("  params.n: required parameter 'n'")


# -- cancellation ---------------------------------------------------------------------------------


def test_ctrl_c_cancels_cleanly(tmp_path: Path) -> None:
    """SIGINT cancels the running nodes; the result (status cancelled) is printed; exit 130."""
    wf = write(tmp_path, "slow.conv3n.json", SLOW)
    proc = subprocess.Popen(
        [*COMMAND, "run", wf, "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env_for(tmp_path),
    )
    try:
        # The marker file is written by the node just before the long delay starts.
        wait_for(
            lambda: (tmp_path / "started.txt").exists() or proc.poll() is not None, 30, "the run"
        )
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert took < 2.0
    result = json.loads(out)
    assert result["status"] == "cancelled"
    assert result["nodes"]["mark"]["status"] == "success"
    assert result["nodes"]["wait"]["status"] == "cancelled"
    assert result["nodes"]["after"]["status"] == "skipped"
    assert "cancelling… (Ctrl-C again to force)" in err
    assert "■ cancelled" in err


class Terminal:
    """A pseudo-terminal for a child's stderr, read by a thread so the child never blocks on it."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)

    def start(self) -> None:
        os.close(self.slave)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every writer of the terminal is gone
                return
            if not chunk:
                return
            self.chunks.append(chunk)

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", "replace")

    def wait_for(self, needle: str, timeout: float) -> None:
        wait_for(lambda: needle in self.text, timeout, f"{needle!r} on the terminal:\n{self.text}")

    def close(self) -> str:
        self.reader.join(timeout=5)
        os.close(self.master)
        return self.text


def on_terminal(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], Terminal]:
    term = Terminal()
    proc = subprocess.Popen(
        [*COMMAND, *args],
        stdout=subprocess.PIPE,
        stderr=term.slave,
        cwd=tmp_path,
        env=env_for(tmp_path, TERM="xterm-256color", COLUMNS="120", LINES="40"),
    )
    term.start()
    return proc, term


def test_live_progress_on_a_terminal_and_ctrl_c(tmp_path: Path) -> None:
    """On a terminal, stderr shows the nodes live; Ctrl-C there says it is cancelling."""
    wf = write(tmp_path, "slow.conv3n.json", SLOW)
    proc, term = on_terminal(tmp_path, "run", wf)
    try:
        term.wait_for("running", 30)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        screen = term.close()
    assert proc.returncode == 130
    assert json.loads(out)["status"] == "cancelled"
    for word in ("mark", "std/file", "success", "wait", "std/delay", "cancelled", "after"):
        assert word in screen
    assert "cancelling… (Ctrl-C again to force)" in screen
    assert "■ cancelled" in screen


def test_live_progress_summary_on_success(tmp_path: Path, http_server: str) -> None:
    """A successful run on a terminal ends with the summary line; stdout still has the JSON."""
    wf = write(tmp_path, "b.conv3n.json", branching(http_server))
    proc, term = on_terminal(tmp_path, "run", wf, "-p", "n=3")
    try:
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        screen = term.close()
    assert proc.returncode == 0
    assert json.loads(out)["output"] == {"big": "x-big"}
    assert "✔ success 4 nodes (1 skipped) in " in screen
    assert "std/http_request" in screen and "→ success" in screen


def test_problems_are_coloured_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal the problem list keeps its text and gains colour."""
    wf = write(tmp_path, "bad.conv3n.json", {"name": "b", "nodes": {"a": {"type": "std/wat"}}})
    proc, term = on_terminal(tmp_path, "run", wf)
    try:
        proc.communicate(timeout=30)
    finally:
        screen = term.close()
    assert proc.returncode == 2
    assert "\x1b[" in screen
    assert "1 problem" in screen and "nodes.a.type" in screen


# -- validate, blocks, schema ---------------------------------------------------------------------


def test_validate_several_files(tmp_path: Path, http_server: str) -> None:
    """validate reports each file; exit 0 when all are valid, 2 when any is not."""
    good = write(tmp_path, "good.conv3n.json", branching(http_server))
    also_good = write(tmp_path, "slow.conv3n.json", SLOW)
    bad = write(tmp_path, "bad.conv3n.json", {"name": "b", "nodes": {"a": {"type": "std/wat"}}})
    proc = conv3n(tmp_path, "validate", good, also_good)
    assert proc.returncode == 0
    assert proc.stdout.splitlines() == [f"✔ {good}", f"✔ {also_good}"]
    proc = conv3n(tmp_path, "validate", good, bad, also_good)
    assert proc.returncode == 2
    lines = proc.stdout.splitlines()
    assert lines[0] == f"✔ {good}"
    assert lines[1] == f"{bad}: 1 problem"
    assert lines[2].startswith("  nodes.a.type: unknown block type 'std/wat'")
    assert lines[3] == f"✔ {also_good}"
    proc = conv3n(tmp_path, "validate", "--json", good, bad)
    report = json.loads(proc.stdout)
    assert report[good] == []
    assert report[bad][0]["path"] == "nodes.a.type"
    assert report[bad][0]["node"] == "a"


def test_blocks_json(tmp_path: Path) -> None:
    """blocks --json lists the block types with their config schemas and ports."""
    proc = conv3n(tmp_path, "blocks", "--json")
    assert proc.returncode == 0
    blocks = {b["type"]: b for b in json.loads(proc.stdout)}
    assert {"std/noop", "std/delay", "std/condition", "std/http_request"} <= set(blocks)
    assert blocks["std/http_request"]["ports"] == ["success", "client_error", "server_error"]
    for block in blocks.values():
        Draft202012Validator.check_schema(block["config_schema"])


def test_schema_validates_a_known_good_workflow(tmp_path: Path, http_server: str) -> None:
    """The printed schema accepts a workflow the engine runs, and flags a bad block config."""
    proc = conv3n(tmp_path, "schema")
    assert proc.returncode == 0
    schema = json.loads(proc.stdout)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    for doc in (branching(http_server), SLOW):
        assert list(validator.iter_errors(doc)) == []
    bad = branching(http_server)
    bad["nodes"]["fetch"]["config"]["method"] = "FETCH"
    errors = list(validator.iter_errors(bad))
    assert errors
    assert list(errors[0].absolute_path)[:3] == ["nodes", "fetch", "config"]


# -- the entry points and start-up cost -----------------------------------------------------------


def test_console_script_and_version(tmp_path: Path) -> None:
    """`conv3n --version` works as an installed script and as `python -m conv3n_jupyter`."""
    from conv3n_jupyter import __version__

    proc = conv3n(tmp_path, "--version")
    assert proc.stdout == f"conv3n {__version__}\n"
    script = Path(sys.executable).parent / "conv3n"
    assert script.exists(), "the package's console script is not installed next to this Python"
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False)
    assert proc.stdout == f"conv3n {__version__}\n"


TWO_NODES = {
    "name": "two",
    "nodes": {
        "a": {"type": "std/noop", "config": {"value": 1}},
        "b": {"type": "std/noop", "depends_on": ["a"]},
    },
}


def test_quiet_run_loads_no_rich_and_stays_small(tmp_path: Path) -> None:
    """`conv3n run -q` of a small workflow imports no rich or httpx and stays under 60 MB."""
    wf = write(tmp_path, "two.conv3n.json", TWO_NODES)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "conv3n_jupyter", "run", "-q", wf],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env_for(tmp_path),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "click" in imported
    assert not [m for m in imported if m.split(".")[0] in ("rich", "httpx", "typer")]
    assert "cel.cli" not in imported

    # A fresh parent whose only child is the run, so its children's peak RSS is the run's.
    probe = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    rss = subprocess.run(
        [sys.executable, "-c", probe, *COMMAND, "run", "-q", wf],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env_for(tmp_path),
        timeout=60,
        check=True,
    )
    assert int(rss.stdout) < 60 * 1024  # KiB on Linux


# -- against the real HTTP server: retries, timeouts, ports ---------------------------------------


def test_run_retries_a_flaky_endpoint_until_it_answers(tmp_path: Path, http_server: str) -> None:
    key = f"cli-{time.monotonic_ns()}"
    wf = {
        "name": "flaky",
        "nodes": {
            "call": {
                "type": "std/http_request",
                "config": {"url": f"{http_server}/flaky/{key}?fail=2", "fail_on_status": ["5xx"]},
                "retry": {"max_attempts": 4, "initial_delay": "20ms"},
            }
        },
    }
    proc = conv3n(tmp_path, "run", write(tmp_path, "flaky.conv3n.json", wf), "-q")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["nodes"]["call"]["attempts"] == 3
    assert result["output"]["body"] == {"attempts": 3}


def test_run_fails_a_slow_endpoint_at_its_timeout(tmp_path: Path, http_server: str) -> None:
    wf = {
        "name": "slow",
        "nodes": {
            "call": {
                "type": "std/http_request",
                "config": {"url": f"{http_server}/slow?ms=3000"},
                "timeout": "200ms",
            }
        },
    }
    started = time.monotonic()
    proc = conv3n(tmp_path, "run", write(tmp_path, "slow.conv3n.json", wf), "-q")
    assert time.monotonic() - started < 2.5
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert result["status"] == "error"
    assert result["nodes"]["call"]["error"]["type"] == "NodeTimeout"
    assert "call" in proc.stderr and "timed out" in proc.stderr


@pytest.mark.parametrize(
    ("code", "port"), [(201, "success"), (404, "client_error"), (503, "server_error")]
)
def test_run_routes_status_classes_to_ports(
    tmp_path: Path, http_server: str, code: int, port: str
) -> None:
    wf = {
        "name": "ports",
        "nodes": {
            "call": {"type": "std/http_request", "config": {"url": f"{http_server}/status/{code}"}},
            "success": {"type": "std/noop", "config": {"value": "success"}},
            "client_error": {"type": "std/noop", "config": {"value": "client_error"}},
            "server_error": {"type": "std/noop", "config": {"value": "server_error"}},
        },
        "edges": [
            {"source": "call", "target": p, "sourceHandle": p}
            for p in ("success", "client_error", "server_error")
        ],
    }
    proc = conv3n(tmp_path, "run", write(tmp_path, "ports.conv3n.json", wf), "-q")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["nodes"]["call"]["port"] == port
    assert result["output"] == {port: port}
    assert {n for n, r in result["nodes"].items() if r["status"] == "skipped"} == {
        "success",
        "client_error",
        "server_error",
    } - {port}
