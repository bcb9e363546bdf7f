"""Saved workflows over HTTP: create, read, list, versions, restore, delete, run by id."""

from __future__ import annotations

import uuid

import httpx

from ._workflows import hello


def _wid() -> str:
    return "wf-" + uuid.uuid4().hex[:12]


def test_workflow_crud_with_versions_and_restore(client: httpx.Client) -> None:
    """Create v1, save v2, read both, restore v1 as v3, list, then delete."""
    wid = _wid()
    r = client.post("/api/workflows", json=hello("first", wid))
    assert r.status_code == 201, r.text
    assert r.json()["id"] == wid and r.json()["version"] == 1

    assert client.post("/api/workflows", json=hello("again", wid)).status_code == 409
    assert client.post("/api/workflows", json=hello("again", wid)).json()["error"]["code"] == (
        "conflict"
    )

    r = client.put(f"/api/workflows/{wid}", json=hello("second"))
    assert r.status_code == 200
    assert r.json()["version"] == 2

    assert client.get(f"/api/workflows/{wid}").json()["name"] == "second"
    v1 = client.get(f"/api/workflows/{wid}/versions/1").json()
    assert v1["version"] == 1 and v1["definition"]["name"] == "first"
    versions = client.get(f"/api/workflows/{wid}/versions").json()["items"]
    assert [v["version"] for v in versions] == [1, 2]

    r = client.post(f"/api/workflows/{wid}/versions/1/restore")
    assert r.status_code == 200
    assert r.json()["version"] == 3 and r.json()["definition"]["name"] == "first"

    listed = {w["id"]: w for w in client.get("/api/workflows").json()["items"]}
    assert listed[wid]["version"] == 3

    assert client.delete(f"/api/workflows/{wid}").status_code == 204
    r = client.get(f"/api/workflows/{wid}")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert client.delete(f"/api/workflows/{wid}").status_code == 404
    assert client.get(f"/api/workflows/{wid}/versions/9").status_code == 404


def test_a_generated_id_is_used_when_the_body_has_none(client: httpx.Client) -> None:
    """POST without an id saves under a new random id."""
    r = client.post("/api/workflows", json=hello("anon"))
    assert r.status_code == 201
    wid = r.json()["id"]
    assert len(wid) >= 16
    assert client.get(f"/api/workflows/{wid}").status_code == 200


def test_invalid_definitions_are_not_saved(client: httpx.Client) -> None:
    """A workflow with problems answers 422 on create and on update; nothing changes."""
    wid = _wid()
    bad = {"id": wid, "name": "x", "nodes": {"a": {"type": "std/nope"}}}
    r = client.post("/api/workflows", json=bad)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["path"] == "nodes.a.type"
    assert client.get(f"/api/workflows/{wid}").status_code == 404
    client.post("/api/workflows", json=hello("ok", wid))
    assert client.put(f"/api/workflows/{wid}", json=bad).status_code == 422
    assert client.put(f"/api/workflows/{wid}", json=hello("ok", "other-id")).status_code == 422
    assert client.get(f"/api/workflows/{wid}").json()["version"] == 1


def test_run_a_saved_workflow_by_id_and_version(client: httpx.Client) -> None:
    """Both /api/workflows/{id}/run and /api/run with workflow_id run the saved versions."""
    wid = _wid()
    client.post("/api/workflows", json=hello("v1", wid))
    wf2 = hello("v2")
    wf2["nodes"]["greet"]["config"]["operations"][0]["values"]["greeting"] = "Hi {{ $item.name }}"
    client.put(f"/api/workflows/{wid}", json=wf2)

    r = client.post(f"/api/workflows/{wid}/run", json={"params": {"name": "Ada"}})
    assert r.status_code == 200
    assert r.json()["output"] == {"greeting": "Hi Ada"}
    r = client.post("/api/run", json={"workflow_id": wid, "version": 1, "params": {"name": "Ada"}})
    assert r.json()["output"] == {"greeting": "Hello, Ada!"}
    row = client.get(f"/api/executions/{r.json()['execution_id']}").json()
    assert (row["workflow_id"], row["workflow_version"]) == (wid, 1)
    r = client.post(f"/api/workflows/{wid}/run")  # no body: the defaults
    assert r.json()["output"] == {"greeting": "Hi World"}
    r = client.post(f"/api/workflows/{wid}/run?wait=false")
    assert r.status_code == 202
    assert client.post("/api/run", json={"workflow_id": "no-such-wf"}).status_code == 404
    assert client.post(f"/api/workflows/{wid}/run", json={"version": 7}).status_code == 404
    bad = client.post(f"/api/workflows/{wid}/run", json={"params": {"name": 1}})
    assert bad.status_code == 422
