"""The /docs page renders the OpenAPI document itself: escaped text, code spans, no scripts."""

from __future__ import annotations

from conv3n_jupyter.server.docs import render_docs


def test_descriptions_are_escaped_and_code_spans_set_in_code() -> None:
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/x": {
                "post": {
                    "tags": ["run"],
                    "summary": "<b>s</b>",
                    "description": 'Send `{"a": 1}` or <script>alert(1)</script>, and a stray `',
                    "responses": {"200": {"description": "ok"}},
                },
                "get": {
                    "tags": ["run"],
                    "summary": "g",
                    "description": "Body is `{}` then `y`",
                    "responses": {"200": {"description": "ok"}},
                },
            }
        },
    }
    page = render_docs(doc)
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "&lt;b&gt;s&lt;/b&gt;" in page
    assert "<code>y</code>" in page  # matched backticks become code
    assert "a stray `" in page  # an odd count is left as typed
