"""The template gallery: every template loads, and every offline one runs with real results.

Offline templates (``"x-offline": true``) run with ``run_sync`` inside a temporary files root
holding a copy of ``templates/``. The network templates never reach the internet here: they
are validated, and run only against a stub API on 127.0.0.1 passed in through their URL params.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from conv3n_jupyter import run_sync
from conv3n_jupyter.blocks import registry
from conv3n_jupyter.model import load

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
TEMPLATES = sorted(TEMPLATES_DIR.glob("*.conv3n.json"))
NETWORK = {"github_digest", "weather_alert"}


def _raw(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _name(path: Path) -> str:
    return path.name.removesuffix(".conv3n.json")


def _nodes(wf: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of a workflow dict, loop bodies included, whatever the node shape."""
    nodes = wf["nodes"]
    found = list(nodes.values()) if isinstance(nodes, dict) else list(nodes)
    for node in list(found):
        body = node.get("config", {}).get("body")
        if isinstance(body, dict) and "nodes" in body:
            found.extend(_nodes(body))
    return found


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A files root with a copy of templates/ in it, used as the working directory too."""
    shutil.copytree(TEMPLATES_DIR, tmp_path / "templates")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONV3N_FILES_ROOT", str(tmp_path))
    return tmp_path


def run(root: Path, template: str, **params: Any) -> dict[str, Any]:
    result = run_sync(str(root / "templates" / f"{template}.conv3n.json"), params)
    assert result["status"] == "success", result.get("error")
    return result


# -- every template ----------------------------------------------------------------------------


def test_the_gallery_has_at_least_ten_templates() -> None:
    """The gallery ships at least ten templates."""
    assert len(TEMPLATES) >= 10


@pytest.mark.parametrize("path", TEMPLATES, ids=_name)
def test_template_validates_and_documents_itself(path: Path) -> None:
    """Each template loads, is named after its file, describes itself and lays out its nodes."""
    wf = load(path)
    raw = _raw(path)
    assert wf.name == _name(path)
    assert wf.description and len(wf.description) > 40
    assert isinstance(raw.get("x-offline"), bool)
    assert raw["x-offline"] == (_name(path) not in NETWORK)
    if not raw["x-offline"]:
        assert wf.description.startswith("NEEDS NETWORK")
    assert all("position" in node for node in _nodes(raw))
    for name, decl in wf.params.items():
        assert "default" in decl and decl.get("description"), name


@pytest.mark.parametrize("path", TEMPLATES, ids=_name)
def test_template_is_in_the_readme_table(path: Path) -> None:
    """templates/README.md has a row per template saying whether it needs the network."""
    readme = (TEMPLATES_DIR / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith(f"| [{path.name}]")]
    assert len(rows) == 1
    assert f"conv3n run templates/{path.name}" in rows[0]
    assert ("| **yes** |" in rows[0]) == (_name(path) in NETWORK)


def test_the_gallery_covers_every_block_and_feature() -> None:
    """Together the templates use every block, transform operation and engine feature."""
    raws = [_raw(p) for p in TEMPLATES]
    nodes = [n for raw in raws for n in _nodes(raw)]
    types = {n["type"] for n in nodes}
    assert set(registry._BUILTIN) - {"std/noop"} <= types
    ops = {op["type"] for n in nodes for op in n.get("config", {}).get("operations", [])}
    assert ops == {"pick", "omit", "rename", "set", "jsonpath", "map", "filter", "sort", "convert"}
    file_ops = {n["config"]["operation"] for n in nodes if n["type"] == "std/file"}
    assert {"read", "write", "list", "exists", "mkdir", "copy", "delete"} <= file_ops
    loops = [n["config"] for n in nodes if n["type"] == "std/loop"]
    assert any("body" in c and "concurrency" in c and "batch_size" in c for c in loops)
    assert any("body" not in c and "map" in c for c in loops)
    assert any("cases" in n["config"] for n in nodes if n["type"] == "std/condition")
    assert any(n.get("retry", {}).get("backoff") == "exponential" for n in nodes)
    assert any("timeout" in n for n in nodes)
    assert any(n.get("on_error") == "continue" for n in nodes)
    assert any("fallback" in n for n in nodes)
    assert any("depends_on" in n for n in nodes)
    assert any(raw.get("groups") for raw in raws)
    assert any(isinstance(raw["nodes"], list) for raw in raws)
    edges = [e for raw in raws for e in raw.get("edges", [])]
    assert {"error", "true", "false", "success"} <= {e.get("sourceHandle") for e in edges}


@pytest.mark.parametrize("path", [p for p in TEMPLATES if _raw(p)["x-offline"]], ids=_name)
def test_offline_template_runs_with_its_defaults(root: Path, path: Path) -> None:
    """Every offline template succeeds with its default params, without a failed node."""
    result = run(root, _name(path))
    assert result["output"] is not None
    failed = [nid for nid, r in result["nodes"].items() if r["status"] == "error"]
    assert failed == []


# -- offline templates, one by one -------------------------------------------------------------


def test_hello_greets(root: Path) -> None:
    """hello turns the name param into a greeting object, with a default."""
    assert run(root, "hello")["output"] == {
        "greeting": "Hello, World!",
        "name": "World",
        "letters": 5,
    }
    assert run(root, "hello", name="Ada")["output"]["greeting"] == "Hello, Ada!"


def test_welcome_pair_joins_two_child_runs(root: Path) -> None:
    """welcome_pair runs hello twice as sub-workflows and joins their outputs."""
    result = run(root, "welcome_pair", guest="Linus")
    assert result["output"] == {"from": "Hello, Ada!", "to": "Hello, Linus!", "letters": 8}
    assert result["nodes"]["greet_guest"]["data"]["name"] == "Linus"


def test_csv_report_totals_the_paid_orders_and_writes_the_report(root: Path) -> None:
    """csv_report converts, filters and ranks the CSV rows and writes exact totals to out/."""
    result = run(root, "csv_report")
    assert result["output"] == {
        "written_to": "out/orders_report.json",
        "orders": 9,
        "revenue": 2066.19,
        "by_region": {"APAC": 201.0, "EU": 475.2, "US": 1389.99},
    }
    report = json.loads((root / "out" / "orders_report.json").read_text(encoding="utf-8"))
    assert report["period"] == {"from": "2024-03-01", "to": "2024-03-06"}
    assert report["average_order"] == 229.58
    assert [o["order_id"] for o in report["largest_orders"]] == [1008, 1002, 1005]
    assert report["top_customers"][0] == {"customer": "Stark Industries", "amount": 999.99}
    amounts = [o["amount"] for o in result["nodes"]["clean"]["data"]]
    assert amounts == sorted(amounts, reverse=True)
    assert "status" not in result["nodes"]["clean"]["data"][0]


def test_csv_report_params_change_the_status_and_the_folder(root: Path) -> None:
    """csv_report's status and output_dir params select other rows and another folder."""
    result = run(root, "csv_report", status="refunded", output_dir="reports/march", top=1)
    assert result["output"]["orders"] == 1
    assert result["output"]["revenue"] == 99.0
    report = json.loads((root / "reports/march/orders_report.json").read_text(encoding="utf-8"))
    assert report["largest_orders"] == [{"order_id": 1003, "customer": "Initech", "amount": 99.0}]


@pytest.mark.parametrize(
    ("order", "queue", "extra"),
    [
        (
            {"id": "A-1", "customer_email": "a@example.com", "tier": "gold", "total": "20"},
            "priority",
            {"sla_hours": 4},
        ),
        (
            {"id": "A-2", "customer_email": "b@example.com", "tier": "silver", "total": "1500.5"},
            "priority",
            {"total": 1500.5},
        ),
        (
            {"id": "A-3", "customer_email": "c@example.com", "tier": "silver", "total": "80"},
            "standard",
            {"sla_hours": 48},
        ),
        (
            {"id": "A-4", "tier": "gold", "total": "80"},
            "rejected",
            {"reason": "no customer e-mail"},
        ),
        (
            {"id": "A-5", "customer_email": "e@example.com", "total": "0"},
            "rejected",
            {"reason": "total must be more than zero"},
        ),
    ],
    ids=["gold", "big-total", "normal", "no-email", "zero-total"],
)
def test_order_router_routes_each_kind_of_order(
    root: Path, order: dict[str, Any], queue: str, extra: dict[str, Any]
) -> None:
    """order_router sends each order down exactly one case branch and joins it into a ticket."""
    result = run(root, "order_router", order=order)
    ticket = result["output"]
    assert ticket["queue"] == queue
    assert ticket["id"] == order["id"]
    assert "tier" not in ticket
    for key, value in extra.items():
        assert ticket[key] == value
    ran = [
        n for n in ("reject", "priority", "standard") if result["nodes"][n]["status"] == "success"
    ]
    assert len(ran) == 1


def test_retry_and_fallback_falls_back_after_three_quick_attempts(root: Path) -> None:
    """With nothing listening, health is tried 3 times, then use_cache answers; all in < 5 s."""
    result = run(root, "retry_and_fallback", cached_status="degraded")
    health = result["nodes"]["health"]
    assert health["attempts"] == 3
    assert health["fallback"] == "use_cache"
    assert health["duration_ms"] < 5000
    out = result["output"]
    assert out["source"] == "cache"
    assert out["service_status"] == "degraded"
    assert "could not connect" in out["reason"]


def test_retry_and_fallback_uses_the_live_answer_when_there_is_one(
    root: Path, stub_api: str
) -> None:
    """When the endpoint answers, the fallback stays skipped and the live status comes through."""
    result = run(root, "retry_and_fallback", url=f"{stub_api}/health")
    assert result["output"] == {"source": "live", "service_status": "ok", "attempts": 1}
    assert result["nodes"]["use_cache"]["status"] == "skipped"


def test_batch_enrich_runs_one_body_per_batch_and_flattens(root: Path) -> None:
    """batch_enrich drops the contact without e-mail, runs 4 batch bodies, keeps every record."""
    result = run(root, "batch_enrich")
    batches = result["nodes"]["enrich"]["data"]
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert [{r["batch"] for r in b} for b in batches] == [{0}, {1}, {2}, {3}]
    people = result["output"]
    assert len(people) == 10
    assert [p["name"] for p in people] == sorted(p["name"] for p in people)
    ada = people[0]
    assert ada == {
        "name": "Ada Lovelace",
        "email": "ada.lovelace@analytical.example",
        "username": "ada_lovelace",
        "domain": "analytical.example",
        "initials": "AL",
        "company": True,
        "batch": 0,
        "source": "crm-export",
    }
    assert {p["name"] for p in people if not p["company"]} == {"Linus", "Barbara Liskov"}


def test_batch_enrich_batch_size_param(root: Path) -> None:
    """A larger batch_size makes fewer body runs over the same contacts."""
    result = run(root, "batch_enrich", batch_size=5, pause_ms=0, source="test")
    assert [len(b) for b in result["nodes"]["enrich"]["data"]] == [5, 5]
    assert {p["source"] for p in result["output"]} == {"test"}


def test_counter_with_vars_keeps_a_running_total(root: Path) -> None:
    """counter_with_vars adds both loops' counts into one variable and reads it back."""
    out = run(root, "counter_with_vars")["output"]
    assert out["long_words"] == 7
    assert out["words"] == [
        "workflows",
        "notebook",
        "every",
        "block",
        "separate",
        "process",
        "retries",
    ]
    out = run(root, "counter_with_vars", min_length=8)["output"]
    assert out == {"long_words": 3, "min_length": 8, "words": ["workflows", "notebook", "separate"]}


def test_error_boundary_writes_a_receipt_when_the_charge_succeeds(root: Path) -> None:
    """Within the card limit, charge and receipt run and the handler stays skipped."""
    result = run(root, "error_boundary")
    receipt = json.loads((root / "out/receipts/A-1001.json").read_text(encoding="utf-8"))
    assert receipt == {"order_id": "A-1001", "charge_id": "ch_a-1001", "amount": 120.0}
    assert result["nodes"]["alert"]["status"] == "skipped"
    assert not (root / "out/incidents.jsonl").exists()


def test_error_boundary_handles_a_declined_charge(root: Path) -> None:
    """A failing charge skips the receipt, runs the group's handler, and the run succeeds."""
    result = run(root, "error_boundary", card_limit=10)
    nodes = result["nodes"]
    assert nodes["charge"]["status"] == "error"
    assert nodes["receipt"]["status"] == "skipped"
    assert nodes["alert"]["data"]["failed_node"] == "charge"
    assert "card declined" in nodes["alert"]["data"]["reason"]
    lines = (root / "out/incidents.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["order_id"] for line in lines] == ["A-1001"]
    assert not (root / "out/receipts").exists()


def test_dead_letter_accepts_good_events_and_quarantines_bad_ones(root: Path) -> None:
    """Good payloads go to events.jsonl; bad ones leave on the error port into dead_letter.jsonl."""
    run(root, "dead_letter")
    bad = run(root, "dead_letter", payload="not json")
    assert bad["nodes"]["parse"]["port"] == "error"
    assert bad["nodes"]["accept"]["status"] == "skipped"
    run(root, "dead_letter", payload='{"event": "login"}')
    events = (root / "out/events.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(e) for e in events] == [{"event": "signup", "user_id": 42, "plan": "pro"}]
    dead = [
        json.loads(e)
        for e in (root / "out/dead_letter.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert [d["payload"] for d in dead] == ["not json", '{"event": "login"}']
    assert "JSONDecodeError" in dead[0]["reason"]
    assert "missing field(s): user_id" in dead[1]["reason"]


def test_rate_limited_poll_gives_up_after_three_spaced_checks(root: Path) -> None:
    """With no file, the poll checks three times, waiting between checks, then gives up."""
    result = run(root, "rate_limited_poll", interval_ms=50)
    assert result["output"] == {
        "give_up": {
            "ready": False,
            "message": "out/export.json did not appear after 3 checks, 50 ms apart",
        }
    }
    waits = [result["nodes"][w]["duration_ms"] for w in ("wait_1", "wait_2")]
    assert all(w >= 45 for w in waits)


def test_rate_limited_poll_reads_a_file_that_is_already_there(root: Path) -> None:
    """An existing file is read at the first check, without waiting."""
    (root / "out").mkdir()
    (root / "out/export.json").write_text('{"rows": 12}', encoding="utf-8")
    result = run(root, "rate_limited_poll")
    assert result["output"] == {"result": {"rows": 12, "ready": True, "found_at_check": 1}}
    assert result["nodes"]["wait_1"]["status"] == "skipped"


def test_rate_limited_poll_finds_a_file_that_appears_while_waiting(root: Path) -> None:
    """A file written during the first wait is found by the second check."""
    wf = load(root / "templates/rate_limited_poll.conv3n.json")
    target = root / "out/export.json"
    target.parent.mkdir()
    timer = threading.Timer(0.3, target.write_text, args=('{"rows": 5}',))
    timer.start()
    try:
        result = run_sync(wf, {"interval_ms": 1000})
    finally:
        timer.cancel()
    assert result["status"] == "success"
    assert result["output"] == {"result": {"rows": 5, "ready": True, "found_at_check": 2}}


def test_list_shape_runs_both_branches(root: Path) -> None:
    """list_shape keeps its list shape and sends the reading to the hot or the mild branch."""
    wf = load(root / "templates/list_shape.conv3n.json")
    assert wf.node_shape == "list"
    assert [e.id for e in wf.edges] == ["e-convert-is_hot", "e-is_hot-hot", "e-is_hot-mild"]
    hot = run(root, "list_shape")["output"]["hot"]
    assert hot["fahrenheit"] == pytest.approx(88.7)
    assert hot["kelvin"] == pytest.approx(304.65)
    mild = run(root, "list_shape", celsius=12)["output"]["mild"]
    assert mild["feels"] == "mild"
    assert mild["fahrenheit"] == pytest.approx(53.6)


def test_file_housekeeping_archives_matching_files(root: Path) -> None:
    """Matching inbox files are copied to the archive, checked, removed; others stay."""
    inbox = root / "inbox"
    (inbox / "sub").mkdir(parents=True)
    (inbox / "a.csv").write_text("x,y\n1,2\n", encoding="utf-8")
    (inbox / "b.csv").write_text("x,y\n3,4\n", encoding="utf-8")
    (inbox / "notes.txt").write_text("keep me", encoding="utf-8")
    result = run(root, "file_housekeeping")
    assert result["output"]["manifest"]["path"] == "archive/manifest.json"
    manifest = json.loads((root / "archive/manifest.json").read_text(encoding="utf-8"))
    assert manifest == [
        {"from": "inbox/a.csv", "to": "archive/inbox/a.csv", "removed": True},
        {"from": "inbox/b.csv", "to": "archive/inbox/b.csv", "removed": True},
    ]
    assert (root / "archive/inbox/b.csv").read_text(encoding="utf-8") == "x,y\n3,4\n"
    assert sorted(p.name for p in inbox.iterdir()) == ["notes.txt", "sub"]
    again = run(root, "file_housekeeping")
    assert again["output"] == {"idle": {"archived": 0, "message": "nothing to archive in inbox"}}


def test_file_housekeeping_without_an_inbox_is_idle(root: Path) -> None:
    """A missing inbox ends on idle without creating the archive."""
    result = run(root, "file_housekeeping", inbox="nowhere")
    assert result["output"] == {"idle": {"archived": 0, "message": "nothing to archive in nowhere"}}
    assert not (root / "archive").exists()


# -- network templates against a local stub ------------------------------------------------------

ISSUES = [
    {
        "number": 7,
        "title": "Crash on | pipes",
        "user": {"login": "ada"},
        "comments": 2,
        "labels": [{"name": "bug"}],
        "html_url": "https://example.test/7",
        "updated_at": "2024-03-02T10:00:00Z",
    },
    {
        "number": 8,
        "title": "A pull request",
        "user": {"login": "bob"},
        "comments": 9,
        "labels": [],
        "html_url": "https://example.test/8",
        "updated_at": "2024-03-03T10:00:00Z",
        "pull_request": {},
    },
    {
        "number": 9,
        "title": "Docs typo",
        "user": {"login": "cy"},
        "comments": 5,
        "labels": [],
        "html_url": "https://example.test/9",
        "updated_at": "2024-03-04T10:00:00Z",
    },
]
PLACES = {"Berlin": {"name": "Berlin", "country": "Germany", "latitude": 52.52, "longitude": 13.41}}
READINGS = {  # by latitude, set per test
    "current": {
        "time": "2024-03-01T12:00",
        "temperature_2m": 12.0,
        "wind_speed_10m": 10.0,
        "precipitation": 0.0,
    }
}


class _StubAPI(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        status, body = 404, {"message": "Not Found"}
        if url.path == "/health":
            status, body = 200, {"status": "ok"}
        elif url.path == "/repos/octo/demo/issues":
            status, body = 200, ISSUES[: int(query.get("per_page", "30"))]
        elif url.path == "/v1/search":
            place = PLACES.get(query.get("name", ""))
            status, body = 200, ({"results": [place]} if place else {"generationtime_ms": 0.1})
        elif url.path == "/v1/forecast":
            status, body = 200, {"latitude": float(query["latitude"]), **READINGS}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def stub_api() -> Iterator[str]:
    """A small stand-in for the GitHub, Open-Meteo and health APIs on 127.0.0.1."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StubAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_github_digest_writes_a_markdown_table(root: Path, stub_api: str) -> None:
    """github_digest drops pull requests, ranks issues by comments and writes the digest."""
    result = run(root, "github_digest", repo="octo/demo", api_url=stub_api)
    out = result["output"]["summary"]
    assert out == {
        "repo": "octo/demo",
        "count": 2,
        "written_to": "out/github_digest.md",
        "top": ["Docs typo", "Crash on | pipes"],
    }
    assert result["nodes"]["issues"]["data"][1] == {
        "number": 7,
        "title": "Crash on | pipes",
        "author": "ada",
        "comments": 2,
        "labels": ["bug"],
        "url": "https://example.test/7",
        "updated_at": "2024-03-02T10:00:00+00:00",
    }
    markdown = (root / "out/github_digest.md").read_text(encoding="utf-8")
    assert markdown.startswith("# Open issues in octo/demo\n")
    assert "| [9](https://example.test/9) | Docs typo | @cy | 5 | - |" in markdown
    assert "Crash on \\| pipes" in markdown
    assert "pull request" not in markdown


def test_github_digest_reports_api_errors(root: Path, stub_api: str) -> None:
    """An unknown repository ends on api_error with GitHub's message, not as a failed run."""
    result = run(root, "github_digest", repo="octo/missing", api_url=stub_api)
    assert result["output"] == {
        "api_error": {"repo": "octo/missing", "status": 404, "message": "Not Found"}
    }
    assert result["nodes"]["issues"]["status"] == "skipped"


@pytest.mark.parametrize(
    ("reading", "kind", "level"),
    [
        (
            {"temperature_2m": 12.0, "wind_speed_10m": 75.0, "precipitation": 2.0},
            "storm",
            "warning",
        ),
        ({"temperature_2m": 33.5, "wind_speed_10m": 10.0, "precipitation": 0.0}, "heat", "warning"),
        (
            {"temperature_2m": -4.0, "wind_speed_10m": 10.0, "precipitation": 0.0},
            "frost",
            "warning",
        ),
        ({"temperature_2m": 14.0, "wind_speed_10m": 10.0, "precipitation": 1.2}, "rain", "info"),
        ({"temperature_2m": 18.0, "wind_speed_10m": 10.0, "precipitation": 0.0}, "calm", "ok"),
    ],
    ids=["storm", "heat", "frost", "rain", "calm"],
)
def test_weather_alert_picks_the_first_matching_case(
    root: Path,
    stub_api: str,
    monkeypatch: pytest.MonkeyPatch,
    reading: dict[str, float],
    kind: str,
    level: str,
) -> None:
    """weather_alert's cases pick one branch by priority and the alert node collects it."""
    monkeypatch.setitem(READINGS, "current", {"time": "2024-03-01T12:00", **reading})
    result = run(
        root,
        "weather_alert",
        geocoding_url=f"{stub_api}/v1/search",
        forecast_url=f"{stub_api}/v1/forecast",
    )
    alert = result["output"]["alert"]
    assert alert["level"] == level
    assert alert["city"] == "Berlin" and alert["country"] == "Germany"
    assert alert["message"].startswith(f"{kind.capitalize() if kind != 'calm' else 'All calm'}")
    assert result["nodes"]["classify"]["port"] == kind


def test_weather_alert_unknown_city(root: Path, stub_api: str) -> None:
    """A city the geocoder does not know ends on unknown_city, not as a failed run."""
    result = run(
        root,
        "weather_alert",
        city="Atlantis",
        geocoding_url=f"{stub_api}/v1/search",
        forecast_url=f"{stub_api}/v1/forecast",
    )
    assert result["output"] == {
        "unknown_city": {
            "city": "Atlantis",
            "level": "error",
            "message": "No place called Atlantis was found.",
        }
    }


def test_orders_to_sqlite_loads_and_reports_with_sql(root: Path) -> None:
    """orders_to_sqlite upserts the paid orders into SQLite and sums them per region in SQL;
    running it again gives the same table (upserts, not duplicates)."""
    expected = {
        "rows": [
            {"region": "APAC", "orders": 2, "revenue": 201.0},
            {"region": "EU", "orders": 4, "revenue": 475.2},
            {"region": "US", "orders": 3, "revenue": 1389.99},
        ],
        "count": 3,
    }
    assert run(root, "orders_to_sqlite")["output"] == expected
    assert run(root, "orders_to_sqlite")["output"] == expected
    assert (root / "out" / "orders.db").is_file()
