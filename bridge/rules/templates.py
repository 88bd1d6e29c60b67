"""`{{ expression }}` templates in intents, and the positive-integer check for sites and ids.

A template that is exactly one expression yields the raw value (so `{{ payload.site_id }}` can
give 42 or "42"); mixed text yields a string. A value that cannot become an id rejects only that
intent: one ERP batch with a bad site must not stop the import the same event asks for elsewhere.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jmespath.parser import ParsedResult

from bridge.rules.expressions import SearchFailed, compile_expression, search
from bridge.rules.values import is_number, show

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_DIGITS = re.compile(r"[0-9]{1,18}")
MAX_ID = 10**18  # far above any real site id; keeps absurd values out of the store


class RenderError(ValueError):
    """A template or value could not give what the intent needs; the message is the rejection reason."""


@dataclass(frozen=True)
class Template:
    text: str
    parts: tuple[Any, ...]   # literal strings and compiled expressions, in order

    @property
    def is_single(self) -> bool:
        return len(self.parts) == 1 and not isinstance(self.parts[0], str)

    def render(self, document: Any) -> Any:
        if self.is_single:
            return _value(self.parts[0], document)
        return "".join(part if isinstance(part, str) else _text(part, document) for part in self.parts)


def is_template(text: Any) -> bool:
    return isinstance(text, str) and ("{{" in text or "}}" in text)


def parse_template(text: str) -> Template:
    """Compile every placeholder now, so a typo fails `bridge check` instead of a webhook."""
    parts: list[Any] = []
    position = 0
    for match in _PLACEHOLDER.finditer(text):
        _literal(text[position:match.start()], parts)
        parts.append(_placeholder(match.group(1)))
        position = match.end()
    _literal(text[position:], parts)
    return Template(text, tuple(parts))


def _literal(text: str, parts: list[Any]) -> None:
    if "{{" in text or "}}" in text:
        raise ValueError("unbalanced braces; expected placeholders written as {{ expression }}")
    if text:
        parts.append(text)


def _placeholder(inner: str) -> ParsedResult:
    if not inner.strip():
        raise ValueError("empty placeholder {{ }}; expected an expression such as {{ payload.site_id }}")
    return compile_expression(inner.strip())


def _value(expression: ParsedResult, document: Any) -> Any:
    try:
        return search(expression, document)
    except SearchFailed as exc:
        raise RenderError(str(exc)) from None


def _text(expression: ParsedResult, document: Any) -> str:
    value = _value(expression, document)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) or is_number(value):
        return str(value)
    raise RenderError(f"a placeholder rendered to {show(value)}")


def positive_id(value: Any) -> int:
    """Accept 42, 42.0 or "42" as a platform id; anything else raises RenderError describing it."""
    if isinstance(value, bool):
        raise RenderError(f"{show(value)} (a boolean)")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, int) and 0 < value < MAX_ID:
        return value
    raise RenderError(show(value))
