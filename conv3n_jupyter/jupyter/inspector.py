"""The node inspector: output, input, config, logs and error of one node run, with actions.

Standard ipywidgets and escaped HTML only, so it works the same in JupyterLab and Voilà. Tabs
render lazily: :meth:`Inspector.show` and a search re-render only the visible tab.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import ExitStack
from html import escape
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from . import _html

if TYPE_CHECKING:
    from .run import NodeRun

ActionHandler = Callable[[str, str], None]
EditHandler = Callable[[str, str, Any], None]

TABS = ("Output", "Input", "Config", "Logs", "Error")
OUTPUT, INPUT, CONFIG, LOGS, ERROR = range(len(TABS))
BREAKPOINTS = (None, "before", "after")


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=repr)


def _message(text: str, *, ok: bool = False) -> str:
    return f'<div class="{"c3-msg-ok" if ok else "c3-msg-err"}">{escape(text)}</div>'


def _button(label: str) -> Any:
    return widgets.Button(description=label, layout=widgets.Layout(width="auto"))


def _full_width(**kwargs: str) -> Any:
    # "100%" plus the widget margins overflows the box; auto + stretch fills it exactly.
    return widgets.Layout(width="auto", align_self="stretch", **kwargs)


class Inspector(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no type information
    """Everything about one node run, the debugger's actions and, at a pause, JSON editors.

    ``on_action(action, node_id)`` receives ``pin unpin run_from break_before break_after
    clear_break``; ``on_edit(node_id, kind, value)`` receives an edited ``input`` or ``config``.
    Both may raise: the message is shown. The caller calls :meth:`show` again with the new state.
    The parts are public attributes (``header``, ``tabs``, ``panes``, ``search``, the
    ``*_button``s, ``edit_input``, ``edit_config``, ``edit_message``) for layout and tests.

        inspector = Inspector()
        inspector.on_action = lambda action, node_id: print(action, node_id)
        inspector.show(run.nodes["fetch"], breakpoint="after")
        display(inspector)
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_action: ActionHandler | None = None
        self.on_edit: EditHandler | None = None
        self.node: NodeRun | None = None
        self.pinned = False
        self.breakpoint: str | None = None
        self.paused = False
        self._dirty: set[int] = set()
        self._was_ok = True
        self._prefilled: tuple[str, str, str] | None = None
        self._original: dict[str, Any] = {}

        self.header = widgets.HTML()
        self.pin_button = _button("Pin output")
        self.run_from_button = _button("Run from here")
        self.break_before_button = _button("Break before")
        self.break_after_button = _button("Break after")
        self.clear_break_button = _button("Clear breakpoint")
        self.pin_button.on_click(lambda _: self._act("unpin" if self.pinned else "pin"))
        self.run_from_button.on_click(lambda _: self._act("run_from"))
        self.break_before_button.on_click(lambda _: self._act(self._toggle("before")))
        self.break_after_button.on_click(lambda _: self._act(self._toggle("after")))
        self.clear_break_button.on_click(lambda _: self._act("clear_break"))
        self.message = widgets.HTML()

        self.search = widgets.Text(
            placeholder="Search output and input (Enter)",
            continuous_update=False,
            layout=_full_width(),
        )
        self.search.observe(self._on_search, names="value")
        self.panes = tuple(widgets.HTML() for _ in TABS)
        self.tabs = widgets.Tab(children=self.panes, titles=TABS)
        self.tabs.observe(self._on_tab, names="selected_index")

        self.edit_input = widgets.Textarea(layout=_full_width(height="10em"))
        self.edit_config = widgets.Textarea(layout=_full_width(height="10em"))
        for editor in (self.edit_input, self.edit_config):
            editor.add_class("c3-json")
        self.apply_button = widgets.Button(description="Apply", button_style="primary")
        self.apply_button.on_click(lambda _: self.apply_edits())
        self.edit_message = widgets.HTML()
        self.edit_box = widgets.VBox(
            [
                widgets.HTML(
                    "<b>Edit at the pause</b> (JSON; Apply changes nothing if one is invalid)"
                ),
                widgets.HTML("input"),
                self.edit_input,
                widgets.HTML("config (raw, expressions allowed)"),
                self.edit_config,
                widgets.HBox([self.apply_button, self.edit_message]),
            ],
            layout=widgets.Layout(display="none"),
        )
        buttons = [
            self.pin_button,
            self.run_from_button,
            self.break_before_button,
            self.break_after_button,
        ]
        toolbar = widgets.HBox(
            [*buttons, self.clear_break_button], layout=widgets.Layout(flex_flow="row wrap")
        )
        self.children = [
            widgets.HTML(_html.CSS),
            self.header,
            toolbar,
            self.message,
            self.search,
            self.tabs,
            self.edit_box,
        ]
        self.show(None)

    def __repr__(self) -> str:
        node = self.node
        what = f"{node.id} {node.status}" if node is not None else "empty"
        return f"<Inspector {what}{' paused' if self.paused else ''}>"

    def show(
        self,
        node: NodeRun | None,
        *,
        pinned: bool = False,
        breakpoint: str | None = None,
        paused: bool = False,
    ) -> None:
        """Show ``node`` (``None`` empties the view); selects the Error tab when it failed.

        ``pinned`` (or ``node.pinned``) turns the pin button into "Unpin"; ``breakpoint`` is the
        node's breakpoint (``None``, ``"before"`` or ``"after"``); ``paused`` opens the editors.
        """
        if breakpoint not in BREAKPOINTS:
            raise ValueError(f"breakpoint must be None, 'before' or 'after', not {breakpoint!r}")
        changed_node = node is None or self.node is None or node.id != self.node.id
        # Jump to Error when the failure is new, not on every refresh of a failed node.
        new_failure = node is not None and node.status == "error" and (changed_node or self._was_ok)
        self._was_ok = node is None or node.status != "error"
        self.node = node
        self.pinned = bool(pinned or (node is not None and node.pinned))
        self.breakpoint = breakpoint
        self.paused = paused and node is not None
        self._dirty = set(range(len(TABS)))
        held = [self.header, self.tabs, self.message, self.pin_button, self.run_from_button]
        held += [
            self.break_before_button,
            self.break_after_button,
            self.clear_break_button,
            self.edit_box.layout,
        ]
        with ExitStack() as stack:
            for widget in held:
                stack.enter_context(widget.hold_sync())
            self.header.value = _html.header_html(node, pinned=self.pinned, breakpoint=breakpoint)
            if changed_node:
                self.message.value = ""
            logs = len(node.logs) if node is not None else 0
            has_error = node is not None and bool(node.error)
            self.tabs.titles = (
                "Output",
                "Input",
                "Config",
                f"Logs ({logs:,})",
                "Error" + " ●" * has_error,
            )
            if new_failure:
                self.tabs.selected_index = ERROR
            elif self.tabs.selected_index == ERROR and not has_error:
                self.tabs.selected_index = OUTPUT
            self._render_visible()
            self._update_buttons()
            self.edit_box.layout.display = None if self.paused else "none"
        if self.paused:
            self._prefill()

    def _update_buttons(self) -> None:
        node = self.node
        none = node is None
        self.pin_button.description = "Unpin" if self.pinned else "Pin output"
        self.pin_button.disabled = node is None or (not self.pinned and node.output is None)
        self.run_from_button.disabled = none
        for button, where in (
            (self.break_before_button, "before"),
            (self.break_after_button, "after"),
        ):
            button.disabled = none
            button.button_style = "warning" if self.breakpoint == where else ""
            button.tooltip = "Clear this breakpoint" if self.breakpoint == where else ""
        self.clear_break_button.disabled = none or self.breakpoint is None

    def _toggle(self, where: str) -> str:
        return "clear_break" if self.breakpoint == where else f"break_{where}"

    def _act(self, action: str) -> None:
        if self.node is None or self.on_action is None:
            return
        try:
            self.on_action(action, self.node.id)
        except Exception as exc:  # shown to the user, who would never see the widget's log
            self.message.value = _message(f"{action}: {exc}")
        else:
            self.message.value = ""

    # Lazy tabs: only the visible pane is rendered; the others when they are selected.

    def _on_tab(self, change: dict[str, Any]) -> None:
        self._render_visible()

    def _on_search(self, change: dict[str, Any]) -> None:
        self._dirty |= {OUTPUT, INPUT}
        self._render_visible()

    def _render_visible(self) -> None:
        index = self.tabs.selected_index
        if index is None or index not in self._dirty:
            return
        self._dirty.discard(index)
        self.panes[index].value = self._pane_html(index)

    def _pane_html(self, index: int) -> str:
        node = self.node
        if node is None:
            return ""
        search = self.search.value.strip() or None
        if index == OUTPUT:
            return _html.output_html(node, search=search)
        if index == INPUT:
            return _html.value_view(node.input, search=search)
        if index == CONFIG:
            return _html.config_diff_html(node.config, node.resolved_config)
        if index == LOGS:
            return _html.logs_html(node.logs)
        code = node.config.get("code") if node.type == "custom/code" else None
        return _html.error_html(node.error, source=code if isinstance(code, str) else None)

    # Editing at a pause.

    def _prefill(self) -> None:
        node = self.node
        assert node is not None
        texts = (_dumps(node.input), _dumps(node.config))
        key = (node.id, *texts)
        if key == self._prefilled:  # the same data again: keep what the user is typing
            return
        self._prefilled = key
        self._original = {"input": json.loads(texts[0]), "config": json.loads(texts[1])}
        self.edit_input.value, self.edit_config.value = texts
        self.edit_message.value = ""

    def apply_edits(self) -> None:
        """Parse both editors and hand what changed to ``on_edit``; nothing if one is invalid."""
        node = self.node
        if node is None or not self.paused:
            return
        parsed: dict[str, Any] = {}
        for kind, editor in (("input", self.edit_input), ("config", self.edit_config)):
            try:
                parsed[kind] = json.loads(editor.value)
            except json.JSONDecodeError as exc:
                where = f"line {exc.lineno}, column {exc.colno}"
                self.edit_message.value = _message(f"{kind}: invalid JSON at {where}: {exc.msg}")
                return
        if not isinstance(parsed["config"], dict):
            kind = type(parsed["config"]).__name__
            self.edit_message.value = _message(f"config: must be a JSON object, not {kind}")
            return
        changed = [kind for kind, value in parsed.items() if value != self._original.get(kind)]
        if not changed:
            self.edit_message.value = _message("Nothing changed.", ok=True)
            return
        if self.on_edit is None:
            self.edit_message.value = _message("Editing is not available here.")
            return
        done: list[str] = []
        for kind in changed:
            try:
                self.on_edit(node.id, kind, parsed[kind])
            except Exception as exc:  # e.g. WorkflowValidationError: the user must see why
                also = f" ({done[0]} was applied)" if done else ""
                self.edit_message.value = _message(f"{kind}: {exc}{also}")
                return
            self._original[kind] = parsed[kind]
            done.append(kind)
        self.edit_message.value = _message(f"Applied {' and '.join(changed)}.", ok=True)
