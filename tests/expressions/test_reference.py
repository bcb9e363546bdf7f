"""Every example in ``docs/expressions.md`` evaluates to the result the page shows.

Rows of the page's ``| expression | result |`` tables are cases: the result is JSON (compared
with its key order and its int/double distinction) or ``error: TEXT``, a part of the reason.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from conv3n_jupyter.errors import ExpressionError
from conv3n_jupyter.expressions import Scope, compile_expression, compile_template, to_json_value
from conv3n_jupyter.expressions._functions import NAMES

DOC = Path(__file__).resolve().parents[2] / "docs" / "expressions.md"
_CELL = re.compile(r"(?<!\\)\|")


def _rows(text: str) -> list[tuple[str, str]]:
    rows = []
    in_table = False
    for line in text.splitlines():
        if line.startswith("| expression | result |"):
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
            continue
        if not in_table or line.startswith("|---"):
            continue
        cells = [c.strip().replace("\\|", "|") for c in _CELL.split(line)[1:-1]]
        assert len(cells) == 2, line
        expr, result = cells
        assert expr.startswith("`") and expr.endswith("`"), line
        rows.append((expr[1:-1], result))
    return rows


def _scope(text: str) -> tuple[Scope, frozenset[str]]:
    block = text.split("## Example data", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    data = json.loads(block)
    now = datetime.fromisoformat(data.pop("now").replace("Z", "+00:00"))
    nodes = data.pop("node")
    return Scope(nodes=nodes, now=now, **data), frozenset(nodes)


TEXT = DOC.read_text(encoding="utf-8")
ROWS = _rows(TEXT)
SCOPE, NODE_IDS = _scope(TEXT)


def _evaluate(src: str) -> Any:
    if "{{" in src:
        tpl = compile_template(src, node_ids=NODE_IDS)
        return tpl if isinstance(tpl, str) else tpl.render(SCOPE)
    return compile_expression(src, node_ids=NODE_IDS).evaluate(SCOPE)


@pytest.mark.parametrize(("src", "result"), ROWS, ids=[src for src, _ in ROWS])
def test_documented_example(src: str, result: str) -> None:
    """The example gives the documented value (same JSON text) or fails with that reason."""
    if result.startswith("error: "):
        with pytest.raises(ExpressionError) as info:
            _evaluate(src)
        assert result[len("error: ") :] in info.value.reason
        return
    assert result.startswith("`") and result.endswith("`"), result
    expected = json.loads(result[1:-1])
    got = to_json_value(_evaluate(src))
    assert json.dumps(got, ensure_ascii=False) == json.dumps(expected, ensure_ascii=False)


def test_every_library_function_has_an_example() -> None:
    """The reference shows each library function at least once, so none goes undocumented."""
    sources = " ".join(src for src, _ in ROWS)
    missing = sorted(
        name
        for name in NAMES
        if not re.search(r"(?<![\w.])" + re.escape(name) + r"\(", sources)
        and not re.search(r"\." + re.escape(name) + r"\(", sources)
    )
    assert missing == []
    assert len(ROWS) > 150
