"""``{{ }}`` templates: whole and spliced, braces, plain text, data never evaluated."""

from __future__ import annotations

import pytest
from hypothesis import given

from conv3n_jupyter.errors import ExpressionError
from conv3n_jupyter.expressions import (
    Scope,
    Template,
    compile_template,
    compile_value,
    has_template,
    to_text,
)

from ..strategies import (
    template_texts,
)


def test_whole_template_keeps_the_type(scope: Scope) -> None:
    """A string that is exactly one ``{{ EXPR }}`` renders to the value itself."""
    tpl = compile_template("{{ $input.count }}")
    assert isinstance(tpl, Template) and tpl.whole
    assert tpl.render(scope) == 2
    assert compile_template("{{ $input.items }}").render(scope) == scope.input["items"]
    assert compile_template("{{ $params.min > 3 }}").render(scope) is True
    assert compile_template("{{ null }}").render(scope) is None


def test_spliced_template_makes_text(scope: Scope) -> None:
    """Text around or between ``{{ }}`` makes the result a string."""
    assert compile_template("Hello {{ $params.city }}!").render(scope) == "Hello Berlin!"
    assert compile_template(" {{ $input.count }}").render(scope) == " 2"
    assert compile_template("{{ 1 }}{{ 2 }}").render(scope) == "12"
    assert not compile_template("{{ 1 }}{{ 2 }}").whole  # type: ignore[union-attr]


def test_braces_inside_expressions_do_not_end_them(scope: Scope) -> None:
    """``}}`` inside a string or a nested map literal belongs to the expression."""
    assert compile_template('{{ "}}" }}').render(scope) == "}}"
    assert compile_template("{{ {'a': {'b': 1}} }}").render(scope) == {"a": {"b": 1}}
    assert compile_template("a {{ '{{' }} b").render(scope) == "a {{ b"


def test_text_without_template_is_returned_unchanged() -> None:
    """A string with no ``{{`` is returned as the very same object."""
    text = "plain } text {"
    assert compile_template(text) is text
    assert not has_template(text)
    assert has_template("a {{ b }}")


@given(template_texts)
def test_rendering_text_templates(text: str) -> None:
    """Random mixes of text and expressions render each part in place."""
    scope = Scope(input={"a": "A"}, params={"n": 5})
    expected = (
        text.replace("{{ $input.a }}", "A")
        .replace("{{ $params.n }}", "5")
        .replace("{{ 1 + 2 }}", "3")
        .replace("{{ 'x' }}", "x")
    )
    tpl = compile_template(text)
    if isinstance(tpl, str):
        assert tpl == text
        return
    result = tpl.render(scope)
    if tpl.whole:
        result = to_text(result)
    assert result == expected


def test_data_is_never_evaluated() -> None:
    """Values containing ``{{ }}`` come out verbatim: rendering never runs data as an expression."""
    scope = Scope(input={"body": "{{ 7*7 }}", "nested": {"x": "{{ $secrets.token }}"}},
                  secrets={"token": "s3cr3t"})  # fmt: skip
    assert compile_template("{{ $input.body }}").render(scope) == "{{ 7*7 }}"
    assert compile_template("got {{ $input.body }}").render(scope) == "got {{ 7*7 }}"
    assert compile_template("{{ $input.nested }}").render(scope) == {"x": "{{ $secrets.token }}"}
    assert compile_template("{{ $input.body + '' }}").render(scope) == "{{ 7*7 }}"
    cv = compile_value({"a": "{{ $input.body }}", "b": ["x {{ $input.nested }}"]})
    assert cv.resolve(scope) == {"a": "{{ 7*7 }}", "b": ['x {"x": "{{ $secrets.token }}"}']}


def test_unclosed_template_is_an_error() -> None:
    """``{{`` without ``}}`` is an error naming the text."""
    with pytest.raises(ExpressionError) as info:
        compile_template("Hello {{ $params.name")
    assert "'{{' at column 7 has no closing '}}'" in info.value.reason
    assert info.value.expression == "Hello {{ $params.name"
    with pytest.raises(ExpressionError, match="empty expression"):
        compile_template("a {{ }} b")
