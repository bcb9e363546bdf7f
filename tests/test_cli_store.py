"""The store commands of the CLI, driven for real against a temp SQLite store (and PostgreSQL).

``run --store`` and ``retry`` run in subprocesses (a real restart between runs); the listing
commands go through click's runner in-process to keep the suite fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from conv3n_jupyter.cli import main

SETTER = {
    "name": "setter",
    "id": "setter",
    "nodes": {
        "w": {"type": "std/set_var", "config": {"key": "greeting", "scope": "workflow",
                                                "value": "{{ $params.text }}"}},
        "g": {"type": "std/set_var", "config": {"key": "shared", "scope": "global",
                                                "value": {"n": 7}}},
    },
    "edges": [{"source": "w", "target": "g"}],
}  # fmt: skip
GETTER = {
    "name": "getter",
    "nodes": {
        "g": {"type": "std/get_var", "config": {"key": "shared", "scope": "global"}},
        "out": {"type": "std/transform", "config": {"input": "{{ $vars.shared.n + 1 }}"}},
    },
    "edges": [{"source": "g", "target": "out"}],
}
# `count` appends to count.txt each time it runs; `check` fails until flag.txt exists.
RETRYING = {
    "name": "retrying",
    "nodes": {
        "count": {"type": "std/file", "config": {"path": "count.txt", "operation": "write",
                                                 "content": "x", "mode": "append"}},
        "check": {"type": "std/file", "config": {"path": "flag.txt", "operation": "read"}},
        "after": {"type": "std/transform", "config": {"input": "{{ $input.content }}"}},
    },
    "edges": [{"source": "count", "target": "check"}, {"source": "check", "target": "after"}],
}  # fmt: skip


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A temp SQLite store and files root in the environment (of this process and children)."""
    files = tmp_path / "files"
    files.mkdir()
    values = {
        "CONV3N_DATABASE_URL": f"sqlite:///{tmp_path / 'conv3n.db'}",
        "CONV3N_FILES_ROOT": str(files),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CONV3N_CONFIG", raising=False)  # the temp folder has no conv3n.toml
    monkeypatch.chdir(tmp_path)
    return dict(os.environ)


def conv3n(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real `conv3n` in a new process."""
    return subprocess.run(
        [sys.executable, "-m", "conv3n_jupyter", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="conv3n", catch_exceptions=False)


def write(path: Path, wf: dict[str, Any]) -> str:
    path.write_text(json.dumps(wf))
    return str(path)


# -- run --store: variables survive a restart -------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, env: dict[str, str]) -> Iterator[str]:
    if request.param == "sqlite":
        yield env["CONV3N_DATABASE_URL"]
        return
    from tests.store.conftest import pg_schema

    with pg_schema("conv3n_cli") as url:
        yield url


def test_variables_set_by_one_process_are_read_by_the_next(
    tmp_path: Path, env: dict[str, str], database_url: str
) -> None:
    """`run --store` in one process sets workflow/global variables; a second process reads them."""
    setter, getter = write(tmp_path / "s.json", SETTER), write(tmp_path / "g.json", GETTER)
    first = conv3n(env, "run", setter, "-p", "text=hi", "--database-url", database_url)
    assert first.returncode == 0, first.stderr
    execution_id = json.loads(first.stdout)["execution_id"]
    assert f"recorded as execution {execution_id}" in first.stderr
    second = conv3n(env, "run", getter, "--database-url", database_url, "-q")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["output"] == 8
    from conv3n_jupyter.store import open_store
    from conv3n_jupyter.store.variables import read_variable

    store = open_store(database_url)
    try:
        assert read_variable(store, "greeting", scope="workflow", workflow_id="setter") == "hi"
    finally:
        store.close()


def test_run_without_store_refuses_persistent_scopes_and_says_how(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """Without --store the run fails naming the scope and `conv3n run --store`; no db appears."""
    proc = conv3n(env, "run", write(tmp_path / "g.json", GETTER), "-q")
    assert proc.returncode == 1
    assert "scope 'global' needs a store" in proc.stderr
    assert "conv3n run --store" in proc.stderr
    assert not (tmp_path / "conv3n.db").exists()


# -- retry --------------------------------------------------------------------------------------


def test_retry_reuses_upstream_results(tmp_path: Path, env: dict[str, str]) -> None:
    """A retry starts at the failed node: the upstream file write does not happen again."""
    wf = write(tmp_path / "r.json", RETRYING)
    files = Path(env["CONV3N_FILES_ROOT"])
    failed = conv3n(env, "run", wf, "--store", "-q")
    assert failed.returncode == 1
    failed_id = json.loads(failed.stdout)["execution_id"]
    assert (files / "count.txt").read_text() == "x"

    (files / "flag.txt").write_text("ready")
    retried = conv3n(env, "retry", failed_id[:10], "-q")
    assert retried.returncode == 0, retried.stderr
    result = json.loads(retried.stdout)
    assert result["output"] == "ready"
    assert result["nodes"]["count"]["reused"] is True
    assert (files / "count.txt").read_text() == "x"  # not run again

    shown = invoke("show", result["execution_id"], "--output", "json")
    assert shown.exit_code == 0, shown.output
    row = json.loads(shown.stdout)
    assert row["retry_of"] == failed_id
    assert row["start_from"] == "check"
    assert row["status"] == "success"
    assert set(row["nodes"]) == {"count", "check", "after"}

    again = invoke("retry", result["execution_id"])
    assert again.exit_code == 1
    assert "succeeded: there is nothing to retry" in again.stderr


def test_retry_of_a_retry_and_crashed_executions(tmp_path: Path, env: dict[str, str]) -> None:
    """A failed retry can be retried (its reused rows are recorded); a crash restarts after
    the last node that finished."""
    from conv3n_jupyter.store import open_store
    from conv3n_jupyter.store.maintenance import mark_crashed

    wf = write(tmp_path / "r.json", RETRYING)
    files = Path(env["CONV3N_FILES_ROOT"])
    first = invoke("run", wf, "--store", "-q")
    first_id = json.loads(first.stdout)["execution_id"]
    second = invoke("retry", first_id)
    assert second.exit_code == 1
    second_id = json.loads(second.stdout)["execution_id"]
    (files / "flag.txt").write_text("ok")
    third = invoke("retry", second_id)
    assert third.exit_code == 0, third.stderr
    assert (files / "count.txt").read_text() == "x"

    # A crashed execution: `count` finished, the process died before `check`.
    store = open_store(env["CONV3N_DATABASE_URL"])
    try:
        from conv3n_jupyter.store.executions import create_execution, upsert_node_runs

        crashed = create_execution(store, workflow_name="retrying", definition=RETRYING)
        upsert_node_runs(store, crashed, [{"node_id": "count", "status": "success",
                                           "port": "default", "output": {"bytes": 1}}])  # fmt: skip
        assert mark_crashed(store, execution_ids=[crashed]) == 1
    finally:
        store.close()
    resumed = invoke("retry", crashed)
    assert resumed.exit_code == 0, resumed.stderr
    assert json.loads(resumed.stdout)["nodes"]["check"]["status"] == "success"
    assert (files / "count.txt").read_text() == "x"


def test_reading_a_store_that_does_not_exist_is_an_error(env: dict[str, str]) -> None:
    """`history`/`show` never create an empty SQLite file: a wrong path is reported."""
    store_file = Path(env["CONV3N_DATABASE_URL"].removeprefix("sqlite:///"))
    assert not store_file.exists()
    for args in (("history",), ("show", "abc"), ("workflows",), ("prune", "--keep-last", "1")):
        result = invoke(*args)
        assert result.exit_code == 1, args
        assert f"no store at {store_file}" in result.stderr
    assert not store_file.exists()


def test_unknown_execution_is_an_error_naming_it(env: dict[str, str]) -> None:
    """`show` and `retry` of an unknown id exit 1 with the id in the message."""
    invoke(
        "workflows",
        "add",
        write(
            Path(env["CONV3N_DATABASE_URL"].removeprefix("sqlite:///")).parent / "s.json", SETTER
        ),
    )
    for command in ("show", "retry"):
        proc = conv3n(env, command, "does-not-exist") if command == "retry" else None
        result = invoke(command, "does-not-exist")
        assert result.exit_code == 1
        assert "execution 'does-not-exist' not found" in result.stderr
        if proc is not None:
            assert proc.returncode == 1
            assert "error: execution 'does-not-exist' not found" in proc.stderr


# -- workflows, history, show, prune -----------------------------------------------------------------


def test_workflows_add_list_remove(tmp_path: Path, env: dict[str, str]) -> None:
    """`workflows add` saves versions, the list shows them, `remove` deletes; unknown id exits 1."""
    wf = write(tmp_path / "s.json", SETTER)
    assert invoke("workflows", "add", wf).stdout == "saved workflow setter (setter) version 1\n"
    assert "version 2" in invoke("workflows", "add", wf).stdout
    assert "saved workflow other" in invoke("workflows", "add", wf, "--id", "other").stdout
    listed = json.loads(invoke("workflows", "--output", "json").stdout)
    assert {(w["id"], w["version"]) for w in listed} == {("setter", 2), ("other", 1)}
    table = invoke("workflows").stdout
    assert "setter" in table and "2 saved workflows" in table
    assert invoke("workflows", "remove", "other").exit_code == 0
    gone = invoke("workflows", "remove", "other")
    assert gone.exit_code == 1
    assert "workflow 'other' not found" in gone.stderr


def test_history_filters_and_show_by_prefix(tmp_path: Path, env: dict[str, str]) -> None:
    """history filters by workflow name and status, newest first; show accepts an id prefix."""
    ok = write(tmp_path / "s.json", SETTER)
    bad = write(tmp_path / "r.json", RETRYING)
    ids = []
    for file in (ok, bad, ok):
        ran = invoke("run", file, "--store", "-q", "-p", "text=x")
        ids.append(json.loads(ran.stdout)["execution_id"])
    everything = json.loads(invoke("history", "--output", "json").stdout)
    assert [r["id"] for r in everything] == ids[::-1]
    setters = json.loads(invoke("history", "setter", "--output", "json").stdout)
    assert [r["id"] for r in setters] == [ids[2], ids[0]]
    errors = json.loads(invoke("history", "--status", "error", "--output", "json").stdout)
    assert [r["id"] for r in errors] == [ids[1]]
    assert len(json.loads(invoke("history", "--limit", "1", "--output", "json").stdout)) == 1
    assert json.loads(invoke("history", "--since", "1h", "--output", "json").stdout)
    assert json.loads(invoke("history", "--since", "2999-01-01", "--output", "json").stdout) == []
    table = invoke("history").stdout
    assert ids[1] in table and "check" in table  # the failed node is the last node shown

    shown = invoke("show", ids[1][:8])
    assert shown.exit_code == 0
    assert "check" in shown.stdout and "no such file" in shown.stdout
    assert "error at node 'check'" in shown.stderr


def test_prune(tmp_path: Path, env: dict[str, str]) -> None:
    """prune --keep-last removes older executions and prints the count; bad ages exit 2."""
    wf = write(tmp_path / "s.json", SETTER)
    for _ in range(3):
        invoke("run", wf, "--store", "-q", "-p", "text=x")
    assert invoke("prune", "--older-than", "1d").stdout == "removed 0 executions\n"
    assert invoke("prune", "--keep-last", "1").stdout == "removed 2 executions\n"
    assert len(json.loads(invoke("history", "--output", "json").stdout)) == 1
    assert invoke("prune").exit_code == 2
    bare = invoke("prune", "--older-than", "30")
    assert bare.exit_code == 2
    assert "give a unit" in bare.stderr


def test_prune_without_flags_uses_the_history_settings(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bare `conv3n prune` applies history_keep_days / history_keep_last; flags still win."""
    wf = write(tmp_path / "s.json", SETTER)
    for _ in range(4):
        invoke("run", wf, "--store", "-q", "-p", "text=x")
    monkeypatch.setenv("CONV3N_HISTORY_KEEP_DAYS", "1d")
    assert invoke("prune").stdout == "removed 0 executions\n"
    monkeypatch.setenv("CONV3N_HISTORY_KEEP_LAST", "3")
    assert invoke("prune").stdout == "removed 1 execution\n"
    assert invoke("prune", "--keep-last", "1").stdout == "removed 2 executions\n"
    assert len(json.loads(invoke("history", "--output", "json").stdout)) == 1
    monkeypatch.setenv("CONV3N_HISTORY_KEEP_LAST", "many")
    bad = invoke("prune")
    assert bad.exit_code == 2 and "CONV3N_HISTORY_KEEP_LAST" in bad.stderr
    monkeypatch.delenv("CONV3N_HISTORY_KEEP_LAST")
    monkeypatch.setenv("CONV3N_HISTORY_KEEP_DAYS", "0")
    unset = invoke("prune")
    assert unset.exit_code == 2 and "history_keep_days" in unset.stderr


WRITER = {
    "name": "writer",
    "nodes": {
        "save": {"type": "std/file", "config": {"operation": "write", "path": "out/r.json",
                                                "content": {"n": 1}, "mkdirs": True}},
    },
}  # fmt: skip


def test_run_store_records_artifacts_and_show_lists_them(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """`run --store` records the file std/file wrote; `show` lists it under the node runs."""
    wf = write(tmp_path / "w.json", WRITER)
    eid = json.loads(invoke("run", wf, "--store", "-q").stdout)["execution_id"]
    written = Path(env["CONV3N_FILES_ROOT"]) / "out" / "r.json"
    size = written.stat().st_size
    shown = invoke("show", eid)
    assert shown.exit_code == 0
    table = shown.stdout
    assert table.index("node runs") < table.index("artifacts")
    assert "out/r.json" in table and f"{size} B" in table
    data = json.loads(invoke("show", eid, "--output", "json").stdout)
    [artifact] = data["artifacts"]
    assert artifact["name"] == "out/r.json" and artifact["node_id"] == "save"
    assert artifact["size"] == size and artifact["path"] == str(written)


def test_plain_run_writes_files_and_records_nothing(tmp_path: Path, env: dict[str, str]) -> None:
    """Without --store the file is written and no store is opened or created."""
    wf = write(tmp_path / "w.json", WRITER)
    ran = conv3n(env, "run", wf, "-q")
    assert ran.returncode == 0, ran.stderr
    assert json.loads((Path(env["CONV3N_FILES_ROOT"]) / "out" / "r.json").read_text()) == {"n": 1}
    assert not (tmp_path / "conv3n.db").exists()


def test_missing_store_extra_gives_the_install_line(tmp_path: Path, env: dict[str, str]) -> None:
    """Without SQLAlchemy the store commands exit 2 with the pip line; a plain run still works."""
    wf = write(tmp_path / "n.json", {"name": "n", "nodes": {"a": {"type": "std/noop"}}})
    for args, code in [
        (["history"], 2), (["workflows"], 2), (["retry", "x"], 2), (["prune", "--keep-last", "1"], 2),
        (["run", wf, "--store", "-q"], 2), (["run", wf, "-q"], 0),
    ]:  # fmt: skip
        script = (
            "import sys; sys.modules['sqlalchemy'] = None\n"
            "from conv3n_jupyter.cli import main\n"
            f"main({args!r}, prog_name='conv3n')\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60,
            check=False,
        )  # fmt: skip
        assert proc.returncode == code, (args, proc.stderr)
        if code:
            assert "pip install 'conv3n-jupyter[store]'" in proc.stderr, args
    assert not (tmp_path / "conv3n.db").exists()
