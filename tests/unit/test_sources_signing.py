"""The signing pieces of the SaaS and generic sources, without HTTP: the published vectors through the
real verify path, and table tests of the parsers every scheme relies on."""
from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from bridge.sources import RawRequest, SOURCE_TYPES, Unverified
from bridge.sources.base import bearer_token
from bridge.sources.generic import HmacScheme, Slot, as_text, basic_pair, parse_signed, render_signed
from bridge.sources.signatures import any_signature_matches as matches_any, fresh_unix_seconds
from bridge.sources.saas import slack_scheme, stripe_signature
from tests.helpers import sample

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TIMESTAMP = "1531420618"
SLACK_BODY = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
              b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
              b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmi"
              b"bIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def build(type_name: str, **options):
    cls = SOURCE_TYPES[type_name]
    return cls("s", cls.schema().load({"type": type_name, **options}))


def slack_request(body=SLACK_BODY, signature=SLACK_SIGNATURE, now=1531420618.0):
    return RawRequest(body=body, headers={"x-slack-signature": signature,
                                          "x-slack-request-timestamp": SLACK_TIMESTAMP},
                      query={}, content_type="application/x-www-form-urlencoded", received_at=now)


def test_slack_documented_signature_reproduces_byte_for_byte():
    scheme = slack_scheme(300.0)
    message = render_signed(scheme.signed, scheme.signed_values(slack_request()))
    assert message == b"v0:1531420618:" + SLACK_BODY
    assert "v0=" + hmac.new(SLACK_SECRET.encode(), message, hashlib.sha256).hexdigest() == SLACK_SIGNATURE
    assert scheme.verify(slack_request(), [SLACK_SECRET])


def test_slack_documented_request_through_the_source():
    source = build("slack", secret=SLACK_SECRET)
    [delivery] = source.receive(slack_request())
    assert delivery.event_type == "/webhook-collect"
    assert delivery.payload["user_name"] == "roadrunner"
    with pytest.raises(Unverified):
        source.receive(slack_request(signature=SLACK_SIGNATURE[:-1] + "4"))
    with pytest.raises(Unverified):
        source.receive(slack_request(now=1531420618.0 + 301))


def test_standard_webhooks_published_vector_through_the_source():
    body, headers = sample("standard-webhooks-testvector.json")
    source = build("standard-webhooks", secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    request = RawRequest(body=body, headers={k.lower(): v for k, v in headers.items()}, query={},
                         content_type="application/json", received_at=1614265330.0)
    [delivery] = source.receive(request)
    assert delivery.delivery_id == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    assert delivery.payload == {"test": 2432232314}


@pytest.mark.parametrize("template,parts", [
    ("{body}", (Slot("body"),)),
    ("{timestamp}.{body}", (Slot("timestamp"), ".", Slot("body"))),
    ("{id}.{timestamp}.{body}", (Slot("id"), ".", Slot("timestamp"), ".", Slot("body"))),
    ("v0:{timestamp}:{body}", ("v0:", Slot("timestamp"), ":", Slot("body"))),
])
def test_parse_signed(template, parts):
    assert parse_signed(template) == parts


@pytest.mark.parametrize("template", ["{ts}.{body}", "{body", "body}", "{{body}}", "{}", "{Body}"])
def test_parse_signed_refuses(template):
    with pytest.raises(ValueError):
        parse_signed(template)


def test_render_signed_keeps_bytes_as_sent():
    values = {"body": b"\xff\x00", "timestamp": b"17", "id": "é".encode("latin-1")}
    assert render_signed(parse_signed("{id}.{timestamp}.{body}"), values) == b"\xe9.17.\xff\x00"


@pytest.mark.parametrize("prefix,separator,header,expected", [
    ("", None, "abc", ["abc"]),
    ("sha256=", None, "sha256=abc", ["abc"]),
    ("sha256=", None, "abc", []),
    ("v1,", " ", "v1,a  v1,b v1a,c", ["a", "b"]),
    ("v1=", ",", "v2=x, v1=a,v1=", ["a"]),
    ("", ",", ",,a,", ["a"]),
])
def test_candidates(prefix, separator, header, expected):
    assert HmacScheme(headers=("h",), prefix=prefix, separator=separator).candidates(header) == expected


@pytest.mark.parametrize("header,expected", [
    ("t=1,v1=a,v1=b,v0=c", ("1", ["a", "b"])),
    (" t=1 , v1=a ", ("1", ["a"])),
    ("v1=a", (None, ["a"])),
    ("t=1,t=2,v1=a", (None, ["a"])),
    ("t=1,v1=", ("1", [])),
    ("", (None, [])),
    (None, (None, [])),
])
def test_stripe_signature(header, expected):
    assert stripe_signature(header) == expected


@pytest.mark.parametrize("text,fresh", [
    ("1000", True), ("1300", True), ("700", True), ("1301", False), ("699", False), (" 1000", False),
    ("1e3", False), ("1000.0", False), ("", False), (None, False), ("１０００", False), ("-1000", False)])
def test_fresh_unix_seconds(text, fresh):
    assert fresh_unix_seconds(text, 1000.0, 300.0) is fresh


def test_matches_any_rotation_and_cap():
    signature = hmac.new(b"new", b"m", hashlib.sha256).hexdigest()
    assert matches_any(["old", "new"], b"m", "sha256", "hex", ["00", signature])
    assert not matches_any(["old"], b"m", "sha256", "hex", [signature])
    assert not matches_any(["new"], b"m", "sha256", "hex", ["zz", "é"])
    assert not matches_any(["new"], b"m", "sha256", "hex", ["00"] * 16 + [signature])


@pytest.mark.parametrize("value,pair", [
    ("Basic " + base64.b64encode(b"u:p:q").decode(), (b"u", b"p:q")),
    ("basic " + base64.b64encode(b"u:").decode(), (b"u", b"")),
    ("Basic " + base64.b64encode(b"nocolon").decode(), None),
    ("Basic !!!", None), ("Bearer abc", None), ("Basic", None), ("", None), (None, None),
])
def test_basic_pair(value, pair):
    assert basic_pair(value) == pair


@pytest.mark.parametrize("value,token", [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Bearer", None),
                                         ("Token abc", None), (None, None)])
def test_bearer_token(value, token):
    assert bearer_token(value) == token


@pytest.mark.parametrize("value,text", [("a", "a"), (12, "12"), (2**64, str(2**64)), ("", None), (True, None),
                                        (1.5, None), ({"a": 1}, None), (None, None)])
def test_as_text(value, text):
    assert as_text(value) == text


def test_sources_show_no_secret_in_repr():
    assert "shh" not in repr(build("basic", user="u", password="shh"))
