"""Templates in `site` and `id`: raw values, mixed text, and rejections that spare the other intents."""
from __future__ import annotations

import pytest

from bridge.rules import Intent, Rejection, load_config

TEMPLATE_RULE = """\
sources: {{s: {{type: none}}}}
rules:
  - name: r
    source: s
    then:
      - {{action: {action}, site: {site}{id}}}
      - {{action: import, site: 999}}
"""


def match_with(tmp_path, site, payload, action="all", target=None):
    path = tmp_path / "rules.yaml"
    id_part = "" if target is None else f", id: {target}"
    path.write_text(TEMPLATE_RULE.format(action=action, site=site, id=id_part))
    return load_config(path, {}).match({"source": "s", "event": "e", "payload": payload, "headers": {},
                                        "query": {}})


@pytest.mark.parametrize("value, site_id", [
    (42, 42), ("42", 42), (42.0, 42), ("0042", 42), (999_999_999_999, 999_999_999_999),
])
def test_site_renders_to_a_positive_integer(tmp_path, value, site_id):
    match = match_with(tmp_path, "'{{ payload.site }}'", {"site": value})
    assert match.intents[0] == Intent(site_id, "all", None, "r", 30.0, 300.0)
    assert match.rejections == []


@pytest.mark.parametrize("value, shown", [
    (None, "null"), (0, "0"), (-5, "-5"), ("-5", "'-5'"), (True, "true (a boolean)"), (False, "false (a boolean)"),
    (1.5, "1.5"), ("1.5", "'1.5'"), ("", "''"), ("abc", "'abc'"), (" 42", "' 42'"), ([42], "a list of 1 items"),
    ({"id": 42}, "a mapping with 1 keys"), (10**30, "1000000000000000000000000000000"), ("9" * 40, "'" + "9" * 40 + "'"),
    (float("inf"), "inf"), (float("nan"), "nan"),
])
def test_bad_site_rejects_only_that_intent(tmp_path, value, shown):
    match = match_with(tmp_path, "'{{ payload.site }}'", {"site": value})
    assert match.rejections == [Rejection("r", f"site rendered to {shown} from {{{{ payload.site }}}}; "
                                               "expected a positive integer")]
    assert [intent.site_id for intent in match.intents] == [999]


def test_missing_site_path_in_odd_payloads_is_a_rejection(tmp_path):
    for payload in (None, "text", [1, 2], {"site": {"deeper": 1}}, 5):
        match = match_with(tmp_path, "'{{ payload.site.id }}'", payload)
        assert [r.reason for r in match.rejections] == [
            "site rendered to null from {{ payload.site.id }}; expected a positive integer"]
        assert [intent.site_id for intent in match.intents] == [999]


def test_evaluation_failure_is_a_rejection(tmp_path):
    match = match_with(tmp_path, "'{{ length(payload.site) }}'", {"site": 5})
    assert match.rejections == [Rejection("r", "site could not be rendered from {{ length(payload.site) }}: "
                                               "could not be evaluated (JMESPathTypeError)")]


@pytest.mark.parametrize("template, payload, site_id", [
    ("'{{ payload.a }}{{ payload.b }}'", {"a": 1, "b": "23"}, 123),
    ("'1{{ payload.a }}'", {"a": 0}, 10),
    ("'{{payload.a}}'", {"a": "7"}, 7),
    ("'{{ payload.sites[0] }}'", {"sites": [5, 6]}, 5),
    ("\"{{ headers.\\\"x-site\\\" }}\"", {}, None),
])
def test_mixed_text_renders_as_a_string(tmp_path, template, payload, site_id):
    match = match_with(tmp_path, template, payload)
    if site_id is None:
        assert match.rejections
    else:
        assert match.intents[0].site_id == site_id


@pytest.mark.parametrize("payload, reason", [
    ({"a": None}, "site could not be rendered from 1{{ payload.a }}: a placeholder rendered to null"),
    ({"a": [1]}, "site could not be rendered from 1{{ payload.a }}: a placeholder rendered to a list of 1 items"),
    ({"a": True}, "site rendered to '1true' from 1{{ payload.a }}; expected a positive integer"),
    ({"a": "x"}, "site rendered to '1x' from 1{{ payload.a }}; expected a positive integer"),
])
def test_mixed_text_failures(tmp_path, payload, reason):
    match = match_with(tmp_path, "'1{{ payload.a }}'", payload)
    assert [r.reason for r in match.rejections] == [reason]


def test_header_templates_read_lower_case_names(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("sources: {s: {type: none}}\nrules:\n  - name: r\n    source: s\n"
                    "    then: {action: import, site: '{{ headers.\"x-site\" }}'}\n")
    match = load_config(path, {}).match({"source": "s", "headers": {"x-site": "77"}})
    assert match.intents[0].site_id == 77


@pytest.mark.parametrize("action, target, payload, expected", [
    ("export", 12, {}, 12),
    ("export", "'{{ payload.export }}'", {"export": "34"}, 34),
    ("channel", "'{{ payload.channel }}'", {"channel": 56}, 56),
    ("channel", "'56'", {}, 56),
])
def test_ids_for_export_and_channel(tmp_path, action, target, payload, expected):
    match = match_with(tmp_path, 1, payload, action=action, target=target)
    assert match.intents[0] == Intent(1, action, expected, "r", 30.0, 300.0)


@pytest.mark.parametrize("payload, reason", [
    ({}, "id rendered to null from {{ payload.export }}; expected a positive integer"),
    ({"export": 0}, "id rendered to 0 from {{ payload.export }}; expected a positive integer"),
    ({"export": "x"}, "id rendered to 'x' from {{ payload.export }}; expected a positive integer"),
])
def test_bad_id_rejects_the_intent(tmp_path, payload, reason):
    match = match_with(tmp_path, 1, payload, action="export", target="'{{ payload.export }}'")
    assert match.rejections == [Rejection("r", reason)]
    assert [intent.site_id for intent in match.intents] == [999]


def test_site_and_id_rejection_reports_the_site_first(tmp_path):
    match = match_with(tmp_path, "'{{ payload.site }}'", {}, action="export", target="'{{ payload.export }}'")
    assert [r.reason for r in match.rejections] == [
        "site rendered to null from {{ payload.site }}; expected a positive integer"]
