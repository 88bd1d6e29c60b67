"""Every way a rules file can be wrong: each case is one file, with `# <-` marking the line to blame."""
from __future__ import annotations

import textwrap

import pytest

from bridge.rules import ConfigError, load_config

HEAD = """\
sources:
  gh:
    type: none
"""

RULE = """\
rules:
  - name: r
    source: gh
"""


def write(tmp_path, text, name="rules.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def errors_of(path, environ=None):
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ or {})
    return caught.value.errors


def marked_line(text):
    lines = textwrap.dedent(text).splitlines()
    return next(number for number, line in enumerate(lines, 1) if "# <-" in line)


CASES = [
    ("unknown top-level key", HEAD + "rulez: []  # <-\n", "rulez", "expected one of: defaults, rules, sources"),
    ("unknown key in defaults", "defaults:\n  quiet: 30s  # <-\n" + HEAD, "defaults.quiet",
     "expected one of: debounce, dedup_retention, min_interval"),
    ("unknown key in debounce", "defaults:\n  debounce: {quiet: 1s, wait: 2s}  # <-\n", "defaults.debounce.wait",
     "expected one of: max_wait, quiet"),
    ("bad duration", "defaults:\n  min_interval: 5 minutes  # <-\n", "defaults.min_interval", "30s, 5m"),
    ("negative duration", "defaults:\n  min_interval: -5  # <-\n", "defaults.min_interval", "zero or more"),
    ("boolean duration", "defaults:\n  debounce:\n    quiet: true  # <-\n", "defaults.debounce.quiet",
     "not a duration"),
    ("max_wait below quiet", "defaults:\n  debounce:\n    quiet: 5m\n    max_wait: 1m  # <-\n",
     "defaults.debounce.max_wait", "expected max_wait >= quiet"),
    ("quiet above built-in max_wait", "defaults:\n  debounce:\n    quiet: 10m  # <-\n", "defaults.debounce.quiet",
     "built-in default"),
    ("rule quiet above default max_wait", HEAD + RULE + "    then: {action: all, site: 1}\n"
     "    debounce:\n      quiet: 6m  # <-\n", "rules.0.debounce.quiet", "expected quiet <= max_wait"),
    ("unknown source type", "sources:\n  gh:\n    type: gitlub  # <-\n", "sources.gh.type",
     "unknown source type 'gitlub'; expected one of: "),
    ("source without type", "sources:\n  gh:  # <-\n    secret: x\n", "sources.gh.type", "missing"),
    ("source not a mapping", "sources:\n  gh: github  # <-\n", "sources.gh", "expected a mapping"),
    ("unusable source name", "sources:\n  my hook:  # <-\n    type: none\n", "sources.my hook", "/hooks/<name>"),
    ("unknown key in source", "sources:\n  gh:\n    type: none\n    secret: x  # <-\n", "sources.gh.secret",
     "unknown key; expected one of:"),
    ("bad hmac algorithm", "sources:\n  e:\n    type: hmac\n    secret: x\n    header: X-Sig\n"
     "    algorithm: sha3  # <-\n", "sources.e.algorithm", "sha256"),
    ("bad source event expression", "sources:\n  e:\n    type: none\n    event: payload.[  # <-\n",
     "sources.e.event", "JMESPath"),
    ("sources not a mapping", "sources: [a]  # <-\n", "sources", "expected a mapping"),
    ("rules not a list", HEAD + "rules: {name: r}  # <-\n", "rules", "expected a list of rules"),
    ("rule not a mapping", HEAD + "rules:\n  - just text  # <-\n", "rules.0", "expected keys and values"),
    ("unknown key in rule", HEAD + RULE + "    then: {action: all, site: 1}\n    if: {a: 1}  # <-\n",
     "rules.0.if", "expected one of: debounce, event, name, source, then, when"),
    ("rule without name", HEAD + "rules:\n  - source: gh  # <-\n    then: {action: all, site: 1}\n",
     "rules.0.name", "missing"),
    ("empty rule name", HEAD + "rules:\n  - name: ''  # <-\n    source: gh\n    then: {action: all, site: 1}\n",
     "rules.0.name", "expected a unique name"),
    ("duplicate rule name", HEAD + RULE + "    then: {action: all, site: 1}\n  - name: r  # <-\n"
     "    source: gh\n    then: {action: all, site: 2}\n", "rules.1.name", "duplicate rule name 'r'"),
    ("undefined source", HEAD + "rules:\n  - name: r\n    source: github  # <-\n    then: {action: all, site: 1}\n",
     "rules.0.source", "expected one of: gh"),
    ("rule without then", HEAD + "rules:\n  - name: r  # <-\n    source: gh\n", "rules.0.then", "missing"),
    ("empty then", HEAD + RULE + "    then: []  # <-\n", "rules.0.then", "is empty"),
    ("null then", HEAD + RULE + "    then:  # <-\n", "rules.0.then", "expected {action"),
    ("bad action", HEAD + RULE + "    then:\n      - {action: import, site: 1}\n      - {action: run, site: 1}  # <-\n",
     "rules.0.then.1.action", "expected one of: import, export, channel, export-all, all"),
    ("missing action", HEAD + RULE + "    then:  # <-\n      site: 1\n", "rules.0.then.action", "missing"),
    ("unknown key in intent", HEAD + RULE + "    then:\n      action: all\n      site: 1\n      target: 2  # <-\n",
     "rules.0.then.target", "expected one of: action, id, site"),
    ("site zero", HEAD + RULE + "    then:\n      action: all\n      site: 0  # <-\n", "rules.0.then.site",
     "positive integer"),
    ("site negative", HEAD + RULE + "    then: {action: all, site: -3}  # <-\n", "rules.0.then.site", "positive"),
    ("site text", HEAD + RULE + "    then: {action: all, site: shop}  # <-\n", "rules.0.then.site",
     "'shop' is not a positive integer"),
    ("site boolean", HEAD + RULE + "    then: {action: all, site: true}  # <-\n", "rules.0.then.site", "positive"),
    ("site float", HEAD + RULE + "    then: {action: all, site: 1.5}  # <-\n", "rules.0.then.site", "positive"),
    ("site missing", HEAD + RULE + "    then: {action: all}  # <-\n", "rules.0.then.site", "missing"),
    ("export without id", HEAD + RULE + "    then: {action: export, site: 1}  # <-\n", "rules.0.then.id",
     "action export needs the export id"),
    ("channel without id", HEAD + RULE + "    then:\n      - {action: channel, site: 1}  # <-\n",
     "rules.0.then.0.id", "needs the channel id"),
    ("id with import", HEAD + RULE + "    then:\n      action: import\n      site: 1\n      id: 5  # <-\n",
     "rules.0.then.id", "not allowed for action import"),
    ("id with all", HEAD + RULE + "    then: {action: all, site: 1, id: 5}  # <-\n", "rules.0.then.id",
     "not allowed"),
    ("id not positive", HEAD + RULE + "    then:\n      action: export\n      site: 1\n      id: 0  # <-\n",
     "rules.0.then.id", "positive integer"),
    ("template bad expression", HEAD + RULE + "    then:\n      action: all\n      site: '{{ payload.[ }}'  # <-\n",
     "rules.0.then.site", "not a valid JMESPath expression"),
    ("template empty placeholder", HEAD + RULE + "    then:\n      action: all\n      site: '{{ }}'  # <-\n",
     "rules.0.then.site", "empty placeholder"),
    ("template unbalanced", HEAD + RULE + "    then:\n      action: all\n      site: '{{ payload.id'  # <-\n",
     "rules.0.then.site", "unbalanced braces"),
    ("bad when expression", HEAD + RULE + "    when:\n      payload.ref..x: a  # <-\n    then: {action: all, site: 1}\n",
     "rules.0.when.payload.ref..x", "not a valid JMESPath expression"),
    ("dash in when expression", HEAD + RULE + "    when:\n      headers.x-event: a  # <-\n"
     "    then: {action: all, site: 1}\n", "rules.0.when.headers.x-event", 'headers."x-github-event"'),
    ("unknown operator", HEAD + RULE + "    when:\n      payload.ref:\n        startswith: refs  # <-\n"
     "    then: {action: all, site: 1}\n", "rules.0.when.payload.ref.startswith",
     "expected one of: equals, in, regex, exists"),
    ("no operator", HEAD + RULE + "    when:\n      payload.ref: {}  # <-\n    then: {action: all, site: 1}\n",
     "rules.0.when.payload.ref", "no operator given"),
    ("bad regex", HEAD + RULE + "    when:\n      payload.ref: {regex: 'refs/(heads'}  # <-\n"
     "    then: {action: all, site: 1}\n", "rules.0.when.payload.ref.regex", "invalid regular expression"),
    ("regex not text", HEAD + RULE + "    when:\n      payload.ref:\n        regex: 5  # <-\n"
     "    then: {action: all, site: 1}\n", "rules.0.when.payload.ref.regex", "regular expression as text"),
    ("in not a list", HEAD + RULE + "    when:\n      payload.ref:\n        in: main  # <-\n"
     "    then: {action: all, site: 1}\n", "rules.0.when.payload.ref.in", "non-empty list"),
    ("in empty", HEAD + RULE + "    when:\n      payload.ref: {in: []}  # <-\n    then: {action: all, site: 1}\n",
     "rules.0.when.payload.ref.in", "non-empty list"),
    ("in with a mapping", HEAD + RULE + "    when:\n      payload.ref: {in: [{a: 1}]}  # <-\n"
     "    then: {action: all, site: 1}\n", "rules.0.when.payload.ref.in", "single values"),
    ("exists not boolean", HEAD + RULE + "    when:\n      payload.ref: {exists: 'yes'}  # <-\n"
     "    then: {action: all, site: 1}\n", "rules.0.when.payload.ref.exists", "expected true or false"),
    ("equals a mapping", HEAD + RULE + "    when:\n      payload.ref: {equals: {a: 1}}  # <-\n"
     "    then: {action: all, site: 1}\n", "rules.0.when.payload.ref.equals", "expected a single value"),
    ("condition is a list", HEAD + RULE + "    when:\n      payload.ref: [a, b]  # <-\n"
     "    then: {action: all, site: 1}\n", "rules.0.when.payload.ref", "{in: [...]}"),
    ("empty when", HEAD + RULE + "    when:  # <-\n    then: {action: all, site: 1}\n", "rules.0.when",
     "remove when:"),
    ("empty event list", HEAD + RULE + "    event: []  # <-\n    then: {action: all, site: 1}\n",
     "rules.0.event", "expected an event type"),
    ("event list with a number", HEAD + RULE + "    event: [push, 5]  # <-\n    then: {action: all, site: 1}\n",
     "rules.0.event", "non-empty text"),
    ("malformed variable", "sources:\n  gh:\n    type: github\n    secret: ${GITHUB SECRET}  # <-\n",
     "sources.gh.secret", "expected ${NAME}"),
    ("yaml tag", HEAD + RULE + "    then: {action: all, site: !env SITE}  # <-\n", "rules.0.then.site",
     "tags"),
]


@pytest.mark.parametrize("text, path, fragment", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_each_mistake_names_file_line_and_key(tmp_path, text, path, fragment):
    errors = errors_of(write(tmp_path, text))
    expected_prefix = f"{tmp_path / 'rules.yaml'}:{marked_line(text)}: {path}: "
    hits = [error for error in errors if error.startswith(expected_prefix)]
    assert hits, f"no error starting with {expected_prefix!r} in {errors}"
    assert any(fragment in hit for hit in hits), hits


@pytest.mark.parametrize("text, path, fragment", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_messages_say_what_is_expected(tmp_path, text, path, fragment):
    for error in errors_of(write(tmp_path, text)):
        assert "expected" in error or "missing" in error or "not allowed" in error, error


def test_three_mistakes_are_reported_together(tmp_path):
    path = write(tmp_path, HEAD + textwrap.dedent("""\
        rules:
          - name: a
            source: nowhere
            then: {action: all, site: 1}
          - name: b
            source: gh
            then: {action: export, site: 1}
          - name: c
            source: gh
            then: {action: all, site: 1}
            debounce: {quiet: 5 seconds}
        """))
    errors = errors_of(path)
    assert len(errors) == 3, errors
    assert [error.split(": ")[0] for error in errors] == [f"{path}:6", f"{path}:10", f"{path}:14"]
    assert "rules.0.source" in errors[0] and "rules.1.then.id" in errors[1]
    assert "rules.2.debounce.quiet" in errors[2]


def test_str_of_the_error_joins_all_lines_and_carries_exit_code(tmp_path):
    path = write(tmp_path, "defaults: {min_interval: x}\nrulez: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value) == "\n".join(caught.value.errors)
    assert len(caught.value.errors) == 2
    assert caught.value.exit_code == 2


def test_every_duplicate_key_is_reported(tmp_path):
    text = HEAD + textwrap.dedent("""\
        rules:
          - name: a
            source: gh
            name: b
            then: {action: all, site: 1}
        defaults: {}
        defaults: {}
        """)
    errors = errors_of(write(tmp_path, text))
    assert len(errors) == 2, errors
    assert errors[0].startswith(f"{tmp_path / 'rules.yaml'}:7: rules.0.name: duplicate key (first defined on line 5)")
    assert errors[1].startswith(f"{tmp_path / 'rules.yaml'}:10: defaults: duplicate key (first defined on line 9)")


@pytest.mark.parametrize("text, line, fragment", [
    ("rules:\n  - name: [a\n    source: b\n", 3, "YAML syntax error"),
    ("a: 1\n b: 2\n", 2, "YAML syntax error"),
    ("a: 1\n---\nb: 2\n", 2, "YAML syntax error"),
    ("sources: {gh: {type: none}}\n\trules: []\n", 2, "YAML syntax error"),
    ("sources: {}\nrules: []\ndefaults:\n  min_interval: !!int abc\n", 1, "cannot be read"),
], ids=["unclosed flow list", "bad indentation", "two documents", "tab", "bad typed value"])
def test_yaml_syntax_errors_have_a_line(tmp_path, text, line, fragment):
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    errors = errors_of(path)
    assert len(errors) == 1
    assert errors[0].startswith(f"{path}:{line}: ") and fragment in errors[0], errors


@pytest.mark.parametrize("text, fragment", [
    ("", "the file is empty"),
    ("# only a comment\n", "the file is empty"),
    ("- a\n- b\n", "the top level is a list"),
    ("just text\n", "the top level is a single value"),
])
def test_top_level_must_be_a_mapping(tmp_path, text, fragment):
    errors = errors_of(write(tmp_path, text))
    assert errors == [f"{tmp_path / 'rules.yaml'}:1: (top level): {fragment}; "
                      "expected a mapping with the keys defaults, sources and rules"]


def test_unreadable_file(tmp_path):
    errors = errors_of(tmp_path / "absent.yaml")
    assert errors[0].startswith(f"{tmp_path / 'absent.yaml'}:1: ") and "cannot read" in errors[0]


def test_not_utf8(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_bytes(b"sources: {}\nrules: []\n# caf\xe9\n")
    assert "UTF-8" in errors_of(path)[0] and ":3:" in errors_of(path)[0]


def test_missing_variable_names_it_and_its_line(tmp_path):
    text = "sources:\n  gh:\n    type: github\n    secret: ${GH_SECRET}  # <-\n"
    errors = errors_of(write(tmp_path, text), {"OTHER": "x"})
    assert errors == [f"{tmp_path / 'rules.yaml'}:4: sources.gh.secret: environment variable GH_SECRET is not set; "
                      "expected it to be set (referenced as ${GH_SECRET})"]


def test_empty_secret_is_an_error_naming_its_variable(tmp_path):
    text = "sources:\n  gh:\n    type: github\n    secret: ${GH_SECRET}\n"
    errors = errors_of(write(tmp_path, text), {"GH_SECRET": ""})
    assert len(errors) == 1
    assert errors[0].startswith(f"{tmp_path / 'rules.yaml'}:4: sources.gh.secret: is empty")
    assert "${GH_SECRET}" in errors[0]


def test_errors_never_contain_secret_values(tmp_path):
    """Values from the environment are masked even where a message would echo the bad value."""
    secret = "hunter2-very-secret"
    text = """\
        sources:
          leaky:
            type: hmac
            secret: ${SECRET}
            header: X-Sig
            event: "${SECRET}["
        rules:
          - name: r
            source: leaky
            then: {action: all, site: "${SECRET}"}
        """
    errors = errors_of(write(tmp_path, text), {"SECRET": secret})
    assert any("sources.leaky.event" in error for error in errors), errors
    assert any("rules.0.then.site" in error for error in errors), errors
    for error in errors:
        assert "hunter2" not in error, error
        assert "${SECRET}" in error


def test_literal_dollar_brace_is_written_doubled(tmp_path):
    text = HEAD + RULE + "    when:\n      payload.text: 'costs $${PRICE}'\n    then: {action: all, site: 1}\n"
    config = load_config(write(tmp_path, text), {})
    match = config.match({"source": "gh", "payload": {"text": "costs ${PRICE}"}})
    assert match.matched_rules == ["r"]


@pytest.mark.parametrize("text, line, needle", [
    ("rules:\n  - name: r\n    source: g  # <-\n    then: {action: import, site: 1}\n", 3, "not a defined source"),
    ("sources:\n  g:\n    type: github\n    secret: '   '  # <-\n", 4, "only whitespace"),
    ("sources:\n  g:\n    type: github\n    secret: 123  # <-\n", 4, "expected a secret as a string"),
    ("sources:\n  g:\n    type: none\n    allow_ips: [10.0.0.0/33, foo]  # <-\n", 4, "'10.0.0.0/33', 'foo' are not"),
    ("sources:\n  g:\n    type: none\n    max_body: 0  # <-\n", 4, "must be from 1 to"),
    ("sources: {g: {type: none}}\nrules:\n  - name: r\n    source: g\n"
     "    then: {action: import, site: 99999999999999999999999}  # <-\n", 5, "below 10^18"),
])
def test_mistakes_found_by_the_new_user_test(tmp_path, text, line, needle):
    errors = errors_of(write(tmp_path, text))
    assert any(f"rules.yaml:{line}:" in error and needle in error for error in errors), errors
