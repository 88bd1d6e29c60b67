"""The shipped config/rules.yaml, the public API, and rule-level features (fan-out, events, debounce)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bridge.rules import Config, ConfigError, Defaults, Intent, Rejection, load_config
from bridge.sources import SOURCE_TYPES

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "rules.yaml"
ENV = {"GITHUB_WEBHOOK_SECRET": "gh-secret-value", "ERP_WEBHOOK_SECRET": "erp-secret-value"}


def write(tmp_path, text):
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def document(source, event=None, payload=None, headers=None, query=None):
    return {"source": source, "event": event, "payload": payload, "headers": headers or {}, "query": query or {}}


@pytest.fixture(scope="module")
def example():
    return load_config(EXAMPLE, ENV)


def push(ref, repository="acme/catalog"):
    return document("github", "push", {"ref": ref, "repository": {"full_name": repository}})


def batch(status="success", **fields):
    return document("erp", "batch.completed", {"event": "batch.completed", "status": status, **fields})


def test_example_loads_with_its_sources_and_defaults(example):
    assert isinstance(example, Config)
    assert example.path == str(EXAMPLE)
    assert example.defaults == Defaults(quiet=30.0, max_wait=300.0, min_interval=300.0)
    assert isinstance(example.sources["github"], SOURCE_TYPES["github"])
    assert isinstance(example.sources["erp"], SOURCE_TYPES["hmac"])
    assert example.sources["erp"].secrets == ["erp-secret-value"]
    assert [rule.name for rule in example.rules] == ["catalog pushed to main", "ERP batch finished"]


def test_example_loads_from_os_environ_by_default(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert load_config(str(EXAMPLE)).sources["github"].secrets == ["gh-secret-value"]


def test_example_needs_both_secrets():
    with pytest.raises(ConfigError) as caught:
        load_config(EXAMPLE, {})
    assert caught.value.errors == [
        f"{EXAMPLE}:8: sources.github.secret: environment variable GITHUB_WEBHOOK_SECRET is not set; "
        "expected it to be set (referenced as ${GITHUB_WEBHOOK_SECRET})",
        f"{EXAMPLE}:11: sources.erp.secret: environment variable ERP_WEBHOOK_SECRET is not set; "
        "expected it to be set (referenced as ${ERP_WEBHOOK_SECRET})",
    ]


@pytest.mark.parametrize("doc, expected", [
    (push("refs/heads/main"), [Intent(123456, "import", None, "catalog pushed to main", 30.0, 300.0)]),
    (push("refs/heads/main", "acme/catalog-eu"), [Intent(123456, "import", None, "catalog pushed to main", 30.0, 300.0)]),
    (push("refs/heads/master"), []),
    (push("refs/heads/main", "acme/other"), []),
    (document("github", "pull_request", {"ref": "refs/heads/main", "repository": {"full_name": "acme/catalog"}}), []),
    (batch(site_id="42"), [Intent(42, "all", None, "ERP batch finished", 30.0, 300.0)]),
    (batch(site_id=42), [Intent(42, "all", None, "ERP batch finished", 30.0, 300.0)]),
    (batch(status="failed", site_id="42"), []),
    (document("erp", "batch.started", {"status": "success", "site_id": 42}), []),
], ids=["main", "catalog-eu", "master", "other repo", "other event", "site as text", "site as number",
        "failed batch", "other erp event"])
def test_example_rules_behave_as_commented(example, doc, expected):
    match = example.match(doc)
    assert match.intents == expected
    assert match.rejections == []


def test_example_rejects_a_batch_without_site(example):
    match = example.match(batch())
    assert match.intents == []
    assert match.matched_rules == ["ERP batch finished"]
    assert match.rejections == [Rejection("ERP batch finished",
                                          "site rendered to null from {{ payload.site_id }}; expected a positive integer")]


def test_traces_explain_why_a_rule_did_not_match(example):
    traces = {trace.rule: trace for trace in example.match(push("refs/heads/master")).traces}
    main = traces["catalog pushed to main"]
    assert main.matched is False
    assert "payload.ref: 'refs/heads/master' does not equal 'refs/heads/main'" in main.reasons
    assert "payload.repository.full_name: 'acme/catalog' is one of ['acme/catalog', 'acme/catalog-eu']" in main.reasons
    assert traces["ERP batch finished"].reasons == ["source is 'github', not 'erp'"]


SITES = """\
    sources:
      shop: {type: none, event: payload.kind}
    rules:
"""


def test_fan_out_to_several_sites_and_exports(tmp_path):
    config = load_config(write(tmp_path, SITES + """\
      - name: everywhere
        source: shop
        then:
          - {action: import, site: 1}
          - {action: export, site: 2, id: 77}
          - {action: channel, site: "{{ payload.site }}", id: "{{ payload.channel }}"}
          - {action: export-all, site: "{{ payload.missing }}"}
    """), {})
    match = config.match(document("shop", payload={"site": "3", "channel": 9}))
    assert [(i.site_id, i.action, i.target_id) for i in match.intents] == [
        (1, "import", None), (2, "export", 77), (3, "channel", 9)]
    assert [r.reason for r in match.rejections] == [
        "site rendered to null from {{ payload.missing }}; expected a positive integer"]


def test_several_rules_contribute_their_intents(tmp_path):
    config = load_config(write(tmp_path, SITES + """\
      - name: a
        source: shop
        then: {action: import, site: 1}
      - name: b
        source: shop
        event: order
        then: {action: all, site: 2}
    """), {})
    assert config.match(document("shop", "order")).matched_rules == ["a", "b"]
    assert config.match(document("shop", "refund")).matched_rules == ["a"]
    assert [i.site_id for i in config.match(document("shop", "order")).intents] == [1, 2]


@pytest.mark.parametrize("event, matched", [
    ("push", True), ("release", True), ("pull_request", False), (None, False), (5, False), (["push"], False),
])
def test_event_may_be_a_list(tmp_path, event, matched):
    config = load_config(write(tmp_path, SITES + """\
      - name: r
        source: shop
        event: [push, release]
        then: {action: import, site: 1}
    """), {})
    assert config.match(document("shop", event)).matched_rules == (["r"] if matched else [])


def test_rule_without_when_or_event_matches_every_event_of_its_source(tmp_path):
    config = load_config(write(tmp_path, SITES + """\
      - name: r
        source: shop
        then: {action: import, site: 1}
    """), {})
    assert config.match(document("shop", None, None)).matched_rules == ["r"]
    assert config.match(document("shop", "x", [1, 2])).matched_rules == ["r"]
    assert config.match(document("elsewhere", "x", {})).matched_rules == []


def test_debounce_defaults_and_overrides(tmp_path):
    config = load_config(write(tmp_path, """\
    defaults:
      debounce: {quiet: 1m, max_wait: 1h}
      min_interval: 1500ms
    sources:
      shop: {type: none}
    rules:
      - name: inherits
        source: shop
        then: {action: import, site: 1}
      - name: quick
        source: shop
        debounce: {quiet: 5s}
        then: {action: import, site: 2}
      - name: both
        source: shop
        debounce: {quiet: 0, max_wait: 90}
        then: {action: import, site: 3}
    """), {})
    assert config.defaults == Defaults(quiet=60.0, max_wait=3600.0, min_interval=1.5)
    windows = [(i.site_id, i.quiet, i.max_wait) for i in config.match(document("shop")).intents]
    assert windows == [(1, 60.0, 3600.0), (2, 5.0, 3600.0), (3, 0.0, 90.0)]


def test_built_in_defaults_apply_without_a_defaults_section(tmp_path):
    config = load_config(write(tmp_path, "sources: {shop: {type: none}}\nrules: []\n"), {})
    assert config.defaults == Defaults(30.0, 300.0, 300.0)
    assert config.rules == [] and config.match(document("shop")).intents == []


@pytest.mark.parametrize("text, seconds", [
    ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("1500ms", 1.5), ("45", 45.0), ("2.5", 2.5),
    ("1m30s", 90.0), ("0", 0.0), ("0.5s", 0.5), ("7d", 604800.0),
])
def test_durations(tmp_path, text, seconds):
    config = load_config(write(tmp_path, f"defaults: {{debounce: {{quiet: {text}, max_wait: 300d}}}}\n"), {})
    assert config.defaults.quiet == seconds


@pytest.mark.parametrize("text", ["5x", "m", "5 m", "-1s", "''", "[1]", "null", "1h-5m", "0", "0s", "1e308",
                                  "400d"])
def test_bad_durations(tmp_path, text):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, f"defaults:\n  min_interval: {text}\n"), {})
    assert caught.value.errors[0].startswith(f"{tmp_path / 'rules.yaml'}:2: defaults.min_interval: ")


def test_match_never_raises_for_odd_documents(example):
    for doc in [{}, {"source": "github"}, None, [], "text", {"source": ["github"]},
                {"source": "erp", "event": "batch.completed", "payload": "not a mapping"},
                {"source": "erp", "event": "batch.completed", "payload": [{"status": "success"}]}]:
        match = example.match(doc)
        assert match.intents == []


def test_site_ids_as_strings_in_yaml_are_accepted(tmp_path):
    config = load_config(write(tmp_path, SITES + "      - {name: r, source: shop, then: {action: all, site: '42'}}\n"), {})
    assert config.match(document("shop")).intents[0].site_id == 42
