"""The inspector's HTML: escaping, search, truncation, tables, logs, errors, config diffs, speed."""

from __future__ import annotations

import datetime
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from conv3n_jupyter.jupyter import _html
from conv3n_jupyter.jupyter.run import NodeRun

EVIL = '<script>alert(1)</script>"onload="alert(2)<img src=x onerror=alert(3)>'
ALLOWED_TAGS = {
    "b",
    "code",
    "details",
    "div",
    "mark",
    "pre",
    "span",
    "style",
    "summary",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def assert_safe(html: str) -> None:
    """Only our own tags and attributes appear: nothing from the data became markup."""
    parser = _Tags()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS, (tag, html)
        for name, _ in attrs:
            assert name in {"class", "style", "title", "open"}, (tag, name, html)
    assert "<script" not in html.lower()
    assert '"onload=' not in html


def text_of(html: str) -> str:
    """The visible text (tags removed, entities kept)."""
    return re.sub(r"<style>.*?</style>|<[^>]+>", "", html, flags=re.S)


def test_json_tree_escapes_keys_values_and_search() -> None:
    """Keys, strings, non-JSON reprs and the search text itself are all escaped."""

    class Evil:
        def __repr__(self) -> str:
            return EVIL

    value = {EVIL: [EVIL, {EVIL: Evil()}], "n": 1}
    assert_safe(_html.json_tree(value, open_depth=5))
    assert_safe(_html.json_tree(value, search="script"))
    assert_safe(_html.json_tree(value, search=EVIL))
    assert_safe(_html.json_tree(value, search="<no such>"))
    assert "&lt;script&gt;" in _html.json_tree(value)


def test_json_tree_types_counts_and_open_depth() -> None:
    """Scalars carry their type class; containers show their size; only the first levels open."""
    html = _html.json_tree(
        {"s": "x", "i": 3, "f": 1.5, "b": True, "z": None, "o": {"a": {"b": 1}}, "l": [1, 2]}
    )
    for cls in ("c3-str", "c3-num", "c3-bool", "c3-null"):
        assert f'class="{cls}"' in html
    assert "7 keys" in html and "1 key<" in html and "2 items" in html
    assert html.count("<details") == 4
    assert html.count('<details class="c3-node" open>') == 1
    deeper = _html.json_tree({"o": {"a": {"b": 1}}}, open_depth=3)
    assert deeper.count(" open>") == 3
    assert "[]" in _html.json_tree([]) and "{}" in _html.json_tree({"e": {}})


def test_json_tree_truncates_long_lists_and_strings() -> None:
    """A list past max_items says how many more; a long string is cut with a marker."""
    html = _html.json_tree(list(range(1434)))
    assert "1,434 items" in html
    assert "… 1,234 more" in html
    assert html.count('class="c3-idx"') == 200
    long = _html.json_tree("a" * 5000, max_string=100)
    assert "a" * 100 in long and "a" * 101 not in long
    assert "4,900 more chars" in long


def test_json_tree_search_filters_opens_and_marks() -> None:
    """A search keeps only matching branches, opened, with case-insensitive <mark>s."""
    value = {
        "people": [{"name": "Alice", "age": 30}, {"name": "Bob", "age": 41}],
        "other": {"x": 1},
        "ALIAS": "z",
    }
    html = _html.json_tree(value, search="ali", open_depth=0)
    assert "<mark>Ali</mark>ce" in html and "<mark>ALI</mark>AS" in html
    assert "Bob" not in html and "other" not in html and "age" not in html
    assert '<details class="c3-node">' not in html  # every shown branch is open
    no = _html.json_tree(value, search="zzz")
    assert "No match" in no and "zzz" in no and "Alice" not in no


def test_json_tree_key_match_shows_the_whole_branch() -> None:
    """A matching key shows its whole value, not only the matching parts under it."""
    html = _html.json_tree({"config": {"url": "u", "method": "GET"}, "x": 2}, search="config")
    assert "url" in html and "GET" in html and ">x<" not in html


def test_json_tree_search_counts_matches_past_the_limit() -> None:
    """With a search, matches past max_items are counted as 'more matching'."""
    value = [f"hit {i}" if i % 2 else "miss" for i in range(1000)]
    html = _html.json_tree(value, search="hit", max_items=10)
    assert html.count("<mark>") == 10
    assert "… 490 more matching" in html


def test_json_tree_finds_matches_beyond_the_string_cut() -> None:
    """A match past max_string is shown: the visible window moves to it."""
    html = _html.json_tree("x" * 5000 + "needle" + "y" * 5000, search="needle", max_string=200)
    assert "<mark>needle</mark>" in html and "more chars" in html and "chars … " in html


def test_json_tree_handles_non_json_and_deep_values() -> None:
    """Non-JSON values show as repr; absurd nesting and cycles stop at a depth marker."""
    html = _html.json_tree({"when": datetime.date(2024, 1, 2), "set": {1}, "t": (1, 2)})
    assert "datetime.date(2024, 1, 2)" in html and "{1}" in html and "2 items" in html
    deep: list[Any] = []
    cur = deep
    for _ in range(5000):
        cur.append([])
        cur = cur[0]
    assert "nested too deep" in _html.json_tree(deep)
    assert "No match" in _html.json_tree(deep, search="x")
    cycle: list[Any] = [1]
    cycle.append(cycle)
    assert "nested too deep" in _html.json_tree(cycle)


def test_json_tree_bounds_the_whole_tree() -> None:
    """max_nodes stops a huge nested value: the containers left say how much is not shown."""
    wide = {f"a{i}": {f"b{j}": list(range(50)) for j in range(50)} for i in range(50)}
    html = _html.json_tree(wide, max_nodes=500)
    assert "… 40 more (the view is full)" in html and "… 49 more (the view is full)" in html
    assert html.count('class="c3-key"') + html.count('class="c3-idx"') < 500


def test_ten_thousand_records_render_truncated() -> None:
    """A 10,000-item list of 10-key objects renders a bounded view (what keeps the inspector
    fast whatever the data), searched to the one matching row."""
    rows = [{f"k{j}": f"value {i} {j}" for j in range(10)} for i in range(10_000)]
    tree = _html.json_tree(rows)
    assert "9,800 more" in tree and len(tree) < 300_000  # 200 of 10,000 items drawn
    view = _html.value_view(rows)
    assert len(view) < 400_000
    found = _html.value_view(rows, search="value 9999 3")
    assert "<mark>value 9999 3</mark>" in found and "1 matching" in found


def test_records_table_detection_and_columns() -> None:
    """Lists of objects become tables with the union of keys as columns; other values do not."""
    assert _html.records_table([1, 2]) is None
    assert _html.records_table([{"a": 1}, 2]) is None
    assert _html.records_table([]) is None
    assert _html.records_table({"a": 1}) is None
    assert _html.records_table([{}, {}]) is None
    html = _html.records_table([{"a": 1, "b": {"c": [1, 2]}}, {"d": None, "a": "x"}])
    assert html is not None
    headers = re.findall(r"<th>(.*?)</th>", html)
    assert headers == ["#", "a", "b", "d"]
    assert "{&quot;c&quot;:[1,2]}" in html
    assert html.count('class="c3-missing"') == 2
    assert "2 rows &times; 3 columns" in html


def test_records_table_limits_columns_and_rows_and_searches() -> None:
    """Only 20 columns and max_rows rows are shown; a search keeps matching rows only."""
    rows = [{f"c{j}": i for j in range(30)} for i in range(50)]
    html = _html.records_table(rows, max_rows=10)
    assert html is not None
    assert html.count("<th>") == 21 and "first 20 columns shown" in html
    assert html.count("<tr>") == 11 and "first 10 shown" in html
    people = [{"name": "Alice"}, {"name": "Bob"}, {"name": "alina"}]
    found = _html.records_table(people, search="ALI")
    assert found is not None and "Bob" not in found and "2 matching" in found
    assert "<mark>Ali</mark>ce" in found and "<mark>ali</mark>na" in found
    none = _html.records_table(people, search="zzz")
    assert none is not None and "<table" not in none and "0 matching" in none


def test_records_table_escapes_cells_and_columns() -> None:
    """Column names, scalar cells and nested cells are escaped."""
    html = _html.records_table([{EVIL: EVIL, "n": {EVIL: [EVIL]}}])
    assert html is not None
    assert_safe(html)
    assert_safe(_html.value_view([{EVIL: EVIL}], search="script"))


def test_value_view_offers_table_and_tree() -> None:
    """A list of objects shows as a table with the tree behind a summary; else just the tree."""
    html = _html.value_view([{"a": 1}])
    assert "<table" in html and "JSON tree" in html and 'class="c3-tree"' in html
    assert "<table" not in _html.value_view({"a": 1})


def test_logs_html_levels_times_and_escaping() -> None:
    """Each log line shows its time, level and escaped message; odd entries still render."""
    ts = datetime.datetime(2024, 5, 6, 7, 8, 9, 123000).timestamp()
    logs = [
        {"ts": ts, "level": "warning", "message": "careful"},
        {"ts": "T", "level": EVIL, "message": EVIL},
        {"message": {"k": [1]}},
        "plain",
    ]
    html = _html.logs_html(logs)
    assert_safe(html)
    assert "07:08:09.123" in html and "c3-lvl-warning" in html and "WARNING" in html
    assert "c3-lvl-other" in html and "{&quot;k&quot;:[1]}" in html and "plain" in html
    assert "No logs" in _html.logs_html([])
    many = _html.logs_html([{"message": str(i)} for i in range(1500)], max_lines=1000)
    assert "… 500 earlier lines" in many and "1499" in many and ">499<" not in many


def test_error_html_expression_error() -> None:
    """An expression error shows its type, message, config key and expression."""
    html = _html.error_html(
        {
            "type": "ExpressionError",
            "message": "config key 'url': expression '$json.x': no such key",
            "node": "fetch",
            "attempts": 1,
            "key": "url",
            "expression": "$json.x",
        }
    )
    assert "ExpressionError" in text_of(html)
    assert "key <code>url</code>" in html and "expression <code>$json.x</code>" in html
    assert "node <code>fetch</code>" in html


def test_error_html_code_error_stack_and_source() -> None:
    """A code error shows the user's stack, the failing line of the source, and leftover details."""
    stack = 'Traceback (most recent call last):\n  File "<code>", line 3, in main\n    return 1 / 0\nZeroDivisionError: division by zero\n'
    error = {
        "type": "CodeError",
        "message": "ZeroDivisionError: division by zero (line 3)",
        "node": "calc",
        "attempts": 2,
        "details": {"error_type": "RuntimeError", "line": 3, "stack": stack, "extra": "kept"},
    }
    source = "def main(input, ctx):\n    x = 1\n    return 1 / 0\n"
    html = _html.error_html(error, source=source)
    assert "CodeError · RuntimeError" in html
    assert "File &quot;&lt;code&gt;&quot;, line 3" in html
    assert '<span class="c3-hot">3 │     return 1 / 0</span>' in html
    assert "line <code>3</code>" in html and "extra" in html and "kept" in html
    assert "No error" in _html.error_html(None)


def test_error_html_escapes_every_field() -> None:
    """Type, message, node, key, expression, stack, stderr, details and the source are escaped."""
    error = {
        "type": EVIL,
        "message": EVIL,
        "node": EVIL,
        "attempts": EVIL,
        "key": EVIL,
        "expression": EVIL,
        "details": {"error_type": EVIL, "line": 1, "stack": EVIL, "stderr": EVIL, EVIL: EVIL},
        EVIL: EVIL,
    }
    assert_safe(_html.error_html(error, source=EVIL))


def test_config_diff_marks_changed_keys() -> None:
    """Keys whose value expressions changed (or that exist on one side only) are highlighted."""
    raw = {"url": "={{ $json.u }}", "method": "GET", "gone": 1}
    resolved = {"url": "https://x", "method": "GET", "added": 2}
    html = _html.config_diff_html(raw, resolved)
    rows = re.findall(r"<tr( class=\"c3-changed\")?><td class=\"c3-key\">(\w+)</td>", html)
    assert {key: bool(changed) for changed, key in rows} == {
        "url": True,
        "method": False,
        "gone": True,
        "added": True,
    }
    assert "$json.u" in html and "https://x" in html
    pending = _html.config_diff_html(raw, None)
    assert "Not resolved yet" in pending and "$json.u" in pending
    assert_safe(_html.config_diff_html({EVIL: EVIL}, {EVIL: [EVIL]}))
    assert "No config" in _html.config_diff_html({}, {})


@pytest.mark.parametrize(
    ("status", "color"),
    [
        ("queued", "#9e9e9e"),
        ("running", "#1e88e5"),
        ("paused", "#fb8c00"),
        ("success", "#43a047"),
        ("error", "#e53935"),
        ("skipped", "#bdbdbd"),
        ("cancelled", "#6d4c41"),
    ],
)
def test_status_badge_uses_the_graph_palette(status: str, color: str) -> None:
    """Each status gets the graph's colour."""
    html = _html.status_badge(status)
    assert f"background:{color}" in html and f">{status}<" in html


def test_status_badge_escapes_unknown_status() -> None:
    """An unknown status is shown escaped in a neutral colour."""
    html = _html.status_badge(EVIL)
    assert_safe(html)
    assert "#757575" in html


def _node(**kwargs: Any) -> NodeRun:
    base: dict[str, Any] = {"id": "fetch", "type": "std/http_request", "status": "success"}
    fields = {**base, **kwargs}
    resolved = fields.pop("resolved_config", None)
    node = NodeRun(**fields)
    node.resolved_config = resolved  # a property: the constructor takes the engine's raw value
    return node


def test_header_shows_facts_and_markers() -> None:
    """The header names id, type, status, port, duration, attempts and the markers."""
    html = _html.header_html(
        _node(port="true", duration_ms=1534, attempts=3, reused=True, stale=True, reason="why"),
        pinned=True,
        breakpoint="after",
    )
    text = text_of(html)
    for part in ("fetch", "std/http_request", "success", "true", "1.53 s", "3 attempts"):
        assert part in text
    assert "pinned" in text and "reused" in text and "break after" in text and "why" in text
    assert 'class="c3-head c3-stale"' in html
    assert "No node selected" in _html.header_html(None)
    plain = _html.header_html(_node(duration_ms=4.25, attempts=1))
    assert "4.2 ms" in plain and "attempt" not in plain and "c3-stale" not in plain


def test_node_run_html_is_a_full_escaped_view() -> None:
    """The static view holds every section and escapes every field of the node."""
    node = _node(
        id=EVIL,
        type=EVIL,
        status=EVIL,
        port=EVIL,
        input={EVIL: EVIL},
        output=[{EVIL: EVIL}],
        logs=[{"ts": EVIL, "level": EVIL, "message": EVIL}],
        error={"type": EVIL, "message": EVIL},
        config={EVIL: EVIL},
        resolved_config={EVIL: EVIL},
        reason=EVIL,
    )
    html = _html.node_run_html(node)
    assert_safe(html)
    assert html.count("<style>") == 1
    for title in ("Output", "Input", "Config", "Logs (1)", "Error"):
        assert f"<b>{title}</b>" in html
    ok = _html.node_run_html(_node(output={"a": 1}))
    assert "<b>Error</b>" not in ok


def test_output_html_says_why_there_is_no_output() -> None:
    """A node without output says why (its reason first); a success's null output is shown."""
    assert "the node failed" in _html.output_html(_node(status="error"))
    skipped = _html.output_html(_node(status="skipped", reason=f"branch false {EVIL}"))
    assert_safe(skipped)
    assert "No output: branch false &lt;script&gt;" in skipped
    assert "not yet" in _html.output_html(_node(status="running"))
    assert 'class="c3-null"' in _html.output_html(_node(output=None))
    assert "<mark>b</mark>" in _html.output_html(_node(output={"a": "b"}), search="b")
