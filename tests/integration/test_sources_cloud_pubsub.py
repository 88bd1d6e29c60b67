"""Google Cloud Pub/Sub push over real HTTP: the shared query token, and the OIDC bearer token
Pub/Sub sends (RS256 against Google's keys, which the fake outbound serves from Google's URL).

The push body is written here in the shape Google documents; tokens are minted with a throwaway
key. The clock is pinned, and token times are set relative to it."""
from __future__ import annotations

import base64
import json
import logging

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from bridge.rules import load_config
from bridge.rules.errors import ConfigError
from tests.sources_harness import assert_no_secret_logged, FakeOutbound, serve_bridge

NOW = 1_700_000_000
TOKEN = "pubsub-push-token-7f3a"
AUDIENCE = "https://bridge.example.com/hooks/gcs"
EMAIL = "push-invoker@acme-catalog.iam.gserviceaccount.com"
CERTS_URL = "https://www.googleapis.com/oauth2/v3/certs"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KID = "test-key-1"

RULES = f"""\
sources:
  gcs_token:
    type: pubsub
    secret: ["old-token", "${{PUSH_TOKEN}}"]
  gcs:
    type: pubsub
    audience: {AUDIENCE}
    email: {EMAIL}
  gcs_both:
    type: pubsub
    secret: ${{PUSH_TOKEN}}
    audience: {AUDIENCE}
    email: [someone-else@example.iam.gserviceaccount.com, {EMAIL}]
    attribute: objectGeneration
  open:
    type: pubsub
    verify: none
rules:
""" + "".join(f"""\
  - name: feed uploaded via {name}
    source: {name}
    event: OBJECT_FINALIZE
    when:
      payload.bucket: acme-feeds
      payload.name: {{regex: "incoming/.*\\\\.csv"}}
    then: {{action: import, site: 21}}
""" for name in ("gcs_token", "gcs", "gcs_both", "open"))


def jwks(key=KEY, kid=KID) -> bytes:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return json.dumps({"keys": [{**public, "kid": kid, "alg": "RS256", "use": "sig"}]}).encode()


def oidc(key=KEY, kid=KID, **claims) -> dict[str, str]:
    """The Authorization header Pub/Sub sends, with claims as Google issues them (overridable)."""
    base = {"aud": AUDIENCE, "azp": "113774264463038321964", "email": EMAIL, "email_verified": True,
            "iat": NOW - 10, "exp": NOW + 3590, "iss": "https://accounts.google.com", "sub": "113774264463038321964"}
    token = jwt.encode({**base, **claims}, key, algorithm="RS256", headers={"kid": kid})
    return {"Authorization": f"Bearer {token}"}


def push(data: bytes | None = None, attributes=None, message_id="9876543210123456") -> bytes:
    """A push body as Pub/Sub sends it; a Cloud Storage notification unless told otherwise."""
    if data is None:
        data = json.dumps({"kind": "storage#object", "bucket": "acme-feeds", "name": "incoming/products-2024.csv",
                           "contentType": "text/csv", "size": "52011", "generation": "1699999990123456"}).encode()
    if attributes is None:
        attributes = {"eventType": "OBJECT_FINALIZE", "bucketId": "acme-feeds", "objectId": "incoming/products-2024.csv",
                      "objectGeneration": "1699999990123456", "payloadFormat": "JSON_API_V1",
                      "notificationConfig": "projects/_/buckets/acme-feeds/notificationConfigs/1"}
    message = {"attributes": attributes, "messageId": message_id, "message_id": message_id,
               "publishTime": "2023-11-14T22:13:19.512Z", "publish_time": "2023-11-14T22:13:19.512Z"}
    if data:
        message["data"] = base64.b64encode(data).decode()
    return json.dumps({"message": message, "subscription": "projects/acme-catalog/subscriptions/bridge-push"}).encode()


JSON = {"Content-Type": "application/json"}


@pytest.fixture
def bridge(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    served = serve_bridge(tmp_path, RULES, {"PUSH_TOKEN": TOKEN}, now=NOW, outbound=FakeOutbound({CERTS_URL: jwks()}))
    yield served
    served.stop()
    assert_no_secret_logged(caplog, (TOKEN,))


def test_a_push_with_the_query_token_is_unwrapped(bridge):
    answer = bridge.post("gcs_token", push(), JSON, query=f"?token={TOKEN}")
    assert answer.status_code == 202, answer.text
    data = answer.json()
    assert data["event_type"] == "OBJECT_FINALIZE" and data["matched"] == ["feed uploaded via gcs_token"]
    assert bridge.event(data["event_id"])["delivery_id"] == "9876543210123456"
    assert bridge.outbound.fetched == []


@pytest.mark.parametrize("query", ["", "?token=wrong", f"?token={TOKEN}x", "?token=caf%C3%A9", f"?Token={TOKEN}"])
def test_a_missing_or_wrong_query_token_is_401(bridge, query):
    assert bridge.post("gcs_token", push(), JSON, query=query).status_code == 401
    assert bridge.count() == 0


def test_a_push_with_a_valid_oidc_token_is_accepted(bridge):
    answer = bridge.post("gcs", push(), {**JSON, **oidc()})
    assert answer.status_code == 202, answer.text
    assert answer.json()["matched"] == ["feed uploaded via gcs"]
    bridge.post("gcs", push(message_id="2"), {**JSON, **oidc()})
    assert bridge.outbound.fetched == [CERTS_URL]  # Google's keys are cached


NEGATIVE_TOKENS = {
    "expired": lambda: oidc(iat=NOW - 3700, exp=NOW - 100),
    "issued in the future": lambda: oidc(iat=NOW + 600, exp=NOW + 4200),
    "wrong audience": lambda: oidc(aud="https://other.example.com/push"),
    "wrong email": lambda: oidc(email="attacker@evil-project.iam.gserviceaccount.com"),
    "email not verified": lambda: oidc(email_verified=False),
    "wrong issuer": lambda: oidc(iss="https://evil.example.com"),
    "exp not a number": lambda: oidc(exp="tomorrow"),
    "signed by another key": lambda: oidc(key=OTHER_KEY),
    "unknown key id": lambda: oidc(kid="rotated-away"),
    "HS256": lambda: {"Authorization": "Bearer " + jwt.encode(
        {"aud": AUDIENCE, "email": EMAIL, "email_verified": True, "iat": NOW, "exp": NOW + 60,
         "iss": "https://accounts.google.com"}, "a-guessed-secret-of-at-least-32-bytes", algorithm="HS256", headers={"kid": KID})},
    "not a JWT": lambda: {"Authorization": "Bearer not.a.jwt"},
    "no bearer scheme": lambda: {"Authorization": oidc()["Authorization"].replace("Bearer ", "Basic ")},
    "missing": lambda: {},
    "non-ASCII": lambda: {"Authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.é.x".encode("utf-8")},
}


@pytest.mark.parametrize("headers", NEGATIVE_TOKENS.values(), ids=NEGATIVE_TOKENS.keys())
def test_negative_oidc_tokens_are_401_and_store_nothing(bridge, headers):
    assert bridge.post("gcs", push(), {**JSON, **headers()}).status_code == 401
    assert bridge.count() == 0


def flip(text: str, at: int) -> str:
    return text[:at] + ("B" if text[at] == "A" else "A") + text[at + 1:]


def test_a_tampered_token_is_401(bridge):
    head, claims, signature = oidc()["Authorization"].split(".")
    for token in (f"{head}.{claims}.{flip(signature, 10)}", f"{head}.{flip(claims, 10)}.{signature}"):
        assert bridge.post("gcs", push(), {**JSON, "Authorization": token}).status_code == 401
    assert bridge.count() == 0


def test_an_unknown_key_id_refetches_google_keys_at_most_once_a_minute(bridge):
    for _ in range(3):
        bridge.post("gcs", push(), {**JSON, **oidc(kid="rotated-away")})
    assert bridge.outbound.fetched == [CERTS_URL]
    bridge.outbound.responses[CERTS_URL] = jwks(OTHER_KEY, "new-key")
    bridge.clock.now = NOW + 61
    answer = bridge.post("gcs", push(), {**JSON, **oidc(key=OTHER_KEY, kid="new-key", iat=NOW + 50)})
    assert answer.status_code == 202
    assert bridge.outbound.fetched == [CERTS_URL, CERTS_URL]


def test_with_both_checks_both_must_pass(bridge):
    assert bridge.post("gcs_both", push(), {**JSON, **oidc()}, query=f"?token={TOKEN}").status_code == 200
    assert bridge.post("gcs_both", push(message_id="2"), {**JSON, **oidc()}).status_code == 401
    assert bridge.post("gcs_both", push(message_id="3"), JSON, query=f"?token={TOKEN}").status_code == 401
    assert bridge.count() == 1


def test_the_event_type_attribute_is_configurable(bridge):
    answer = bridge.post("gcs_both", push(), {**JSON, **oidc()}, query=f"?token={TOKEN}")
    assert answer.json()["event_type"] == "1699999990123456"


def test_text_data_and_attribute_only_messages(bridge):
    text = bridge.post("open", push(b"plain text, not JSON", {"eventType": "note"}), JSON)
    assert text.status_code == 200 and text.json()["event_type"] == "note"
    empty = bridge.post("open", push(b"", {"eventType": "ping"}, message_id="5"), JSON)
    assert empty.status_code == 200 and empty.json()["event_type"] == "ping"
    binary = bridge.post("open", push(b"\xff\xfe\x00", {}, message_id="6"), JSON)
    assert binary.status_code == 200 and binary.json()["event_type"] is None
    huge = bridge.post("open", push(b'{"n": ' + b"1" * 5000 + b"}", {}, message_id="7"), JSON)
    assert huge.status_code == 200  # kept as text: Python's json refuses integers over 4300 digits
    assert bridge.count() == 4


@pytest.mark.parametrize("body", [
    b'{"message": {"data": "%%% not base64", "messageId": "1"}}',
    b'{"message": {"data": 12, "messageId": "1"}}',
    b'{"message": "x"}',
    b'{"subscription": "projects/p/subscriptions/s"}',
    b"[1]",
    b"not json",
])
def test_a_verified_but_malformed_push_is_400(bridge, body):
    answer = bridge.post("gcs_token", body, JSON, query=f"?token={TOKEN}")
    assert answer.status_code == 400
    assert bridge.count() == 0


@pytest.mark.parametrize("source, problem", [
    ("{type: pubsub}", "secret"),
    ("{type: pubsub, audience: https://x.example}", "email"),
    ("{type: pubsub, email: a@b.iam.gserviceaccount.com}", "audience"),
    ("{type: pubsub, secret: '', verify: none}", "secret"),
    ("{type: pubsub, secret: s3cret-value, verify: none}", "verify"),
    ("{type: pubsub, verify: sometimes}", "verify"),
])
def test_a_source_without_a_check_is_a_config_error(tmp_path, source, problem):
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"sources:\n  gcs: {source}\n")
    with pytest.raises(ConfigError) as error:
        load_config(rules, {})
    assert problem in str(error.value)
