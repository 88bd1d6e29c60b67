"""Checks that span sections of the file: unique rule names, known sources, debounce windows.

They read the raw data rather than marshmallow's output, because marshmallow drops a whole list
when one item fails, and one broken rule must not hide the duplicate name of another.
The result is a marshmallow-style error dict, merged with the field errors.
"""
from __future__ import annotations

from typing import Any

from bridge.rules.durations import format_duration, parse_duration
from bridge.rules.model import Defaults

Errors = dict[Any, Any]


def cross_problems(original: Any) -> Errors:
    if not isinstance(original, dict):
        return {}
    rules = original.get("rules")
    rules = list(enumerate(rules)) if isinstance(rules, list) else []
    rules = [(index, rule) for index, rule in rules if isinstance(rule, dict)]
    errors: Errors = {}
    _merge(errors, _duplicate_names(rules))
    _merge(errors, _unknown_sources(rules, original.get("sources")))
    _merge(errors, _debounce_windows(rules, original.get("defaults")))
    return errors


def _duplicate_names(rules: list[tuple[int, dict]]) -> Errors:
    first: dict[str, int] = {}
    errors: Errors = {}
    for index, rule in rules:
        name = rule.get("name")
        if not isinstance(name, str):
            continue
        if name in first:
            message = f"duplicate rule name {name!r} (also rules.{first[name]}); expected unique names"
            errors[index] = {"name": [message]}
        first.setdefault(name, index)
    return {"rules": errors} if errors else {}


def _unknown_sources(rules: list[tuple[int, dict]], sources: Any) -> Errors:
    if sources is None:
        sources = {}  # no sources section at all: every rule's source is unknown
    if not isinstance(sources, dict):
        return {}  # the sources section has its own error; every rule would repeat it
    known = ", ".join(sorted(str(name) for name in sources)) or "(none defined)"
    errors = {index: {"source": [f"{rule['source']!r} is not a defined source; expected one of: {known}"]}
              for index, rule in rules
              if isinstance(rule.get("source"), str) and rule["source"] not in sources}
    return {"rules": errors} if errors else {}


def _debounce_windows(rules: list[tuple[int, dict]], defaults: Any) -> Errors:
    """max_wait >= quiet must hold after merging: a rule may set one and inherit the other."""
    builtin = Defaults()
    section = defaults.get("debounce") if isinstance(defaults, dict) else None
    errors: Errors = {}
    window, problem = _window(section, (builtin.quiet, builtin.max_wait), "the built-in default")
    if problem:
        errors["defaults"] = {"debounce": problem}
        window = (builtin.quiet, builtin.max_wait)
    rule_errors = {}
    for index, rule in rules:
        _, problem = _window(rule.get("debounce"), window, "defaults")
        if problem:
            rule_errors[index] = {"debounce": problem}
    if rule_errors:
        errors["rules"] = rule_errors
    return errors


def _window(section: Any, inherited: tuple[float, float], origin: str) -> tuple[tuple[float, float], Errors]:
    if not isinstance(section, dict):
        return inherited, {}
    quiet = _seconds(section.get("quiet"), inherited[0])
    max_wait = _seconds(section.get("max_wait"), inherited[1])
    if quiet is None or max_wait is None or max_wait >= quiet:
        return (inherited[0] if quiet is None else quiet, inherited[1] if max_wait is None else max_wait), {}
    if "max_wait" in section:
        where = "quiet" if "quiet" in section else f"quiet from {origin}"
        return inherited, {"max_wait": [f"max_wait {format_duration(max_wait)} is shorter than {where} "
                                        f"{format_duration(quiet)}; expected max_wait >= quiet"]}
    return inherited, {"quiet": [f"quiet {format_duration(quiet)} is longer than max_wait "
                                 f"{format_duration(max_wait)} (from {origin}); expected quiet <= max_wait"]}


def _seconds(value: Any, inherited: float) -> float | None:
    """The duration, the inherited value when unset, or None when invalid (reported by its field)."""
    if value is None:
        return inherited
    try:
        return parse_duration(value)
    except ValueError:
        return None


def _merge(target: Errors, extra: Errors) -> None:
    for key, value in extra.items():
        if key in target and isinstance(target[key], dict) and isinstance(value, dict):
            _merge(target[key], value)
        else:
            target[key] = value
