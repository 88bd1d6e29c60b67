"""Code-host sources without HTTP: the signature helpers on published vectors, and the config checks."""
from __future__ import annotations

import base64
import hashlib
import hmac
import textwrap

import pytest

from bridge.rules import ConfigError, load_config
from bridge.sources.github import prefixed_hmac_valid
from bridge.sources.signatures import standard_webhooks_key, standard_webhooks_valid
from tests.helpers import GITHUB_SECRET, sample

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID, VECTOR_TS = "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330"
VECTOR_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
NOW = 1614265330.0


def valid(signature=VECTOR_SIG, body=b'{"test": 2432232314}', secrets=(WHSEC,), msg_id=VECTOR_ID,
          timestamp=VECTOR_TS, now=NOW, tolerance=300.0):
    return standard_webhooks_valid(list(secrets), msg_id, timestamp, body, signature, now, tolerance)


def test_standard_webhooks_published_vector():
    body, headers = sample("standard-webhooks-testvector.json")
    assert body == b'{"test": 2432232314}'
    assert standard_webhooks_valid([WHSEC], headers["webhook-id"], headers["webhook-timestamp"], body,
                                   headers["webhook-signature"], NOW, 300.0)


def test_standard_webhooks_two_signatures_in_one_header():
    """The sample's first signature comes from a rotated-out key; the second from WHSEC."""
    body, headers = sample("standard-webhooks-contact.created.json")
    when = float(headers["webhook-timestamp"])
    args = (headers["webhook-id"], headers["webhook-timestamp"], body, headers["webhook-signature"], when, 300.0)
    assert standard_webhooks_valid([WHSEC], *args)
    assert not standard_webhooks_valid([WHSEC], *args[:3], headers["webhook-signature"].split(" ")[0], when, 300.0)


@pytest.mark.parametrize("changes", [
    {"body": b'{"test": 2432232315}'},
    {"msg_id": VECTOR_ID + "x"},
    {"msg_id": None},
    {"msg_id": ""},
    {"timestamp": "1614265331"},
    {"timestamp": None},
    {"timestamp": "1614265330.0"},
    {"timestamp": " 1614265330"},
    {"timestamp": "１６１４２６５３３０"},     # full-width digits int() would accept
    {"signature": None},
    {"signature": ""},
    {"signature": "v2," + VECTOR_SIG[3:]},
    {"signature": VECTOR_SIG[3:]},
    {"signature": "v1,ü"},
    {"signature": "v1,not base64!"},
    {"secrets": ("whsec_" + base64.b64encode(b"another key").decode(),)},
    {"secrets": ()},
    {"now": NOW + 301},
    {"now": NOW - 301},
    {"now": float("nan")},
], ids=lambda changes: ",".join(f"{key}={value!r}" for key, value in changes.items()))
def test_standard_webhooks_refusals(changes):
    assert not valid(**changes)


def test_standard_webhooks_tolerance_edges_and_key_without_prefix():
    assert valid(now=NOW + 300) and valid(now=NOW - 300)
    assert valid(secrets=(WHSEC[len("whsec_"):],))
    assert valid(secrets=("whsec_" + base64.b64encode(b"old").decode(), WHSEC))
    assert valid(signature="v1a,AAAA " + VECTOR_SIG + "  v1,AAAA")


def test_standard_webhooks_key():
    assert standard_webhooks_key(WHSEC) == base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert standard_webhooks_key("whsec_not base64") is None
    assert standard_webhooks_key("whsec_") is None


def test_github_published_vector_and_prefix_rules():
    body, headers = sample("github-testvector.txt")
    assert prefixed_hmac_valid([GITHUB_SECRET], body, headers["X-Hub-Signature-256"], ("sha256",))
    assert not prefixed_hmac_valid([GITHUB_SECRET], body, headers["X-Hub-Signature-256"], ("sha1",))
    sha1 = "sha1=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha1).hexdigest()
    assert prefixed_hmac_valid([GITHUB_SECRET], body, sha1, ("sha1",))
    assert not prefixed_hmac_valid([GITHUB_SECRET], body, sha1, ("sha256",))
    assert not prefixed_hmac_valid([GITHUB_SECRET], body, "md5=" + hashlib.md5(body).hexdigest(), ("md5",))
    assert prefixed_hmac_valid(["old", GITHUB_SECRET], body, headers["X-Hub-Signature-256"], ("sha256",))


# ---- configuration -----------------------------------------------------------------------------

def errors_of(tmp_path, sources_yaml: str, environ=None) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text("sources:\n" + textwrap.indent(textwrap.dedent(sources_yaml), "  "))
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ or {})
    return str(caught.value)


@pytest.mark.parametrize("sources_yaml, expected", [
    ("gl: {type: gitlab}", "expected secret"),
    ("gl: {type: gitlab, secret: null}", "secret"),
    ("gl: {type: gitlab, signing_secret: ''}", "signing_secret"),
    ("gl: {type: gitlab, signing_secret: 'whsec_not base64!'}", "not a signing token"),
    ("gl: {type: gitlab, secret: t, tolerance: soon}", "tolerance"),
    ("gh: {type: github, secret: s, allow_sha1: maybe}", "allow_sha1"),
    ("bb: {type: bitbucket}", "secret"),
    ("bb: {type: bitbucket, secret: s, algorithm: sha1}", "unknown key"),
    ("gt: {type: gitea, secret: ''}", "secret"),
])
def test_config_errors(tmp_path, sources_yaml, expected):
    assert expected in errors_of(tmp_path, sources_yaml)


def test_bad_signing_secret_is_not_echoed(tmp_path):
    secret = "whsec_this-is-not*base64-but-secret"
    message = errors_of(tmp_path, "gl: {type: gitlab, signing_secret: \"${SIGNING}\"}", {"SIGNING": secret})
    assert "not a signing token" in message and secret not in message


def test_valid_configs_load(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(f"""\
        sources:
          a: {{type: gitlab, secret: t}}
          b: {{type: gitlab, signing_secret: {WHSEC}, tolerance: 10m}}
          c: {{type: gitlab, secret: [t1, t2], signing_secret: [{WHSEC}]}}
          d: {{type: gitea, secret: s}}
          e: {{type: bitbucket, secret: s, allow_sha1: true}}
          f: {{type: github, secret: s, allow_sha1: true}}
        """))
    sources = load_config(path, {}).sources
    assert sources["b"].options["tolerance"] == 600.0
    assert sources["c"].secrets == ["t1", "t2"]
    assert sources["e"].options["allow_sha1"] is True and sources["f"].options["allow_sha1"] is True
    assert sources["d"].options.get("allow_sha1") is None
