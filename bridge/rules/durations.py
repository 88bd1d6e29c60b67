"""Durations as people write them in YAML: `30s`, `5m`, `1h`, `1500ms`, `1m30s`, or plain seconds."""
from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
MAX_SECONDS = 365 * 86400.0
EXPECTED = "expected a duration like 30s, 5m, 1h, 7d, 1500ms or a number of seconds"


def parse_duration(value: object) -> float:
    """Seconds as a float; raises ValueError with a message that says what to write instead."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{_shown(value)} is not a duration; {EXPECTED}")
    if isinstance(value, (int, float)):
        return _bounded(_non_negative(float(value), value), value)
    if not isinstance(value, str):
        raise ValueError(f"a {type(value).__name__} is not a duration; {EXPECTED}")
    text = value.strip()
    if _NUMBER.fullmatch(text):
        return _bounded(float(text), value)
    if not _WHOLE.fullmatch(text):
        raise ValueError(f"{value!r} is not a duration; {EXPECTED}")
    return _bounded(sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(text)), value)


def format_duration(seconds: float) -> str:
    """Echo a duration back in the units the user most likely wrote, for error messages."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{seconds:g}s"


def _non_negative(seconds: float, original: object) -> float:
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError(f"{original!r} is not a usable duration; {EXPECTED} (zero or more)")
    return seconds


def _bounded(seconds: float, original: object) -> float:
    """Past a year a duration is a typo (and far-future times only overflow someone's column)."""
    if seconds > MAX_SECONDS:
        raise ValueError(f"{original!r} is longer than a year; {EXPECTED}")
    return seconds


def _shown(value: object) -> str:
    return "null" if value is None else str(value).lower()
