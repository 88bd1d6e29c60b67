"""Configuration errors: every problem in a rules file, each pointing at a file, a line and a key.

Users edit the YAML by hand and deploy it from CI, so one run of `bridge check` must show every
mistake at once (not one per deploy), each in the `FILE:LINE: KEY.PATH: what; expected` form that
editors and CI logs turn into clickable links.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TOP_LEVEL = "(top level)"

# marshmallow's stock messages say what is wrong but not what to write instead.
_PLAIN_MESSAGES = {
    "Missing data for required field.": "missing; this key is required",
    "Unknown field.": "unknown key; remove it or check its spelling",
    "Field may not be null.": "is empty (null); expected a value",
    "Not a valid string.": "not a string; expected text",
    "Not a valid integer.": "not an integer; expected a whole number",
    "Not a valid boolean.": "not a boolean; expected true or false",
    "Invalid input type.": "wrong kind of value; expected a mapping",
    "must not be empty": "is empty; expected a non-empty value",
}


class ConfigError(Exception):
    """The rules file cannot be used. Carries every problem found; `bridge check` exits with 2."""

    exit_code = 2

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))

    def __str__(self) -> str:
        return "\n".join(self.errors)


@dataclass(frozen=True)
class Problem:
    """One finding before it is placed: `line` is None until the YAML line map resolves the path."""

    path: tuple[Any, ...]
    message: str
    line: int | None = None


def format_problem(file: str, line: int, path: tuple[Any, ...], message: str) -> str:
    """The single place that fixes the error format, so every stage reports alike."""
    dotted = ".".join(str(part) for part in path) or TOP_LEVEL
    return f"{file}:{line}: {dotted}: {plain_message(message)}"


def plain_message(message: str) -> str:
    """Swap marshmallow's terse defaults (and the sources' own) for messages that also say what to write."""
    if message.startswith("Must be one of: "):
        return f"not an allowed value; expected one of: {message[len('Must be one of: '):].rstrip('.')}"
    if message.startswith("not a valid JMESPath expression") and "expected" not in message:
        return f"{message}; expected a JMESPath expression such as payload.event"
    return _PLAIN_MESSAGES.get(message, message)


def flatten_messages(messages: Any, path: tuple[Any, ...] = ()) -> list[Problem]:
    """Turn marshmallow's nested error dict into one Problem per message, keyed by its path.

    `_schema` entries belong to the mapping that holds them, so they take the mapping's path.
    """
    if isinstance(messages, dict):
        problems = []
        for key, inner in messages.items():
            problems += flatten_messages(inner, path if key == "_schema" else path + (key,))
        return problems
    if isinstance(messages, (list, tuple)):
        return [problem for item in messages for problem in flatten_messages(item, path)]
    return [Problem(path, str(messages))]
