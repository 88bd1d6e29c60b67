"""Shopify, Stripe, Standard Webhooks, Slack, CircleCI and Akeneo over real HTTP.

Published vectors (Standard Webhooks from tests/samples, Slack's documented example) are sent
byte for byte with the clock pinned to their timestamps. The other deliveries are fixtures written
for this project in the shape each vendor documents, signed here with test secrets. Every type has
its negative twins: one byte changed, stale timestamp, wrong secret, missing header, non-ASCII
header value; each gets 401, never 500, and stores nothing.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import sqlite3

import pytest

from tests.helpers import sample
from tests.sources_harness import assert_no_secret_logged, serve_bridge

NOW = 1_717_000_000
SHOPIFY_SECRET = "shpss-test-client-secret-1f2e3d"
STRIPE_SECRET = "whsec_test_5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH"
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"          # the samples' secret
STANDARD_OLD = "whsec_b2xkLXJvdGF0ZWQta2V5LTMyLWJ5dGVzLWxvbmchIQ=="
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"                    # Slack's documented example secret
CIRCLECI_SECRET = "circleci-test-signing-secret"
AKENEO_SECRET = "akeneo-test-connection-secret"
OLD_SECRET = "previous-secret-being-rotated-out"
WRONG_SECRET = "not-the-configured-secret"
SECRETS = (SHOPIFY_SECRET, STRIPE_SECRET, STANDARD_SECRET, SLACK_SECRET, CIRCLECI_SECRET, AKENEO_SECRET)

RULES = """\
sources:
  shopify: {type: shopify, secret: "${SHOPIFY_SECRET}"}
  shopify_rotating: {type: shopify, secret: ["${OLD_SECRET}", "${SHOPIFY_SECRET}"]}
  stripe: {type: stripe, secret: "${STRIPE_SECRET}"}
  stripe_rotating: {type: stripe, secret: ["${OLD_SECRET}", "${STRIPE_SECRET}"]}
  stripe_strict: {type: stripe, secret: "${STRIPE_SECRET}", tolerance: 30s}
  stripe_yaml:
    type: stripe
    secret: "${STRIPE_SECRET}"
    event: payload.data.object.object
    delivery_id: payload.data.object.id
  stripe_fallback: {type: stripe, secret: "${STRIPE_SECRET}", event: payload.nothing, delivery_id: payload.nothing}
  standard: {type: standard-webhooks, secret: "${STANDARD_SECRET}"}
  standard_rotating: {type: standard-webhooks, secret: ["${STANDARD_OLD}", "${STANDARD_SECRET}"]}
  slack: {type: slack, secret: "${SLACK_SECRET}"}
  slack_rotating: {type: slack, secret: ["${OLD_SECRET}", "${SLACK_SECRET}"]}
  circleci: {type: circleci, secret: "${CIRCLECI_SECRET}"}
  circleci_rotating: {type: circleci, secret: ["${OLD_SECRET}", "${CIRCLECI_SECRET}"]}
  akeneo: {type: akeneo, secret: "${AKENEO_SECRET}"}
  akeneo_rotating: {type: akeneo, secret: ["${OLD_SECRET}", "${AKENEO_SECRET}"]}
rules:
  - name: shopify order 2^53+1
    source: shopify
    event: orders/create
    when: {payload.id: 9007199254740993}
    then: {action: import, site: "{{ payload.id }}"}
  - name: shopify order 2^53
    source: shopify
    when: {payload.id: 9007199254740992}
    then: {action: import, site: 2}
  - name: stripe checkout
    source: stripe
    event: checkout.session.completed
    then: {action: import, site: "{{ payload.data.object.metadata.site_id }}"}
  - name: stripe by yaml event
    source: stripe_yaml
    event: checkout.session
    then: {action: import, site: 21}
  - name: contact created
    source: standard
    event: contact.created
    then: {action: import, site: 30}
  - name: slack mention
    source: slack
    event: app_mention
    then: {action: import, site: 40}
  - name: slack command
    source: slack
    event: /webhook-collect
    then: {action: export-all, site: 41}
  - name: circleci green
    source: circleci
    event: workflow-completed
    when: {payload.workflow.status: success}
    then: {action: import, site: 50}
  - name: akeneo product updated
    source: akeneo
    event: product.updated
    then: {action: import, site: 60}
""" + "".join(f"""\
  - name: anything from {name}
    source: {name}
    then: {{action: import, site: 99}}
""" for name in ("shopify_rotating", "stripe_rotating", "stripe_strict", "standard_rotating", "slack_rotating",
                 "circleci_rotating", "akeneo_rotating"))


@pytest.fixture
def bridge(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    env = {"SHOPIFY_SECRET": SHOPIFY_SECRET, "STRIPE_SECRET": STRIPE_SECRET, "STANDARD_SECRET": STANDARD_SECRET,
           "STANDARD_OLD": STANDARD_OLD, "SLACK_SECRET": SLACK_SECRET, "CIRCLECI_SECRET": CIRCLECI_SECRET,
           "AKENEO_SECRET": AKENEO_SECRET, "OLD_SECRET": OLD_SECRET}
    served = serve_bridge(tmp_path, RULES, env, now=NOW)
    yield served
    served.stop()
    assert_no_secret_logged(caplog, SECRETS)


def mac(key: str | bytes, message: bytes) -> bytes:
    return hmac.new(key if isinstance(key, bytes) else key.encode(), message, hashlib.sha256).digest()


def stored_rows(bridge, column: str) -> list:
    with sqlite3.connect(bridge.db) as db:
        return [row[0] for row in db.execute(f"select {column} from events")]


# ---- fixtures in each vendor's documented shape, and their signers -------------------------------

SHOPIFY_ORDER = (b'{"id":9007199254740993,"admin_graphql_api_id":"gid://shopify/Order/9007199254740993",'
                 b'"name":"#1042","email":"buyer@example.com","created_at":"2024-05-29T10:15:00-04:00",'
                 b'"currency":"EUR","financial_status":"paid","total_price":"59.90",'
                 b'"line_items":[{"id":9007199254740995,"sku":"TEE-RED-M","quantity":2,"price":"29.95"}]}')
STRIPE_EVENT = json.dumps({
    "id": "evt_1PLtestCheckoutDone", "object": "event", "api_version": "2024-04-10", "created": NOW - 2,
    "type": "checkout.session.completed", "livemode": False, "pending_webhooks": 1,
    "request": {"id": None, "idempotency_key": None},
    "data": {"object": {"id": "cs_test_a1B2c3", "object": "checkout.session", "payment_status": "paid",
                        "metadata": {"site_id": "20"}}}}).encode()
SLACK_MENTION = json.dumps({
    "token": "XXYYZZ", "team_id": "T0001", "api_app_id": "A0001", "type": "event_callback",
    "event_id": "Ev08MFMKH6", "event_time": NOW - 1,
    "event": {"type": "app_mention", "user": "U0001", "text": "<@U0BOT> refresh the catalog",
              "ts": "1717000000.000100", "channel": "C0001", "event_ts": "1717000000.000100"}}).encode()
CIRCLECI_WORKFLOW = json.dumps({
    "type": "workflow-completed", "id": "5a0c0fd9-2f70-4b0a-9a1b-6d5d3e0c1f11",
    "happened_at": "2024-05-29T16:26:38.000Z",
    "webhook": {"id": "0a1b2c3d-0000-4000-8000-000000000001", "name": "catalog feed"},
    "project": {"id": "0a1b2c3d-0000-4000-8000-000000000002", "name": "catalog-feed",
                "slug": "gh/acme/catalog-feed"},
    "organization": {"id": "0a1b2c3d-0000-4000-8000-000000000003", "name": "acme"},
    "workflow": {"id": "0a1b2c3d-0000-4000-8000-000000000004", "name": "build-feed", "status": "success",
                 "created_at": "2024-05-29T16:20:00.000Z", "stopped_at": "2024-05-29T16:26:37.000Z",
                 "url": "https://app.circleci.com/pipelines/gh/acme/catalog-feed/130/workflows/x"},
    "pipeline": {"id": "0a1b2c3d-0000-4000-8000-000000000005", "number": 130,
                 "vcs": {"branch": "main", "revision": "1b2c3d4e"}}}).encode()
AKENEO_BATCH = json.dumps({"events": [
    {"action": "product.updated", "event_id": "7d2a2f38-2b9b-4c16-9d67-0d7b8f7e3a01",
     "event_datetime": "2024-05-29T16:30:00+00:00", "author": "julia", "author_type": "ui",
     "pim_source": "https://pim.example.com",
     "data": {"resource": {"uuid": "3b1e1c3e-5f0e-4a57-9a5d-1f0e0d9c8b7a", "identifier": "TEE-RED-M",
                           "family": "tshirts", "enabled": True}}},
    {"action": "product.removed", "event_id": "7d2a2f38-2b9b-4c16-9d67-0d7b8f7e3a02",
     "event_datetime": "2024-05-29T16:30:01+00:00", "author": "julia", "author_type": "ui",
     "pim_source": "https://pim.example.com",
     "data": {"resource": {"uuid": "0c9d8e7f-1111-4222-8333-944455556666", "identifier": "TEE-OLD"}}},
]}).encode()


def shopify(body, secret=SHOPIFY_SECRET, now=NOW):
    return {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
            "X-Shopify-Hmac-Sha256": base64.b64encode(mac(secret, body)).decode(),
            "X-Shopify-Shop-Domain": "acme-store.myshopify.com", "X-Shopify-API-Version": "2024-04",
            "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
            "X-Shopify-Triggered-At": "2024-05-29T14:15:00.000000Z"}


def stripe(body, secret=STRIPE_SECRET, now=NOW):
    stale = mac(OLD_SECRET, f"{now}.".encode() + body).hex()
    good = mac(secret, f"{now}.".encode() + body).hex()
    return {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Stripe/1.0",
            "Stripe-Signature": f"t={now},v1={stale},v1={good},v0={stale}"}


def standard(body, secret=STANDARD_SECRET, now=NOW, msg_id="msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"):
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signature = base64.b64encode(mac(key, f"{msg_id}.{now}.".encode() + body)).decode()
    return {"Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(now),
            "webhook-signature": f"v1,{signature}"}


def slack(body, secret=SLACK_SECRET, now=NOW, content_type="application/json"):
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": str(now),
            "X-Slack-Signature": "v0=" + mac(secret, f"v0:{now}:".encode() + body).hex()}


def circleci(body, secret=CIRCLECI_SECRET, now=NOW):
    return {"Content-Type": "application/json", "User-Agent": "CircleCI-Webhook/1.0",
            "Circleci-Event-Type": "workflow-completed",
            "Circleci-Signature": "v1=" + mac(secret, body).hex()}


def akeneo(body, secret=AKENEO_SECRET, now=NOW, names=("X-Akeneo-Request-Signature", "X-Akeneo-Request-Timestamp")):
    return {"Content-Type": "application/json", names[1]: str(now),
            names[0]: mac(secret, f"{now}.".encode() + body).hex()}


# type -> (source, body, signer, signature header, timestamp header or None)
SENDERS = {
    "shopify": ("shopify", SHOPIFY_ORDER, shopify, "X-Shopify-Hmac-Sha256", None),
    "stripe": ("stripe", STRIPE_EVENT, stripe, "Stripe-Signature", None),
    "standard-webhooks": ("standard", sample("standard-webhooks-contact.created.json")[0], standard,
                          "webhook-signature", "webhook-timestamp"),
    "slack": ("slack", SLACK_MENTION, slack, "X-Slack-Signature", "X-Slack-Request-Timestamp"),
    "circleci": ("circleci", CIRCLECI_WORKFLOW, circleci, "Circleci-Signature", None),
    "akeneo": ("akeneo", AKENEO_BATCH, akeneo, "X-Akeneo-Request-Signature", "X-Akeneo-Request-Timestamp"),
}
SIGNS_TIMESTAMP = ["stripe", "standard-webhooks", "slack", "akeneo"]


def one_byte_changed(body: bytes) -> bytes:
    position = len(body) // 2
    return body[:position] + bytes([body[position] ^ 0x01]) + body[position + 1:]


# ---- every type: accepted as signed, and each negative twin refused ------------------------------

@pytest.mark.parametrize("kind", sorted(SENDERS))
def test_each_type_accepts_its_signed_delivery(bridge, kind):
    source, body, sign, _, _ = SENDERS[kind]
    answer = bridge.post(source, body, sign(body))
    assert answer.status_code == 202, answer.text
    assert bridge.count() >= 1


@pytest.mark.parametrize("kind", sorted(SENDERS))
def test_each_type_accepts_a_list_of_secrets_where_the_second_matches(bridge, kind):
    source, body, sign, _, _ = SENDERS[kind]
    answer = bridge.post(f"{source}_rotating", body, sign(body))
    assert answer.status_code == 202, answer.text


def mutations(kind):
    source, body, sign, signature_header, timestamp_header = SENDERS[kind]
    yield "one byte changed", one_byte_changed(body), sign(body)
    yield "wrong secret", body, sign(body, secret=WRONG_SECRET if kind != "standard-webhooks" else STANDARD_OLD)
    yield "missing signature", body, {k: v for k, v in sign(body).items() if k != signature_header}
    yield "non-ASCII signature", body, {**sign(body), signature_header: "v1=é€".encode("utf-8")}
    yield "empty body", b"", sign(body)
    if kind in SIGNS_TIMESTAMP:
        yield "stale timestamp", body, sign(body, now=NOW - 301)
        yield "future timestamp", body, sign(body, now=NOW + 301)
    if timestamp_header:
        yield "missing timestamp", body, {k: v for k, v in sign(body).items() if k != timestamp_header}
        yield "non-ASCII timestamp", body, {**sign(body), timestamp_header: "１７１７".encode("utf-8")}


CASES = [(kind, name, body, headers) for kind in sorted(SENDERS) for name, body, headers in mutations(kind)]


@pytest.mark.parametrize("kind,name,body,headers", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_negative_twins_get_401_and_store_nothing(bridge, kind, name, body, headers):
    answer = bridge.post(SENDERS[kind][0], body, headers)
    assert answer.status_code == 401, answer.text
    assert bridge.count() == 0


# ---- Shopify -------------------------------------------------------------------------------------

def test_shopify_order_id_above_2_53_keeps_its_exact_value(bridge):
    answer = bridge.post("shopify", SHOPIFY_ORDER, shopify(SHOPIFY_ORDER))
    assert answer.status_code == 202, answer.text
    data = answer.json()
    assert data["matched"] == ["shopify order 2^53+1"]          # 9007199254740992 would be a float's guess
    assert data["event_type"] == "orders/create"
    assert data["intents"][0]["site"] == 9007199254740993
    event = bridge.event(data["event_id"])
    assert event["delivery_id"] == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert event["intents"][0]["site"] == 9007199254740993


def test_shopify_retry_with_the_same_webhook_id_is_stored_once(bridge):
    first = bridge.post("shopify", SHOPIFY_ORDER, shopify(SHOPIFY_ORDER))
    again = bridge.post("shopify", SHOPIFY_ORDER, shopify(SHOPIFY_ORDER))
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["event_id"] == first.json()["event_id"]
    assert bridge.count() == 1


def test_shopify_event_id_is_the_delivery_id_without_a_webhook_id(bridge):
    headers = {k: v for k, v in shopify(SHOPIFY_ORDER).items() if k != "X-Shopify-Webhook-Id"}
    answer = bridge.post("shopify", SHOPIFY_ORDER, headers)
    assert bridge.event(answer.json()["event_id"])["delivery_id"] == "98880550-7158-44d4-b7cd-2c97c8a091b5"


# ---- Stripe --------------------------------------------------------------------------------------

def test_stripe_two_v1_one_from_an_old_secret_and_its_defaults(bridge):
    answer = bridge.post("stripe", STRIPE_EVENT, stripe(STRIPE_EVENT))
    data = answer.json()
    assert answer.status_code == 202 and data["event_type"] == "checkout.session.completed"
    assert data["intents"][0]["site"] == 20
    assert bridge.event(data["event_id"])["delivery_id"] == "evt_1PLtestCheckoutDone"


def test_stripe_key_is_the_whole_whsec_string_not_its_decoding(bridge):
    decoded = base64.b64decode(STRIPE_SECRET.removeprefix("whsec_") + "==")
    signature = mac(decoded, f"{NOW}.".encode() + STRIPE_EVENT).hex()
    answer = bridge.post("stripe", STRIPE_EVENT, {"Stripe-Signature": f"t={NOW},v1={signature}"})
    assert answer.status_code == 401
    assert bridge.count() == 0


@pytest.mark.parametrize("source,age,status", [
    ("stripe", 299, 202), ("stripe", 301, 401), ("stripe_strict", 29, 202), ("stripe_strict", 31, 401)])
def test_stripe_tolerance_default_and_configured(bridge, source, age, status):
    answer = bridge.post(source, STRIPE_EVENT, stripe(STRIPE_EVENT, now=NOW - age))
    assert answer.status_code == status
    assert bridge.count() == (1 if status == 202 else 0)


@pytest.mark.parametrize("header", ["v1=abc", f"t={NOW}", f"t={NOW},t={NOW},v1=00", f"t=1e9,v1=00", ""])
def test_stripe_malformed_headers_are_401(bridge, header):
    assert bridge.post("stripe", STRIPE_EVENT, {"Stripe-Signature": header}).status_code == 401


def test_yaml_event_and_delivery_id_win_over_the_senders_defaults_when_they_yield_a_value(bridge):
    answer = bridge.post("stripe_yaml", STRIPE_EVENT, stripe(STRIPE_EVENT))
    data = answer.json()
    assert data["event_type"] == "checkout.session" and data["matched"] == ["stripe by yaml event"]
    assert bridge.event(data["event_id"])["delivery_id"] == "cs_test_a1B2c3"


def test_yaml_expressions_that_yield_nothing_fall_back_to_the_senders_defaults(bridge):
    data = bridge.post("stripe_fallback", STRIPE_EVENT, stripe(STRIPE_EVENT)).json()
    assert data["event_type"] == "checkout.session.completed"
    assert bridge.event(data["event_id"])["delivery_id"] == "evt_1PLtestCheckoutDone"


# ---- Standard Webhooks ---------------------------------------------------------------------------

def test_standard_webhooks_published_vector(bridge):
    body, headers = sample("standard-webhooks-testvector.json")
    bridge.clock.now = 1614265330
    answer = bridge.post("standard", body, headers)
    assert answer.status_code == 200, answer.text             # stored, no rule for an untyped test event
    event = bridge.event(answer.json()["event_id"])
    assert event["delivery_id"] == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    bridge.clock.now = 1614265330 + 301
    assert bridge.post("standard", body, headers).status_code == 401


def test_standard_webhooks_sample_with_two_signatures_second_matching(bridge):
    body, headers = sample("standard-webhooks-contact.created.json")
    assert len(headers["webhook-signature"].split(" ")) == 2
    bridge.clock.now = 1674087231 + 10
    answer = bridge.post("standard", body, headers)
    assert answer.status_code == 202, answer.text
    assert answer.json()["event_type"] == "contact.created"
    first_only = {**headers, "webhook-signature": headers["webhook-signature"].split(" ")[0]}
    assert bridge.post("standard", body, first_only).status_code == 401     # so the second one matched
    assert bridge.count() == 1


def test_standard_webhooks_signed_id_cannot_be_swapped(bridge):
    body = sample("standard-webhooks-contact.created.json")[0]
    headers = {**standard(body), "webhook-id": "msg_replayed_under_a_new_id"}
    assert bridge.post("standard", body, headers).status_code == 401
    assert bridge.count() == 0


# ---- Slack ---------------------------------------------------------------------------------------

SLACK_DOC_BODY = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
                  b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
                  b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmi"
                  b"bIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
SLACK_DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
SLACK_DOC_TIMESTAMP = 1531420618


def test_slack_documented_example_over_http(bridge):
    bridge.clock.now = SLACK_DOC_TIMESTAMP + 5
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Signature": SLACK_DOC_SIGNATURE,
               "X-Slack-Request-Timestamp": str(SLACK_DOC_TIMESTAMP)}
    answer = bridge.post("slack", SLACK_DOC_BODY, headers)
    assert answer.status_code == 202, answer.text
    assert answer.json()["event_type"] == "/webhook-collect" and answer.json()["matched"] == ["slack command"]
    event = bridge.event(answer.json()["event_id"])
    assert event["delivery_id"] == "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    assert bridge.post("slack", one_byte_changed(SLACK_DOC_BODY), headers).status_code == 401
    assert bridge.count() == 1


SLACK_CHALLENGE = b'{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}'


def test_slack_url_verification_answers_the_challenge_in_plain_text(bridge):
    answer = bridge.post("slack", SLACK_CHALLENGE, slack(SLACK_CHALLENGE))
    assert answer.status_code == 200
    assert answer.text == "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert bridge.count() == 0


@pytest.mark.parametrize("headers", [
    {"Content-Type": "application/json"},
    slack(SLACK_CHALLENGE, secret=WRONG_SECRET),
    slack(SLACK_CHALLENGE, now=NOW - 600),
])
def test_slack_challenge_is_not_answered_before_the_signature_verifies(bridge, headers):
    answer = bridge.post("slack", SLACK_CHALLENGE, headers)
    assert answer.status_code == 401
    assert "3eZbrw1a" not in answer.text
    assert bridge.count() == 0


def test_slack_challenge_that_is_not_a_string_is_400(bridge):
    body = b'{"type":"url_verification","challenge":{"nested":1}}'
    assert bridge.post("slack", body, slack(body)).status_code == 400
    assert bridge.count() == 0


def test_slack_event_callback_and_its_retry(bridge):
    answer = bridge.post("slack", SLACK_MENTION, slack(SLACK_MENTION))
    assert answer.status_code == 202 and answer.json()["event_type"] == "app_mention"
    retry = bridge.post("slack", SLACK_MENTION, {**slack(SLACK_MENTION, now=NOW + 60), "X-Slack-Retry-Num": "1",
                                                 "X-Slack-Retry-Reason": "http_timeout"})
    assert retry.status_code == 200 and retry.json()["duplicate"] is True
    assert bridge.count() == 1


# ---- CircleCI ------------------------------------------------------------------------------------

def test_circleci_workflow_completed_with_several_signatures(bridge):
    good = mac(CIRCLECI_SECRET, CIRCLECI_WORKFLOW).hex()
    headers = {**circleci(CIRCLECI_WORKFLOW), "Circleci-Signature": f"v2=zz,v1={'0' * 64},v1={good}"}
    answer = bridge.post("circleci", CIRCLECI_WORKFLOW, headers)
    assert answer.status_code == 202, answer.text
    assert answer.json()["event_type"] == "workflow-completed" and answer.json()["intents"][0]["site"] == 50
    assert bridge.event(answer.json()["event_id"])["delivery_id"] == "5a0c0fd9-2f70-4b0a-9a1b-6d5d3e0c1f11"


def test_circleci_signature_without_v1_prefix_is_refused(bridge):
    headers = {**circleci(CIRCLECI_WORKFLOW), "Circleci-Signature": mac(CIRCLECI_SECRET, CIRCLECI_WORKFLOW).hex()}
    assert bridge.post("circleci", CIRCLECI_WORKFLOW, headers).status_code == 401


# ---- Akeneo --------------------------------------------------------------------------------------

@pytest.mark.parametrize("names", [("X-Akeneo-Request-Signature", "X-Akeneo-Request-Timestamp"),
                                   ("X-Akeneo-Signature", "X-Akeneo-Signature-Timestamp")])
def test_akeneo_batch_becomes_one_event_per_item_with_its_own_fate(bridge, names):
    answer = bridge.post("akeneo", AKENEO_BATCH, akeneo(AKENEO_BATCH, names=names))
    assert answer.status_code == 202, answer.text
    updated, removed = answer.json()["events"]
    assert (updated["event_type"], updated["matched"]) == ("product.updated", ["akeneo product updated"])
    assert (removed["event_type"], removed["matched"]) == ("product.removed", [])
    assert bridge.event(updated["event_id"])["fate"] == "pending"
    assert bridge.event(removed["event_id"])["fate"] == "ignored"
    assert bridge.event(updated["event_id"])["delivery_id"] == "7d2a2f38-2b9b-4c16-9d67-0d7b8f7e3a01"
    assert bridge.event(removed["event_id"])["delivery_id"] == "7d2a2f38-2b9b-4c16-9d67-0d7b8f7e3a02"


def test_akeneo_redelivered_batch_is_deduplicated_per_item(bridge):
    bridge.post("akeneo", AKENEO_BATCH, akeneo(AKENEO_BATCH))
    again = bridge.post("akeneo", AKENEO_BATCH, akeneo(AKENEO_BATCH, now=NOW + 30))
    assert [item["duplicate"] for item in again.json()["events"]] == [True, True]
    assert bridge.count() == 2


def test_akeneo_single_cloudevent_body(bridge):
    body = json.dumps({"specversion": "1.0", "id": "018e32f9-dfe4-760e-a273-5da1c089dfdb",
                       "type": "product.updated", "source": "pim", "time": "2024-05-29T16:30:00Z",
                       "data": {"product": {"uuid": "3b1e1c3e-5f0e-4a57-9a5d-1f0e0d9c8b7a"}}}).encode()
    answer = bridge.post("akeneo", body, akeneo(body))
    assert answer.status_code == 202 and answer.json()["event_type"] == "product.updated"
    assert bridge.event(answer.json()["event_id"])["delivery_id"] == "018e32f9-dfe4-760e-a273-5da1c089dfdb"


@pytest.mark.parametrize("body", [b'{"events": []}', b'{"events": "not a list"}', b"[]"])
def test_akeneo_odd_but_signed_bodies_never_500(bridge, body):
    assert bridge.post("akeneo", body, akeneo(body)).status_code in (200, 202)


@pytest.mark.parametrize("body", [b'{"events": [1, "x", null, [], {"action": {"x": 1}}]}',
                                  b'{"events": [[{"action": "product.updated"}]]}'])
def test_akeneo_batch_items_that_are_no_events_are_400(bridge, body):
    answer = bridge.post("akeneo", body, akeneo(body))
    assert answer.status_code == 400 and bridge.count() == 0


# ---- hostile bodies behind valid signatures ------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(SENDERS))
@pytest.mark.parametrize("body", [b"\xff\xfe not utf-8", b"{not json", b'{"type": 1, "id": {"a": []}, "event": []}',
                                  b"[" * 5000 + b"]" * 5000])
def test_signed_hostile_bodies_are_4xx_or_stored_never_500(bridge, kind, body):
    source, _, sign, _, _ = SENDERS[kind]
    headers = sign(body) if kind != "standard-webhooks" else standard(body, msg_id="msg_hostile")
    answer = bridge.post(source, body, headers)
    assert answer.status_code in (200, 202, 400), answer.text


def test_signed_body_with_an_overlong_integer_is_400(bridge):
    body = b'{"id": ' + b"9" * 5000 + b', "type": "x"}'
    assert bridge.post("circleci", body, circleci(body)).status_code == 400
    assert bridge.count() == 0


def test_stored_headers_keep_no_signatures(bridge):
    bridge.post("shopify", SHOPIFY_ORDER, shopify(SHOPIFY_ORDER))
    bridge.post("slack", SLACK_MENTION, slack(SLACK_MENTION))
    stored = " ".join(stored_rows(bridge, "headers")).lower()
    assert "hmac" not in stored and "x-slack-signature" not in stored
