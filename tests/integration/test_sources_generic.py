"""The generic types over real HTTP: `hmac` with a signed-content template, several signatures and a
timestamp tolerance; `token` in a header, a query parameter or as a bearer token; `basic`. The Odoo
sample (no signing of its own) goes through a `token` source with the token in the URL.

Negative twins get 401, never 500, and store nothing.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import sqlite3
import textwrap

import pytest

from bridge.rules import ConfigError, load_config
from tests.helpers import sample
from tests.sources_harness import assert_no_secret_logged, serve_bridge

NOW = 1_717_000_000
ERP_SECRET = "erp-hmac-secret-7c1d"
OLD_SECRET = "erp-hmac-secret-retired"
TOKEN = "odoo-token-4f9a1e"
BASIC_USER = "feeder"
BASIC_PASSWORD = "basic-password-93kd"
SECRETS = (ERP_SECRET, TOKEN, BASIC_PASSWORD)

RULES = """\
sources:
  erp:
    type: hmac
    secret: ["${OLD_SECRET}", "${ERP_SECRET}"]
    header: X-Signature
    prefix: "sha256="
    separator: ","
    event: payload.event
  erp_ts:
    type: hmac
    secret: "${ERP_SECRET}"
    header: X-Signature
    signed: "{timestamp}.{body}"
    timestamp_header: X-Timestamp
    tolerance: 2m
    event: payload.event
  erp_full:
    type: hmac
    secret: "${ERP_SECRET}"
    header: X-Webhook-Signature
    encoding: base64
    prefix: "v1,"
    separator: " "
    signed: "{id}.{timestamp}.{body}"
    id_header: X-Webhook-Id
    timestamp_header: X-Webhook-Timestamp
    event: payload.event
  erp_full_yaml_id:
    type: hmac
    secret: "${ERP_SECRET}"
    header: X-Webhook-Signature
    encoding: base64
    prefix: "v1,"
    separator: " "
    signed: "{id}.{timestamp}.{body}"
    id_header: X-Webhook-Id
    timestamp_header: X-Webhook-Timestamp
    delivery_id: payload.batch
  odoo: {type: token, secret: "${ODOO_TOKEN}", query: key}
  token_header: {type: token, secret: ["${OLD_SECRET}", "${ODOO_TOKEN}"], header: X-Feed-Secret}
  token_bearer: {type: token, secret: "${ODOO_TOKEN}", bearer: true}
  basic: {type: basic, user: "${BASIC_USER}", password: ["${OLD_SECRET}", "${BASIC_PASSWORD}"]}
rules:
  - name: odoo batch done
    source: odoo
    when: {payload._model: stock.picking.batch, payload.state: done}
    then: {action: import, site: 70}
""" + "".join(f"""\
  - name: {name} batch
    source: {name}
    then: {{action: import, site: 71}}
""" for name in ("erp", "erp_ts", "erp_full", "erp_full_yaml_id", "token_header", "token_bearer", "basic"))

BODY = json.dumps({"event": "batch.completed", "batch": "B-2024-0529-01", "site_id": 123}).encode()


@pytest.fixture
def bridge(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    env = {"ERP_SECRET": ERP_SECRET, "OLD_SECRET": OLD_SECRET, "ODOO_TOKEN": TOKEN, "BASIC_USER": BASIC_USER,
           "BASIC_PASSWORD": BASIC_PASSWORD}
    served = serve_bridge(tmp_path, RULES, env, now=NOW)
    yield served
    served.stop()
    assert_no_secret_logged(caplog, SECRETS)


def mac(message: bytes, secret: str = ERP_SECRET) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def one_byte_changed(body: bytes) -> bytes:
    middle = len(body) // 2
    return body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1:]


def erp(body=BODY, secret=ERP_SECRET, **_):
    return {"Content-Type": "application/json", "X-Signature": f"sha256={'ab' * 32},sha256={mac(body, secret).hex()}"}


def erp_ts(body=BODY, secret=ERP_SECRET, now=NOW):
    return {"Content-Type": "application/json", "X-Timestamp": str(now),
            "X-Signature": mac(f"{now}.".encode() + body, secret).hex()}


def erp_full(body=BODY, secret=ERP_SECRET, now=NOW, msg_id="msg_0001"):
    signature = base64.b64encode(mac(f"{msg_id}.{now}.".encode() + body, secret)).decode()
    stale = base64.b64encode(mac(f"{msg_id}.{now}.".encode() + body, OLD_SECRET)).decode()
    return {"Content-Type": "application/json", "X-Webhook-Id": msg_id, "X-Webhook-Timestamp": str(now),
            "X-Webhook-Signature": f"v1,{stale} v1,{signature}"}


def stored(bridge, column: str) -> str:
    with sqlite3.connect(bridge.db) as db:
        return " ".join(str(row[0]) for row in db.execute(f"select {column} from events"))


# ---- hmac --------------------------------------------------------------------------------------

@pytest.mark.parametrize("source,sign", [("erp", erp), ("erp_ts", erp_ts), ("erp_full", erp_full)])
def test_hmac_variants_accept_their_signed_delivery(bridge, source, sign):
    answer = bridge.post(source, BODY, sign())
    assert answer.status_code == 202, answer.text
    assert answer.json()["event_type"] == "batch.completed"


def test_hmac_id_header_is_the_default_delivery_id_and_yaml_wins(bridge):
    first = bridge.post("erp_full", BODY, erp_full())
    assert bridge.event(first.json()["event_id"])["delivery_id"] == "msg_0001"
    second = bridge.post("erp_full_yaml_id", BODY, erp_full())
    assert bridge.event(second.json()["event_id"])["delivery_id"] == "B-2024-0529-01"


def test_hmac_redelivery_with_the_same_id_is_stored_once(bridge):
    bridge.post("erp_full", BODY, erp_full())
    again = bridge.post("erp_full", BODY, erp_full(now=NOW + 60))
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert bridge.count() == 1


@pytest.mark.parametrize("age,status", [(119, 202), (-119, 202), (121, 401), (-121, 401)])
def test_hmac_tolerance(bridge, age, status):
    assert bridge.post("erp_ts", BODY, erp_ts(now=NOW - age)).status_code == status


def hmac_mutations():
    for source, sign, signature, timestamp in [("erp", erp, "X-Signature", None),
                                               ("erp_ts", erp_ts, "X-Signature", "X-Timestamp"),
                                               ("erp_full", erp_full, "X-Webhook-Signature", "X-Webhook-Timestamp")]:
        yield source, "one byte changed", one_byte_changed(BODY), sign()
        yield source, "wrong secret", BODY, sign(secret="wrong-secret")
        yield source, "missing signature", BODY, {k: v for k, v in sign().items() if k != signature}
        yield source, "non-ASCII signature", BODY, {**sign(), signature: "sha256=é".encode("utf-8")}
        if source != "erp_ts":
            bare = sign()[signature].rsplit("sha256=" if source == "erp" else "v1,", 1)[-1]
            yield source, "prefix missing", BODY, {**sign(), signature: bare}
        if timestamp:
            yield source, "stale timestamp", BODY, sign(now=NOW - 3600)
            yield source, "missing timestamp", BODY, {k: v for k, v in sign().items() if k != timestamp}
            yield source, "non-ASCII timestamp", BODY, {**sign(), timestamp: "１７".encode("utf-8")}
            yield source, "timestamp not a plain number", BODY, {**sign(), timestamp: "1.717e9"}
    yield "erp_full", "missing id", BODY, {k: v for k, v in erp_full().items() if k != "X-Webhook-Id"}
    yield "erp_full", "id swapped", BODY, {**erp_full(), "X-Webhook-Id": "msg_9999"}
    yield "erp", "too many signatures", BODY, {"X-Signature": ",".join(["sha256=" + "00" * 32] * 40
                                                                       + ["sha256=" + mac(BODY).hex()])}


HMAC_CASES = list(hmac_mutations())


@pytest.mark.parametrize("source,name,body,headers", HMAC_CASES, ids=[f"{c[0]}-{c[1]}" for c in HMAC_CASES])
def test_hmac_negative_twins(bridge, source, name, body, headers):
    answer = bridge.post(source, body, headers)
    assert answer.status_code == 401, answer.text
    assert bridge.count() == 0


# ---- token and basic ------------------------------------------------------------------------------

def test_odoo_sample_through_a_token_in_the_query(bridge):
    body, headers = sample("odoo-webhook-stock.picking.batch-done.json")
    answer = bridge.post("odoo", body, headers, query=f"?key={TOKEN}")
    assert answer.status_code == 202, answer.text
    assert answer.json()["matched"] == ["odoo batch done"]
    assert TOKEN not in stored(bridge, "query") and TOKEN not in stored(bridge, "headers")


@pytest.mark.parametrize("query", ["", "?key=", "?key=wrong", f"?key={TOKEN}x", f"?token={TOKEN}",
                                   f"?key={TOKEN[:-1]}%C3%A9"])
def test_odoo_without_the_right_token_is_401(bridge, query):
    body, headers = sample("odoo-webhook-stock.picking.batch-done.json")
    assert bridge.post("odoo", body, headers, query=query).status_code == 401
    assert bridge.count() == 0


@pytest.mark.parametrize("source,headers", [
    ("token_header", {"X-Feed-Secret": TOKEN}),
    ("token_bearer", {"Authorization": f"Bearer {TOKEN}"}),
    ("token_bearer", {"Authorization": f"bearer {TOKEN}"}),
    ("basic", {"Authorization": "Basic " + base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()}),
])
def test_token_bearer_and_basic_accepted_and_not_stored(bridge, source, headers):
    answer = bridge.post(source, BODY, {"Content-Type": "application/json", **headers})
    assert answer.status_code == 202, answer.text
    assert TOKEN not in stored(bridge, "headers") and BASIC_PASSWORD not in stored(bridge, "headers")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("source,headers", [
    ("token_header", {}),
    ("token_header", {"X-Feed-Secret": "wrong"}),
    ("token_header", {"X-Feed-Secret": TOKEN + " "}),
    ("token_header", {"X-Feed-Secret": "é".encode("utf-8")}),
    ("token_header", {"Authorization": f"Bearer {TOKEN}"}),
    ("token_bearer", {}),
    ("token_bearer", {"Authorization": TOKEN}),
    ("token_bearer", {"Authorization": f"Basic {TOKEN}"}),
    ("token_bearer", {"Authorization": "Bearer "}),
    ("token_bearer", {"Authorization": "Bearer wrong"}),
    ("token_bearer", {"Authorization": f"Bearer {TOKEN}é".encode("utf-8")}),
    ("token_bearer", {"X-Feed-Secret": TOKEN}),
    ("basic", {}),
    ("basic", {"Authorization": basic(BASIC_USER, "wrong")}),
    ("basic", {"Authorization": basic("someone", BASIC_PASSWORD)}),
    ("basic", {"Authorization": basic(BASIC_USER, "")}),
    ("basic", {"Authorization": basic(BASIC_USER + ":", BASIC_PASSWORD)}),
    ("basic", {"Authorization": "Basic " + base64.b64encode(BASIC_USER.encode()).decode()}),
    ("basic", {"Authorization": "Basic not*base64"}),
    ("basic", {"Authorization": f"Bearer {BASIC_PASSWORD}"}),
    ("basic", {"Authorization": "Basic ".encode() + "é".encode("utf-8")}),
])
def test_token_bearer_and_basic_negative_twins(bridge, source, headers):
    answer = bridge.post(source, BODY, {"Content-Type": "application/json", **headers})
    assert answer.status_code == 401, answer.text
    assert bridge.count() == 0


def test_rotation_lists_accept_the_second_secret(bridge):
    assert bridge.post("token_header", BODY, {"X-Feed-Secret": OLD_SECRET}).status_code == 202
    assert bridge.post("basic", BODY, {"Authorization": basic(BASIC_USER, OLD_SECRET)}).status_code == 202
    assert bridge.post("erp", BODY, erp(secret=OLD_SECRET)).status_code == 202


# ---- configuration errors -------------------------------------------------------------------------

BAD_SOURCES = [
    ("{type: hmac, secret: s, header: X-S, signed: '{timestamp}.{body}'}", "timestamp_header"),
    ("{type: hmac, secret: s, header: X-S, signed: '{id}.{body}'}", "id_header"),
    ("{type: hmac, secret: s, header: X-S, signed: '{ts}.{body}', timestamp_header: X-T}", "unknown placeholder"),
    ("{type: hmac, secret: s, header: X-S, signed: '{timestamp}', timestamp_header: X-T}", "must include {body}"),
    ("{type: hmac, secret: s, header: X-S, signed: '{body', timestamp_header: X-T}", "unbalanced"),
    ("{type: hmac, secret: s, header: X-S, timestamp_header: X-T}", "does not include {timestamp}"),
    ("{type: hmac, secret: s, header: X-S, tolerance: 5m}", "only applies to a signed timestamp"),
    ("{type: hmac, secret: s, header: X-S, separator: ''}", "separator"),
    ("{type: token, secret: s}", "exactly one"),
    ("{type: token, secret: s, header: X-T, bearer: true}", "exactly one"),
    ("{type: token, secret: s, bearer: false}", "exactly one"),
    ("{type: basic, password: p}", "user"),
    ("{type: basic, user: u}", "password"),
    ("{type: basic, user: '', password: p}", "is empty"),
    ("{type: basic, user: 'a:b', password: p}", "':'"),
    ("{type: basic, user: u, password: ''}", "is empty"),
    ("{type: stripe, secret: s, tolerance: soon}", "duration"),
    ("{type: standard-webhooks, secret: 'whsec_not base64!'}", "Standard Webhooks secret"),
    ("{type: slack}", "secret"),
]


@pytest.mark.parametrize("options,expected", BAD_SOURCES)
def test_source_config_errors_name_the_problem(tmp_path, options, expected):
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(f"""\
        sources:
          s: {options}
        """))
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert expected in "\n".join(caught.value.errors)


def test_unset_secret_variable_is_a_config_error(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text('sources:\n  s: {type: basic, user: u, password: "${UNSET_PASSWORD}"}\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert "UNSET_PASSWORD" in "\n".join(caught.value.errors)


def test_config_error_never_shows_a_secret(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text('sources:\n  s: {type: standard-webhooks, secret: "${SW}"}\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, {"SW": "whsec_very-secret-but-not-base64!"})
    assert "very-secret" not in "\n".join(caught.value.errors)
