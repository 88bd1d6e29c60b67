"""The `bridge` command through click's CliRunner: check, explain, and bad settings."""
from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner

from bridge.cli import main
from tests.helpers import GITHUB_SECRET, ROOT, SAMPLES, sample

ENV = {"GITHUB_WEBHOOK_SECRET": GITHUB_SECRET, "ERP_WEBHOOK_SECRET": "erp-secret"}

SAMPLE_RULES = textwrap.dedent("""\
    sources:
      github: {type: github, secret: "${GITHUB_WEBHOOK_SECRET}"}
    rules:
      - name: hello world master
        source: github
        event: push
        when:
          payload.ref: refs/heads/master
        then: [{action: import, site: 9}, {action: export, site: 9, id: 3}]
      - name: releases only
        source: github
        event: release
        then: {action: all, site: 10}
    """)


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def rules(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(SAMPLE_RULES)
    return path


def headers_args(name):
    _, headers = sample(name)
    return [arg for key, value in headers.items() for arg in ("-H", f"{key}: {value}")]


def test_check_accepts_the_shipped_rules(runner):
    result = runner.invoke(main, ["check", "--rules", str(ROOT / "config/rules.yaml")], env=ENV)
    assert result.exit_code == 0, result.output
    assert "OK (2 sources, 2 rules)" in result.output


def test_check_reports_errors_with_file_and_line_and_exits_2(runner, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  gh: {type: github, secret: x}\nrules:\n  - name: r\n    source: gh\n"
                   "    then: {action: export, site: 1}\n")
    result = runner.invoke(main, ["check", "--rules", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:6" in result.output and "id" in result.output


def test_check_names_a_missing_variable_without_a_traceback(runner):
    result = runner.invoke(main, ["check", "--rules", str(ROOT / "config/rules.yaml")],
                           env={"GITHUB_WEBHOOK_SECRET": "x", "ERP_WEBHOOK_SECRET": None})
    assert result.exit_code == 2
    assert "ERP_WEBHOOK_SECRET" in result.output and "Traceback" not in result.output


def test_check_on_a_missing_file(runner, tmp_path):
    result = runner.invoke(main, ["check", "--rules", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "nope.yaml" in result.output


def test_check_reads_bridge_rules_from_the_environment(runner, rules):
    result = runner.invoke(main, ["check"], env={**ENV, "BRIDGE_RULES": str(rules)})
    assert result.exit_code == 0 and str(rules) in result.output


def test_explain_shows_verification_rules_and_intents(runner, rules):
    result = runner.invoke(main, ["explain", "github", "--rules", str(rules), "--body",
                                  str(SAMPLES / "github-push.json"), *headers_args("github-push.json")], env=ENV)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "verification: passed" in out
    assert "rule 'hello world master': MATCHED" in out
    assert "rule 'releases only': no match" in out
    assert "intent: import on site 9" in out and "intent: export id 3 on site 9" in out


def test_explain_form_body(runner, rules):
    result = runner.invoke(main, ["explain", "github", "--rules", str(rules), "--body",
                                  str(SAMPLES / "github-push.form.txt"), *headers_args("github-push.form.txt")],
                           env=ENV)
    assert result.exit_code == 0 and "MATCHED" in result.output


def test_explain_failed_verification_exits_1(runner, rules, tmp_path):
    body = tmp_path / "tampered.json"
    body.write_bytes((SAMPLES / "github-push.json").read_bytes().replace(b"master", b"mastex", 1))
    result = runner.invoke(main, ["explain", "github", "--rules", str(rules), "--body", str(body),
                                  *headers_args("github-push.json")], env=ENV)
    assert result.exit_code == 1 and "verification: FAILED" in result.output
    assert "MATCHED" not in result.output


def test_explain_says_why_a_rule_did_not_match(runner, rules):
    result = runner.invoke(main, ["explain", "github", "--rules", str(rules), "--body",
                                  str(SAMPLES / "github-push-tag-delete.json"),
                                  *headers_args("github-push-tag-delete.json")], env=ENV)
    assert result.exit_code == 0, result.output
    assert "payload.ref" in result.output and "matched: []" in result.output


@pytest.mark.parametrize("args, message", [
    (["explain", "nosuch", "--body", "-"], "no source named 'nosuch'"),
    (["explain", "github", "--body", "-", "-H", "no colon here"], "not of the form 'Name: value'"),
    (["explain", "github", "--body", "-", "-q", "novalue"], "not of the form 'name=value'"),
])
def test_explain_bad_arguments(runner, rules, args, message):
    result = runner.invoke(main, [*args, "--rules", str(rules)], input=b"{}", env=ENV)
    assert result.exit_code == 2 and message in result.output


def test_explain_stores_and_calls_nothing(runner, rules, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner.invoke(main, ["explain", "github", "--rules", str(rules), "--body", str(SAMPLES / "github-push.json"),
                         *headers_args("github-push.json")], env=ENV)
    assert not (tmp_path / "bridge.db").exists()


@pytest.mark.parametrize("env, message", [
    ({"PRODUCTSUP_AUTH_TOKEN": "no-colon"}, "accountId:token"),
    ({"PORT": "http"}, "PORT"),
    ({"BRIDGE_TICK_SECONDS": "-1"}, "BRIDGE_TICK_SECONDS"),
])
def test_bad_settings_are_clear_errors(runner, rules, env, message):
    result = runner.invoke(main, ["check"], env={**ENV, **env})
    assert result.exit_code == 2 and message in result.output
    assert "no-colon" not in result.output  # a token is never echoed, even a malformed one


@pytest.mark.parametrize("url, message", [
    ("garbage", "Could not parse"),
    ("sqlite:////nonexistent/dir/x.db", "unable to open database file"),
    ("postgres://user:pw-secret@127.0.0.1:1/db", "postgres://***@127.0.0.1:1/db"),
])
def test_worker_with_an_unusable_database_is_one_clear_line(runner, rules, url, message):
    result = runner.invoke(main, ["worker"], env={**ENV, "BRIDGE_RULES": str(rules), "DATABASE_URL": url})
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output and "pw-secret" not in result.output


@pytest.mark.parametrize("args", [
    ["serve", "--port", "70000"], ["serve", "--port", "-1"], ["serve", "--workers", "0"],
    ["sim", "--rate-limit", "-5"], ["sim", "--run-seconds", "nan"], ["sim", "--port", "0"],
])
def test_out_of_range_options_are_refused(runner, args):
    result = runner.invoke(main, args, env=ENV)
    assert result.exit_code == 2 and "Invalid value" in result.output
