"""`when:` conditions: the equality table, each operator, missing values and hostile payloads.

Each case is written as YAML, so the types a rule author actually gets from the parser are tested.
"""
from __future__ import annotations

import pytest

from bridge.rules import load_config
from bridge.rules.values import values_equal


def config_with(tmp_path, condition):
    path = tmp_path / "rules.yaml"
    path.write_text("sources: {s: {type: none}}\n"
                    "rules:\n"
                    "  - name: r\n"
                    "    source: s\n"
                    "    when:\n"
                    f"      {condition}\n"
                    "    then: {action: import, site: 1}\n")
    return load_config(path, {})


def holds(tmp_path, condition, payload):
    match = config_with(tmp_path, condition).match({"source": "s", "event": None, "payload": payload,
                                                     "headers": {}, "query": {}})
    return match.matched_rules == ["r"]


# (YAML value, payload value, equal?)
EQUALITY = [
    ("123", 123, True), ("123", "123", True), ("'123'", 123, True), ("'123'", "123", True),
    ("1.5", 1.5, True), ("1.5", "1.5", True), ("'1.5'", 1.5, True), ("10", 10.0, True), ("10.0", 10, True),
    ("10", "10.0", True), ("1000", "1e3", True), ("0.1", "0.1", True), ("-7", "-7", True),
    ("123", "0123", False), ("123", " 123", False), ("123", "123abc", False), ("123", 124, False),
    ("abc", "abc", True), ("abc", "ABC", False), ("abc", "abc ", False), ("''", "", True),
    ("true", True, True), ("false", False, True), ("true", False, False),
    ("true", "true", False), ("'true'", True, False), ("'true'", "true", True),
    ("true", 1, False), ("1", True, False), ("0", False, False), ("false", 0, False), ("false", None, False),
    ("null", None, True), ("'null'", None, False), ("null", "", False), ("null", 0, False), ("null", False, False),
    ("abc", None, False), ("0", None, False), ("''", None, False),
    ("abc", {"abc": 1}, False), ("abc", ["abc"], False), ("1", [1], False), ("null", [], False), ("null", {}, False),
    ("2024-01-01", "2024-01-01", True),
]


@pytest.mark.parametrize("yaml_value, actual, expected", EQUALITY,
                         ids=[f"{y} vs {a!r}" for y, a, _ in EQUALITY])
def test_equality_table(tmp_path, yaml_value, actual, expected):
    assert holds(tmp_path, f"payload.x: {yaml_value}", {"x": actual}) is expected
    assert holds(tmp_path, f"payload.x: {{equals: {yaml_value}}}", {"x": actual}) is expected


@pytest.mark.parametrize("left, right", [(123, "123"), (1.5, "1.5"), (10, 10.0), (True, True), (None, None)])
def test_equality_is_symmetric(left, right):
    assert values_equal(left, right) and values_equal(right, left)


@pytest.mark.parametrize("left, right", [(True, 1), ("true", True), (1, [1]), ({"a": 1}, {"a": 1}), (0, None)])
def test_inequality_is_symmetric(left, right):
    assert not values_equal(left, right) and not values_equal(right, left)


@pytest.mark.parametrize("condition, payload, expected", [
    # missing and null values never raise; only null and exists: false hold for them
    ("payload.x: null", {}, True),
    ("payload.x: null", None, True),
    ("payload.x: abc", {}, False),
    ("payload.a.b.c: 1", {"a": None}, False),
    ("payload.a.b.c: 1", {"a": "text"}, False),
    ("payload.a.b.c: 1", {"a": [1, 2]}, False),
    ("payload.a.b.c: 1", "not a mapping", False),
    ("payload.a.b.c: 1", {"a": {"b": {"c": "1"}}}, True),
    # exists
    ("payload.x: {exists: true}", {"x": 0}, True),
    ("payload.x: {exists: true}", {"x": False}, True),
    ("payload.x: {exists: true}", {"x": ""}, True),
    ("payload.x: {exists: true}", {}, False),
    ("payload.x: {exists: true}", {"x": None}, False),
    ("payload.x: {exists: false}", {}, True),
    ("payload.x: {exists: false}", {"x": None}, True),
    ("payload.x: {exists: false}", [1, 2], True),
    ("payload.x: {exists: false}", {"x": 1}, False),
])
def test_missing_values_and_exists(tmp_path, condition, payload, expected):
    assert holds(tmp_path, condition, payload) is expected


@pytest.mark.parametrize("actual, expected", [
    ("a", True), ("b", True), (3, True), ("3", True), (3.0, True), ("c", False), (None, False), (["a"], False),
    ({"a": 1}, False), (True, False),
])
def test_in(tmp_path, actual, expected):
    assert holds(tmp_path, "payload.x: {in: [a, b, 3]}", {"x": actual}) is expected


def test_in_with_null_and_booleans(tmp_path):
    assert holds(tmp_path, "payload.x: {in: [null, true]}", {}) is True
    assert holds(tmp_path, "payload.x: {in: [null, true]}", {"x": True}) is True
    assert holds(tmp_path, "payload.x: {in: [null, true]}", {"x": "true"}) is False


@pytest.mark.parametrize("pattern, actual, expected", [
    ("'refs/tags/v.*'", "refs/tags/v1.2", True),
    ("'refs/tags/v.*'", "xrefs/tags/v1", False),         # whole value: no search
    ("'v\\d+'", "v12 and more", False),                   # whole value: no prefix match
    ("'[0-9]+'", 12345, True),                             # numbers are tested as JSON text
    ("'1\\.5'", 1.5, True),
    ("'.*'", True, False),                                 # booleans have no text to match
    ("'.*'", None, False),
    ("'.*'", ["a"], False),
    ("'.*'", {"a": "b"}, False),
    ("'(?i)main'", "MAIN", True),
])
def test_regex(tmp_path, pattern, actual, expected):
    assert holds(tmp_path, f"payload.x: {{regex: {pattern}}}", {"x": actual}) is expected


@pytest.mark.parametrize("actual, expected", [("release-1", True), ("release-2", False), ("hotfix-1", False),
                                              (None, False)])
def test_several_operators_must_all_hold(tmp_path, actual, expected):
    condition = "payload.x: {exists: true, regex: 'release-.*', in: [release-1, hotfix-1]}"
    assert holds(tmp_path, condition, {"x": actual}) is expected


def test_several_conditions_must_all_hold(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("sources: {s: {type: none}}\nrules:\n  - name: r\n    source: s\n    when:\n"
                    "      payload.a: 1\n      headers.\"x-kind\": push\n      query.token: {exists: false}\n"
                    "    then: {action: import, site: 1}\n")
    config = load_config(path, {})
    base = {"source": "s", "event": None, "payload": {"a": "1"}, "headers": {"x-kind": "push"}, "query": {}}
    assert config.match(base).matched_rules == ["r"]
    assert config.match({**base, "headers": {"x-kind": "tag"}}).matched_rules == []
    assert config.match({**base, "query": {"token": "t"}}).matched_rules == []
    trace = config.match({**base, "payload": {"a": 2}}).traces[0]
    assert trace.matched is False
    assert trace.reasons == ["payload.a: 2 does not equal 1", "headers.\"x-kind\": 'push' equals 'push'",
                             "query.token: null is missing or null"]


@pytest.mark.parametrize("condition, payload, expected", [
    ("payload.items[0].sku: A1", {"items": [{"sku": "A1"}, {"sku": "B2"}]}, True),
    ("payload.items[1].sku: A1", {"items": [{"sku": "A1"}, {"sku": "B2"}]}, False),
    ("payload.items[5].sku: A1", {"items": [{"sku": "A1"}]}, False),
    ("payload.items[0].sku: A1", {"items": {"0": {"sku": "A1"}}}, False),
    ("\"contains(payload.items[*].sku, 'B2')\": true", {"items": [{"sku": "A1"}, {"sku": "B2"}]}, True),
    ("\"contains(payload.items[*].sku, 'C3')\": true", {"items": [{"sku": "A1"}]}, False),
    ("\"length(payload.items) > `1`\": true", {"items": [1, 2]}, True),
    ("payload.items[*].sku: A1", {"items": [{"sku": "A1"}]}, False),     # a list never equals a scalar
    ("payload.items[*].sku: {in: [A1]}", {"items": [{"sku": "A1"}]}, False),
])
def test_nested_lists_and_expressions(tmp_path, condition, payload, expected):
    assert holds(tmp_path, condition, payload) is expected


HOSTILE = [
    ("deep nesting", lambda: _deep(5000)),
    ("huge string", lambda: {"x": "a" * 5_000_000}),
    ("huge numeric string", lambda: {"x": "1" * 100_000}),
    ("list instead of mapping", lambda: [[{"x": 1}]] * 100),
    ("mapping of lists", lambda: {"x": [[[]]], "items": {"sku": "A1"}}),
    ("unicode", lambda: {"x": "\udcff\x00\u202e"}),
    ("big number", lambda: {"x": 10**300}),
    ("float special", lambda: {"x": float("nan"), "items": float("inf")}),
]


@pytest.mark.parametrize("make", [make for _, make in HOSTILE], ids=[name for name, _ in HOSTILE])
@pytest.mark.parametrize("condition", [
    "payload.x: 1", "payload.x: {regex: '[0-9]+'}", "payload.x: {in: [1, a]}", "payload.x: {exists: false}",
    "\"length(payload.items) > `1`\": true", "\"payload.x == payload.y\": true", "\"to_string(payload)\": a",
    "payload.items[0].sku: A1", "\"sort_by(payload.items, &sku)[0].sku\": A1",
])
def test_hostile_payloads_never_raise(tmp_path, make, condition):
    payload = make()
    config = config_with(tmp_path, condition)
    for doc in ({"source": "s", "payload": payload}, {"source": "s", "payload": payload, "y": payload}):
        match = config.match(doc)
        assert isinstance(match.traces[0].matched, bool)


def test_deep_payload_comparison_is_reported_not_raised(tmp_path):
    config = config_with(tmp_path, "\"payload.a == payload.b\": true")
    deep = _deep(100_000)
    match = config.match({"source": "s", "payload": {"a": deep, "b": _deep(100_000)}})
    assert match.matched_rules == []
    assert "nested too deeply" in match.traces[0].reasons[0] or "does not equal" in match.traces[0].reasons[0]


def test_long_values_are_shortened_in_reasons(tmp_path):
    config = config_with(tmp_path, "payload.x: a")
    reason = config.match({"source": "s", "payload": {"x": "b" * 10_000}}).traces[0].reasons[0]
    assert len(reason) < 200 and "(10000 characters)" in reason


def _deep(depth):
    value = {"x": 1}
    for _ in range(depth):
        value = {"x": value, "items": [value]}
    return value
