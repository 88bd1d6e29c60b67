"""`when:` conditions: a JMESPath key and a test of the value it finds.

A scalar value means equality; a mapping combines operators, all of which must hold. Each test
returns a sentence as well as a verdict, because `bridge explain` has to say *why* a rule did not
match, which is the first thing a user asks when a webhook "does nothing".
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jmespath.parser import ParsedResult

from bridge.rules.expressions import SearchFailed, compile_expression, search
from bridge.rules.values import is_scalar, json_text, show, values_equal

OPERATORS = ("equals", "in", "regex", "exists")
OPERATOR_LIST = ", ".join(OPERATORS)


class ConditionError(ValueError):
    """Invalid condition in the file; `messages` is keyed by operator (or `_schema`) for the error path."""

    def __init__(self, messages: dict[str, list[str]]):
        super().__init__(messages)
        self.messages = messages


@dataclass(frozen=True)
class Equals:
    expected: Any

    def test(self, actual: Any) -> tuple[bool, str]:
        held = values_equal(self.expected, actual)
        return held, f"{'equals' if held else 'does not equal'} {show(self.expected)}"


@dataclass(frozen=True)
class OneOf:
    options: tuple[Any, ...]

    def test(self, actual: Any) -> tuple[bool, str]:
        held = any(values_equal(option, actual) for option in self.options)
        listed = ", ".join(show(option) for option in self.options)
        return held, f"{'is' if held else 'is not'} one of [{listed}]"


@dataclass(frozen=True)
class Regex:
    pattern: re.Pattern

    def test(self, actual: Any) -> tuple[bool, str]:
        text = json_text(actual)
        held = text is not None and re.fullmatch(self.pattern, text) is not None
        return held, f"{'matches' if held else 'does not match'} /{self.pattern.pattern}/"


@dataclass(frozen=True)
class Exists:
    wanted: bool

    def test(self, actual: Any) -> tuple[bool, str]:
        present = actual is not None
        held = present == self.wanted
        return held, "is present" if present else "is missing or null"


@dataclass(frozen=True)
class Condition:
    text: str
    expression: ParsedResult
    checks: tuple[Any, ...]

    def evaluate(self, document: Any) -> tuple[bool, list[str]]:
        """All checks must hold; a value that cannot be evaluated holds for nothing."""
        try:
            actual = search(self.expression, document)
        except SearchFailed as exc:
            return False, [f"{self.text}: {exc}"]
        results = [check.test(actual) for check in self.checks]
        reasons = [f"{self.text}: {show(actual)} {sentence}" for _, sentence in results]
        return all(held for held, _ in results), reasons


def build_condition(text: Any, spec: Any) -> Condition:
    """Compile one `key: value` of `when:`; raise ConditionError naming the operator at fault."""
    try:
        expression = compile_expression(text)
    except ValueError as exc:
        raise ConditionError({"_schema": [str(exc)]}) from None
    return Condition(text, expression, _checks(spec))


def _checks(spec: Any) -> tuple[Any, ...]:
    if isinstance(spec, dict):
        return _operator_checks(spec)
    if isinstance(spec, list):
        raise ConditionError({"_schema": ["a list is ambiguous here; expected a single value, "
                                          "or {in: [...]} to accept any of several values"]})
    if not is_scalar(spec):
        raise ConditionError({"_schema": ["expected a value or a mapping of operators"]})
    return (Equals(spec),)


def _operator_checks(spec: dict) -> tuple[Any, ...]:
    if not spec:
        raise ConditionError({"_schema": [f"no operator given; expected one or more of: {OPERATOR_LIST}"]})
    checks, errors = [], {}
    for name, argument in spec.items():
        try:
            checks.append(_operator(name, argument))
        except ValueError as exc:
            errors[name] = [str(exc)]
    if errors:
        raise ConditionError(errors)
    return tuple(checks)


def _operator(name: Any, argument: Any) -> Any:
    builders = {"equals": _equals, "in": _one_of, "regex": _regex, "exists": _exists}
    if name not in builders:
        raise ValueError(f"unknown operator {name!r}; expected one of: {OPERATOR_LIST}")
    return builders[name](argument)


def _equals(argument: Any) -> Equals:
    if not is_scalar(argument):
        raise ValueError("expected a single value (text, number, true/false or null)")
    return Equals(argument)


def _one_of(argument: Any) -> OneOf:
    if not isinstance(argument, list) or not argument:
        raise ValueError("expected a non-empty list of values, e.g. {in: [a, b]}")
    if not all(is_scalar(option) for option in argument):
        raise ValueError("expected a list of single values (no mappings or lists inside)")
    return OneOf(tuple(argument))


def _regex(argument: Any) -> Regex:
    if not isinstance(argument, str):
        raise ValueError("expected a regular expression as text, e.g. {regex: 'refs/tags/v.*'}")
    try:
        return Regex(re.compile(argument))
    except re.error as exc:
        raise ValueError(f"invalid regular expression ({exc}); expected a Python regular expression") from None


def _exists(argument: Any) -> Exists:
    if not isinstance(argument, bool):
        raise ValueError("expected true or false")
    return Exists(argument)
