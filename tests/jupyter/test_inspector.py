"""The Inspector widget: what it shows after ``show``, its actions, search and pause editing."""

from __future__ import annotations

from typing import Any

import pytest

from conv3n_jupyter.errors import Problem, WorkflowValidationError
from conv3n_jupyter.jupyter.inspector import CONFIG, ERROR, INPUT, LOGS, OUTPUT, Inspector
from conv3n_jupyter.jupyter.run import NodeRun


def ok_node(**kwargs: Any) -> NodeRun:
    base: dict[str, Any] = {
        "id": "fetch",
        "type": "std/http_request",
        "status": "success",
        "port": "default",
        "input": {"user": "Alice", "page": 2},
        "output": [{"name": "Alice", "age": 30}, {"name": "Bob", "age": 41}],
        "attempts": 1,
        "logs": [
            {"ts": 1.0, "level": "info", "message": "GET /users"},
            {"ts": 2.0, "level": "warning", "message": "slow answer"},
        ],
        "duration_ms": 12.0,
        "config": {"url": "={{ $json.page }}", "method": "GET"},
        "resolved_config": {"url": "2", "method": "GET"},
    }
    fields = {**base, **kwargs}
    resolved = fields.pop("resolved_config", None)
    node = NodeRun(**fields)
    node.resolved_config = resolved  # a property: the constructor takes the engine's raw value
    return node


def failed_node() -> NodeRun:
    return NodeRun(
        "calc",
        "custom/code",
        status="error",
        input={"n": 0},
        config={"code": "def main(input, ctx):\n    return 1 / input['n']\n"},
        error={
            "type": "CodeError",
            "message": "ZeroDivisionError: division by zero (line 2)",
            "node": "calc",
            "attempts": 1,
            "details": {"error_type": "RuntimeError", "line": 2, "stack": "Traceback …"},
        },
    )


@pytest.fixture
def calls() -> list[tuple[Any, ...]]:
    return []


@pytest.fixture
def inspector(calls: list[tuple[Any, ...]]) -> Inspector:
    widget = Inspector()
    widget.on_action = lambda action, node_id: calls.append((action, node_id))
    widget.on_edit = lambda node_id, kind, value: calls.append((node_id, kind, value))
    return widget


def test_show_fills_header_titles_and_output(inspector: Inspector) -> None:
    """After show, the header names the node and the Output tab holds its values."""
    inspector.show(ok_node())
    header = inspector.header.value
    assert "fetch" in header and "std/http_request" in header and ">success<" in header
    assert "12 ms" in header
    assert inspector.tabs.titles == ("Output", "Input", "Config", "Logs (2)", "Error")
    assert inspector.tabs.selected_index == OUTPUT
    assert "Alice" in inspector.panes[OUTPUT].value and "<table" in inspector.panes[OUTPUT].value


def test_tabs_render_lazily(inspector: Inspector) -> None:
    """Only the visible tab is rendered; the others are rendered when selected."""
    inspector.show(ok_node())
    assert [p.value for p in inspector.panes[1:]] == ["", "", "", ""]
    inspector.tabs.selected_index = INPUT
    assert "page" in inspector.panes[INPUT].value
    inspector.tabs.selected_index = CONFIG
    assert (
        "c3-changed" in inspector.panes[CONFIG].value
        and "$json.page" in inspector.panes[CONFIG].value
    )
    inspector.tabs.selected_index = LOGS
    assert "slow answer" in inspector.panes[LOGS].value
    inspector.tabs.selected_index = ERROR
    assert "No error" in inspector.panes[ERROR].value


def test_error_node_selects_the_error_tab(inspector: Inspector) -> None:
    """A new failure opens the Error tab with message and code line; a good node leaves it."""
    inspector.show(failed_node())
    assert inspector.tabs.selected_index == ERROR
    assert inspector.tabs.titles[ERROR] == "Error ●"
    pane = inspector.panes[ERROR].value
    assert "division by zero" in pane and "return 1 / input[&#x27;n&#x27;]" in pane
    inspector.tabs.selected_index = OUTPUT
    assert "the node failed" in inspector.panes[OUTPUT].value
    inspector.show(failed_node())  # a refresh of the same failure keeps the chosen tab
    assert inspector.tabs.selected_index == OUTPUT
    inspector.tabs.selected_index = ERROR
    inspector.show(ok_node())
    assert inspector.tabs.selected_index == OUTPUT


def test_buttons_follow_the_state(inspector: Inspector) -> None:
    """Labels and disabled states follow pin, output and breakpoint."""
    inspector.show(None)
    assert all(
        b.disabled
        for b in (
            inspector.pin_button,
            inspector.run_from_button,
            inspector.break_before_button,
            inspector.break_after_button,
            inspector.clear_break_button,
        )
    )
    assert "No node selected" in inspector.header.value
    inspector.show(ok_node(output=None, status="running"))
    assert inspector.pin_button.description == "Pin output" and inspector.pin_button.disabled
    assert inspector.clear_break_button.disabled and not inspector.run_from_button.disabled
    inspector.show(ok_node(), pinned=True, breakpoint="after")
    assert inspector.pin_button.description == "Unpin" and not inspector.pin_button.disabled
    assert inspector.break_after_button.button_style == "warning"
    assert inspector.break_before_button.button_style == ""
    assert not inspector.clear_break_button.disabled
    assert "pinned" in inspector.header.value and "break after" in inspector.header.value
    inspector.show(ok_node(pinned=True))
    assert inspector.pin_button.description == "Unpin"


def test_actions_call_on_action(inspector: Inspector, calls: list[tuple[Any, ...]]) -> None:
    """Each button calls on_action with its action and the node id."""
    inspector.show(ok_node())
    inspector.pin_button.click()
    inspector.run_from_button.click()
    inspector.break_before_button.click()
    inspector.break_after_button.click()
    inspector.show(ok_node(), pinned=True, breakpoint="before")
    inspector.pin_button.click()
    inspector.clear_break_button.click()
    inspector.break_before_button.click()  # the active breakpoint's button clears it
    assert calls == [
        ("pin", "fetch"),
        ("run_from", "fetch"),
        ("break_before", "fetch"),
        ("break_after", "fetch"),
        ("unpin", "fetch"),
        ("clear_break", "fetch"),
        ("clear_break", "fetch"),
    ]


def test_failing_action_shows_its_message(inspector: Inspector) -> None:
    """An exception from on_action is shown, escaped, above the tabs."""

    def refuse(action: str, node_id: str) -> None:
        raise ValueError(f"cannot {action} <{node_id}>")

    inspector.on_action = refuse
    inspector.show(ok_node())
    inspector.run_from_button.click()
    assert "run_from: cannot run_from &lt;fetch&gt;" in inspector.message.value


def test_search_filters_output_and_input(inspector: Inspector) -> None:
    """The search box filters and highlights the Output and Input trees."""
    inspector.show(ok_node())
    inspector.search.value = "bob"
    output = inspector.panes[OUTPUT].value
    assert "<mark>Bob</mark>" in output and "Alice" not in output
    inspector.tabs.selected_index = INPUT
    assert "No match" in inspector.panes[INPUT].value
    inspector.search.value = ""
    assert "Alice" in inspector.panes[INPUT].value


def test_show_rejects_a_bad_breakpoint(inspector: Inspector) -> None:
    """A breakpoint other than None, before or after is refused with the value named."""
    with pytest.raises(ValueError, match="'during'"):
        inspector.show(ok_node(), breakpoint="during")


def test_editors_only_at_a_pause(inspector: Inspector) -> None:
    """The edit section shows only when paused, pre-filled with indented JSON."""
    inspector.show(ok_node())
    assert inspector.edit_box.layout.display == "none"
    inspector.show(ok_node(), paused=True)
    assert inspector.edit_box.layout.display is None
    assert inspector.edit_input.value == '{\n  "user": "Alice",\n  "page": 2\n}'
    assert '"url": "={{ $json.page }}"' in inspector.edit_config.value
    assert "c3-json" in inspector.edit_input._dom_classes


def test_invalid_json_applies_nothing(inspector: Inspector, calls: list[tuple[Any, ...]]) -> None:
    """Invalid JSON in either editor names its line and column and applies neither."""
    inspector.show(ok_node(), paused=True)
    inspector.edit_input.value = '{"user": "Zed"}'
    inspector.edit_config.value = '{\n  "url": "x",\n  "method" "GET"\n}'
    inspector.apply_button.click()
    assert calls == []
    assert "config: invalid JSON at line 3, column 12" in inspector.edit_message.value
    inspector.edit_config.value = "[1]"
    inspector.apply_button.click()
    assert calls == [] and "must be a JSON object" in inspector.edit_message.value


def test_valid_edits_reach_on_edit(inspector: Inspector, calls: list[tuple[Any, ...]]) -> None:
    """Valid JSON calls on_edit with the parsed value, only for the editors that changed."""
    inspector.show(ok_node(), paused=True)
    inspector.apply_button.click()
    assert calls == [] and "Nothing changed" in inspector.edit_message.value
    inspector.edit_input.value = '{"user": "Zed", "page": [1, 2]}'
    inspector.apply_button.click()
    assert calls == [("fetch", "input", {"user": "Zed", "page": [1, 2]})]
    assert "Applied input" in inspector.edit_message.value
    inspector.edit_config.value = '{"url": "u", "method": "POST"}'
    inspector.apply_button.click()
    assert calls[1:] == [("fetch", "config", {"url": "u", "method": "POST"})]


def test_exception_from_on_edit_is_shown(inspector: Inspector) -> None:
    """An error raised by on_edit (a validation error) is shown in the edit line."""

    def refuse(node_id: str, kind: str, value: Any) -> None:
        problem = Problem(
            "nodes.fetch.config.method", "must be one of GET, POST", node_id, "method"
        )
        raise WorkflowValidationError([problem])

    inspector.on_edit = refuse
    inspector.show(ok_node(), paused=True)
    inspector.edit_config.value = '{"url": "u", "method": "BREW"}'
    inspector.apply_button.click()
    message = inspector.edit_message.value
    assert "config: 1 problem in workflow" in message and "must be one of GET, POST" in message


def test_reshow_keeps_typing_but_new_node_refills(inspector: Inspector) -> None:
    """Showing the same data again keeps the editors' text; another node refills them."""
    inspector.show(ok_node(), paused=True)
    inspector.edit_input.value = '{"typing": '
    inspector.show(ok_node(), paused=True)
    assert inspector.edit_input.value == '{"typing": '
    inspector.show(failed_node(), paused=True)
    assert inspector.edit_input.value == '{\n  "n": 0\n}'


def test_repr_names_the_node(inspector: Inspector) -> None:
    """The repr shows the node and whether it is paused."""
    assert repr(inspector) == "<Inspector empty>"
    inspector.show(ok_node(), paused=True)
    assert repr(inspector) == "<Inspector fetch success paused>"
