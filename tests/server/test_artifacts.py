"""Execution artifacts over HTTP: std/file writes recorded with a store, listed, downloaded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conv3n_jupyter.store.database import open_store
from conv3n_jupyter.store.maintenance import create_artifact

from .conftest import Api, start_api


@pytest.fixture
def files_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Api, Path]]:
    """A server whose files root (settings and engine) is a temp folder."""
    root = tmp_path / "files"
    root.mkdir()
    monkeypatch.setenv("CONV3N_FILES_ROOT", str(root))
    found, stop = start_api(tmp_path / "artifacts.db", files_root=str(root))
    try:
        yield found, root
    finally:
        stop()


def _writer() -> dict[str, Any]:
    def write(path: str, content: Any, **extra: Any) -> dict[str, Any]:
        config = {"operation": "write", "path": path, "content": content, "mkdirs": True}
        return {"type": "std/file", "config": {**config, **extra}}

    return {
        "name": "writer",
        "nodes": {
            "data": write("out/data.json", {"a": 1, "b": [1, 2]}),
            "note": write("out/note.txt", "hello\n"),
            "again": write("out/note.txt", "world\n", mode="append"),
            "copy": {
                "type": "std/file",
                "config": {"operation": "copy", "path": "out/note.txt", "destination": "kept.txt"},
            },
            "draft": write("tmp/draft.txt", "draft"),
            "publish": {
                "type": "std/file",
                "config": {
                    "operation": "move",
                    "path": "tmp/draft.txt",
                    "destination": "final.txt",
                },
            },
            "each": {
                "type": "std/loop",
                "config": {
                    "items": ["x", "y"],
                    "body": {"nodes": {"save": write("loop/{{ $params.item }}.txt", "item")}},
                },
            },
            "look": {"type": "std/file", "config": {"operation": "read", "path": "out/data.json"}},
        },
        "edges": [
            {"source": "data", "target": "note"},
            {"source": "note", "target": "again"},
            {"source": "again", "target": "copy"},
            {"source": "copy", "target": "draft"},
            {"source": "draft", "target": "publish"},
            {"source": "publish", "target": "each"},
            {"source": "each", "target": "look"},
        ],
    }


def _run(client: httpx.Client, wf: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = client.post("/api/run", json={"workflow": wf}).json()
    assert result["status"] == "success", result
    return result


def test_written_files_are_listed_and_downloadable(files_api: tuple[Api, Path]) -> None:
    api, root = files_api
    with httpx.Client(base_url=api.url, timeout=30) as client:
        eid = _run(client, _writer())["execution_id"]
        items = client.get(f"/api/executions/{eid}/artifacts").json()["items"]
        by_name = {a["name"]: a for a in items}
        # Written twice (overwrite then append): one artifact with the final size.
        # Moved: recorded under its new name only.
        assert sorted(by_name) == [
            "final.txt",
            "kept.txt",
            "loop/x.txt",
            "loop/y.txt",
            "out/data.json",
            "out/note.txt",
        ]
        assert by_name["out/note.txt"]["size"] == len("hello\nworld\n")
        assert by_name["out/note.txt"]["node_id"] == "again"
        assert by_name["kept.txt"]["node_id"] == "copy"
        assert by_name["final.txt"]["node_id"] == "publish"
        assert by_name["loop/x.txt"]["node_id"] == "each.body.0/save"
        assert set(items[0]) == {"id", "name", "node_id", "size", "created_at"}
        # The execution itself lists them too; its other fields are unchanged.
        row = client.get(f"/api/executions/{eid}").json()
        assert [a["name"] for a in row["artifacts"]] == [a["name"] for a in items]
        assert row["status"] == "success" and "look" in row["nodes"]

        got = client.get(f"/api/executions/{eid}/artifacts/{by_name['out/data.json']['id']}")
        assert got.status_code == 200
        assert got.content == (root / "out" / "data.json").read_bytes()
        assert got.headers["content-type"].startswith("application/json")
        assert got.headers["content-disposition"].startswith("attachment")
        assert 'filename="data.json"' in got.headers["content-disposition"]
        text = client.get(f"/api/executions/{eid}/artifacts/{by_name['out/note.txt']['id']}")
        assert text.text == "hello\nworld\n"
        assert text.headers["content-type"].startswith("text/plain")


def test_missing_files_unknown_ids_and_paths_outside_the_root(
    files_api: tuple[Api, Path], tmp_path: Path
) -> None:
    api, root = files_api
    with httpx.Client(base_url=api.url, timeout=30) as client:
        eid = _run(client, _writer())["execution_id"]
        items = {
            a["name"]: a for a in client.get(f"/api/executions/{eid}/artifacts").json()["items"]
        }
        (root / "kept.txt").unlink()
        gone = client.get(f"/api/executions/{eid}/artifacts/{items['kept.txt']['id']}")
        assert gone.status_code == 410
        assert gone.json()["error"]["code"] == "gone"
        assert "kept.txt" in gone.json()["error"]["message"]

        assert client.get(f"/api/executions/{eid}/artifacts/999999").status_code == 404
        assert client.get("/api/executions/nope/artifacts").status_code == 404
        assert client.get("/api/executions/nope/artifacts/1").status_code == 404

        # A row pointing outside the files root (a tampered database) is never served,
        # neither directly nor through a symlink inside the root.
        secret = tmp_path / "secret.txt"
        secret.write_text("do not serve")
        (root / "link.txt").symlink_to(secret)
        store = open_store(api.settings.database_url)
        try:
            direct = create_artifact(store, eid, "secret.txt", path=secret)
            linked = create_artifact(store, eid, "link.txt", path=root / "link.txt")
            dotted = create_artifact(store, eid, "up.txt", path=f"{root}/../secret.txt")
        finally:
            store.close()
        for aid in (direct, linked, dotted):
            refused = client.get(f"/api/executions/{eid}/artifacts/{aid}")
            assert refused.status_code == 403, refused.text
            assert "outside the files root" in refused.json()["error"]["message"]
            assert "do not serve" not in refused.text


def test_worker_processes_record_artifacts_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the worker pool the run happens in another process; its files are recorded."""
    root = tmp_path / "files"
    root.mkdir()
    monkeypatch.setenv("CONV3N_FILES_ROOT", str(root))
    api, stop = start_api(tmp_path / "pool.db", files_root=str(root), workers=1)
    wf = {
        "name": "pooled",
        "nodes": {
            "save": {
                "type": "std/file",
                "config": {"operation": "write", "path": "p.txt", "content": "from a worker"},
            }
        },
    }
    try:
        with httpx.Client(base_url=api.url, timeout=30) as client:
            eid = _run(client, wf)["execution_id"]
            [art] = client.get(f"/api/executions/{eid}/artifacts").json()["items"]
            assert (art["name"], art["node_id"], art["size"]) == ("p.txt", "save", 13)
            got = client.get(f"/api/executions/{eid}/artifacts/{art['id']}")
            assert got.text == "from a worker"
    finally:
        stop()
