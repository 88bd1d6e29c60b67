"""How a value from the YAML compares with a value from a JSON payload, and how values are shown.

Senders disagree about types: one ERP sends `"site_id": 42`, another `"site_id": "42"`. A rule
author writes `42` without thinking about it, so numbers and numeric strings compare by value.
Everything else is strict, because loose truthiness (`"true" == true`, `1 == true`) routes events
to the wrong site:

| YAML        | payload                   | equal? |
|-------------|---------------------------|--------|
| 123         | 123, 123.0, "123"         | yes    |
| "123"       | 123, "123"                | yes    |
| 1.5         | 1.5, "1.5"                | yes    |
| "0123"      | 123                       | no (not a JSON number) |
| "abc"       | "abc"                     | yes, exact, case-sensitive |
| true        | true                      | yes; `"true"`, 1 are not |
| "true"      | "true"                    | yes; `true` is not |
| null        | null or missing           | yes, and nothing else |
| any scalar  | a mapping or a list       | never |
"""
from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

# Only the JSON spelling of a number counts, so identifiers such as "0123" stay text.
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_MAX_NUMBER_TEXT = 64
_SHOWN_TEXT = 60


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def values_equal(expected: Any, actual: Any) -> bool:
    """Equality of a rule value with a payload value, by the table in the module docstring."""
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is bool and type(actual) is bool and expected == actual
    if not (is_scalar(expected) and is_scalar(actual)):
        return False
    if isinstance(expected, str) and isinstance(actual, str):
        return expected == actual
    if is_number(expected) and is_number(actual):
        return expected == actual
    return _number_equals_text(expected, actual)


def _number_equals_text(left: Any, right: Any) -> bool:
    number, text = (left, right) if is_number(left) else (right, left)
    parsed = _parse_json_number(text)
    return parsed is not None and parsed == _as_decimal(number)


def _parse_json_number(text: str) -> Decimal | None:
    if len(text) > _MAX_NUMBER_TEXT or not _JSON_NUMBER.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _as_decimal(number: int | float) -> Decimal:
    """Floats go through their shortest repr, so that 0.1 equals "0.1" rather than 0.1000000000000000055."""
    return Decimal(number) if isinstance(number, int) else Decimal(repr(number))


def json_text(value: Any) -> str | None:
    """The text a regex sees: strings as they are, numbers as JSON writes them, nothing else."""
    if isinstance(value, str):
        return value
    if is_number(value):
        try:
            return json.dumps(value)
        except ValueError:
            return None
    return None


def show(value: Any) -> str:
    """A short, log-safe rendering of a payload value for `bridge explain` and rejections."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if len(value) <= _SHOWN_TEXT:
            return repr(value)
        return f"{value[:_SHOWN_TEXT]!r}... ({len(value)} characters)"
    if isinstance(value, dict):
        return f"a mapping with {len(value)} keys"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    return _show_number(value)


def _show_number(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # ints too long to print
        return "a very large number"
    return text if len(text) <= _SHOWN_TEXT else text[:_SHOWN_TEXT] + "..."
