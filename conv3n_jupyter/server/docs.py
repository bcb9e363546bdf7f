"""``/docs``: one self-contained HTML page built from the OpenAPI document.

No script, font or style sheet is loaded from anywhere: the page works on a closed network.
Endpoints are grouped by tag, each with its method, path, parameters, request body schema,
responses and examples; schemas of ``components`` are listed at the end, linked by ``$ref``.
Every text from the document is HTML-escaped.

    >>> page = render_docs(app.openapi())
    >>> "/api/run" in page
    True
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d232a;background:#fafbfc}
header{background:#1d232a;color:#fff;padding:1em 2em}header h1{margin:0;font-size:1.4em}
main{max-width:70em;margin:auto;padding:1em 2em}nav a{margin-right:1em}
section.op{background:#fff;border:1px solid #d9dee3;border-radius:6px;margin:.8em 0;padding:.2em 1em}
summary{cursor:pointer;padding:.5em 0}code,pre{font:13px/1.4 ui-monospace,monospace}
pre{background:#f3f5f7;padding:.6em;overflow:auto;border-radius:4px;max-height:30em}
.m{display:inline-block;min-width:4.5em;text-align:center;border-radius:3px;color:#fff;
font-weight:600;font-size:12px;padding:.1em .4em;margin-right:.6em}
.get{background:#2f7dd1}.post{background:#2a9d58}.put{background:#c58a12}
.delete{background:#c8423b}.patch{background:#7a55c7}
table{border-collapse:collapse}td,th{border-bottom:1px solid #e4e7ea;padding:.2em .8em;
text-align:left;vertical-align:top}
"""


def _prose(text: str) -> str:
    """Escaped text with its `code spans` set in code type (the only markup read)."""
    pieces = escape(text).split("`")
    if len(pieces) % 2 == 0:  # an unmatched backtick: leave the text as it is
        return escape(text)
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))


def _json(value: Any) -> str:
    return escape(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _schema_html(schema: Any) -> str:
    if not isinstance(schema, dict):
        return ""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[-1]
        return f'<p>Schema: <a href="#schema-{escape(name)}"><code>{escape(name)}</code></a></p>'
    return f"<pre>{_json(schema)}</pre>"


def _examples(media: dict[str, Any]) -> str:
    out = []
    if "example" in media:
        out.append(f"<p>Example:</p><pre>{_json(media['example'])}</pre>")
    for name, ex in (media.get("examples") or {}).items():
        value = ex.get("value") if isinstance(ex, dict) else ex
        out.append(f"<p>Example {escape(str(name))}:</p><pre>{_json(value)}</pre>")
    schema = media.get("schema")
    if isinstance(schema, dict):
        for i, value in enumerate(schema.get("examples") or []):
            out.append(f"<p>Example {i + 1}:</p><pre>{_json(value)}</pre>")
    return "".join(out)


def _parameters(params: list[dict[str, Any]]) -> str:
    if not params:
        return ""
    rows = []
    for p in params:
        schema = p.get("schema") or {}
        kind = schema.get("type") or " | ".join(
            str(s.get("type")) for s in schema.get("anyOf", []) if isinstance(s, dict)
        )
        default = f" (default {_json(schema['default'])})" if "default" in schema else ""
        rows.append(
            f"<tr><td><code>{escape(str(p.get('name')))}</code></td>"
            f"<td>{escape(str(p.get('in')))}</td><td>{escape(str(kind))}{default}</td>"
            f"<td>{'required' if p.get('required') else ''}</td>"
            f"<td>{escape(str(p.get('description') or ''))}</td></tr>"
        )
    head = "<tr><th>name</th><th>in</th><th>type</th><th></th><th>description</th></tr>"
    return f"<h4>Parameters</h4><table>{head}{''.join(rows)}</table>"


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    parts = [
        f'<section class="op" id="{escape(method + "-" + path)}"><details><summary>'
        f'<span class="m {escape(method)}">{escape(method.upper())}</span>'
        f"<code>{escape(path)}</code> — {escape(str(op.get('summary') or ''))}</summary>"
    ]
    if op.get("description"):
        parts.append(f"<p>{_prose(str(op['description']))}</p>")
    parts.append(_parameters(op.get("parameters") or []))
    body = op.get("requestBody")
    if isinstance(body, dict):
        required = " (required)" if body.get("required") else " (optional)"
        parts.append(f"<h4>Request body{required}</h4>")
        for media_type, media in (body.get("content") or {}).items():
            parts.append(f"<p><code>{escape(media_type)}</code></p>")
            parts.append(_schema_html(media.get("schema")))
            parts.append(_examples(media))
    parts.append("<h4>Responses</h4>")
    for status, resp in (op.get("responses") or {}).items():
        parts.append(
            f"<p><b>{escape(str(status))}</b> {escape(str(resp.get('description') or ''))}</p>"
        )
        for media_type, media in (resp.get("content") or {}).items():
            if media.get("schema"):
                parts.append(f"<p><code>{escape(media_type)}</code></p>")
                parts.append(_schema_html(media.get("schema")))
            parts.append(_examples(media))
    parts.append("</details></section>")
    return "".join(parts)


def render_docs(openapi: dict[str, Any]) -> str:
    """The HTML page documenting every path and schema of ``openapi``."""
    info = openapi.get("info") or {}
    title = escape(f"{info.get('title', 'API')} {info.get('version', '')}".strip())
    groups: dict[str, list[str]] = {}
    for path, item in (openapi.get("paths") or {}).items():
        for method, op in item.items():
            if not isinstance(op, dict) or method.startswith("x-"):
                continue
            tag = (op.get("tags") or ["other"])[0]
            groups.setdefault(str(tag), []).append(_operation(path, method, op))
    nav = "".join(f'<a href="#tag-{escape(t)}">{escape(t)}</a>' for t in groups)
    body = [
        f'<nav>{nav}<a href="#schemas">schemas</a> <a href="/openapi.json">openapi.json</a></nav>'
    ]
    if info.get("description"):
        body.append(f"<p>{escape(str(info['description']))}</p>")
    for tag, ops in groups.items():
        body.append(f'<h2 id="tag-{escape(tag)}">{escape(tag)}</h2>{"".join(ops)}')
    body.append('<h2 id="schemas">Schemas</h2>')
    for name, schema in ((openapi.get("components") or {}).get("schemas") or {}).items():
        body.append(
            f'<section class="op" id="schema-{escape(name)}"><details><summary>'
            f"<code>{escape(name)}</code></summary><pre>{_json(schema)}</pre></details></section>"
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{title}</h1></header><main>{''.join(body)}</main></body></html>"
    )
