"""JMESPath over the event document: compiled once at load, searched without ever raising.

Payloads come from the internet. A rule that meets an odd payload (a list where a mapping was
expected, nesting deep enough to exhaust recursion, a function given the wrong type) must simply
not match; it must never turn one bad request into a 500 or stop the other rules.
"""
from __future__ import annotations

from typing import Any

import jmespath
from jmespath.parser import ParsedResult


class SearchFailed(Exception):
    """An expression could not be evaluated on this document; the reason is safe to show."""


def compile_expression(text: Any) -> ParsedResult:
    """Compile or raise ValueError with a message that names the expression and how to fix it."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("expected a JMESPath expression such as payload.ref")
    try:
        return jmespath.compile(text)
    except jmespath.exceptions.JMESPathError as exc:
        raise ValueError(_compile_message(text, exc)) from None


def _compile_message(text: str, exc: Exception) -> str:
    detail = str(exc).splitlines()[0].rstrip(":")
    hint = ""
    if "-" in text:
        hint = ' (quote names that contain dashes: headers."x-github-event")'
    return f"{text!r} is not a valid JMESPath expression ({detail}); expected e.g. payload.ref{hint}"


def search(expression: ParsedResult, document: Any) -> Any:
    """The value at `expression`, or raise SearchFailed. Never raises anything else for data reasons."""
    try:
        return expression.search(document)
    except RecursionError:
        raise SearchFailed("the payload is nested too deeply to evaluate") from None
    except Exception as exc:  # noqa: BLE001 - any payload-driven failure means "no value here"
        raise SearchFailed(f"could not be evaluated ({type(exc).__name__})") from None
