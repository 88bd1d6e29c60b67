"""`unwrap:` on a source of another type, over real HTTP: the source's own check (a token, basic
auth) protects the endpoint, and the body is read as an SNS, Pub/Sub or Event Grid envelope whose
events the rules see as `payload`, one event per item. Handshakes are answered without calling out,
and the cloud envelope types refuse the key."""
from __future__ import annotations

import base64
import json
import logging

import pytest

from bridge.rules import load_config
from bridge.rules.errors import ConfigError
from tests.helpers import sample
from tests.sources_harness import assert_no_secret_logged, serve_bridge

TOKEN = "sns-relay-token-2b7e"
USER, PASSWORD = "pubsub-relay", "pubsub-relay-pw-91c4"
GRID_KEY = "grid-relay-key-6d0a"
SECRETS = (TOKEN, PASSWORD, GRID_KEY)
ENV = {"SNS_TOKEN": TOKEN, "RELAY_USER": USER, "RELAY_PASSWORD": PASSWORD, "GRID_KEY": GRID_KEY}

RULES = """\
sources:
  sns_relay:
    type: token
    secret: ${SNS_TOKEN}
    query: token
    unwrap: sns
  sns_typed:
    type: token
    secret: ${SNS_TOKEN}
    header: X-Relay-Token
    unwrap: sns
    event: payload.kind
    delivery_id: payload.ref
  push:
    type: basic
    user: ${RELAY_USER}
    password: ${RELAY_PASSWORD}
    unwrap: pubsub
  grid:
    type: token
    secret: ${GRID_KEY}
    query: token
    unwrap: eventgrid
rules:
  - name: any notification
    source: sns_relay
    event: Notification
    then: {action: import, site: 41}
  - name: csv uploaded
    source: sns_relay
    event: "ObjectCreated:Put"
    when:
      payload.s3.bucket.name: amzn-s3-demo-bucket
      payload.s3.object.key: "uploads/batch-42/upload finished (1).csv"
    then: {action: import, site: 42}
  - name: copied
    source: sns_relay
    event: "ObjectCreated:Copy"
    when: {payload.s3.object.key: "other/file one.csv"}
    then: {action: import, site: 43}
  - name: typed
    source: sns_typed
    event: feed.ready
    when: {payload.feed: products}          # the Message's JSON, parsed
    then: {action: import, site: 44}
  - name: object finalized
    source: push
    event: OBJECT_FINALIZE
    when: {payload.bucket: acme-feeds, payload.name: incoming/products.csv}
    then: {action: import, site: 45}
  - name: blob created
    source: grid
    event: Microsoft.Storage.BlobCreated
    when: {payload.subject: {regex: "/blobServices/default/containers/feeds/blobs/.*"}}
    then: {action: import, site: 46}
"""

STORAGE = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/feeds/providers/" \
          "Microsoft.Storage/storageAccounts/acmefeeds"
BLOBS = [
    {"topic": STORAGE, "subject": "/blobServices/default/containers/feeds/blobs/products.csv",
     "eventType": "Microsoft.Storage.BlobCreated", "eventTime": "2024-03-04T10:01:00.1234567Z",
     "id": "831e1650-001e-001b-66ab-eeb76e069631",
     "data": {"api": "PutBlockList", "url": "https://acmefeeds.blob.core.windows.net/feeds/products.csv"},
     "dataVersion": "", "metadataVersion": "1"},
    {"topic": STORAGE, "subject": "/blobServices/default/containers/archive/blobs/old.csv",
     "eventType": "Microsoft.Storage.BlobDeleted", "eventTime": "2024-03-04T10:01:02.0000000Z",
     "id": "831e1650-001e-001b-66ab-eeb76e069632",
     "data": {"api": "DeleteBlob", "url": "https://acmefeeds.blob.core.windows.net/archive/old.csv"},
     "dataVersion": "", "metadataVersion": "1"},
]
VALIDATION = [{
    "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
    "topic": "/subscriptions/00000000-0000-0000-0000-000000000000",
    "subject": "",
    "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6",
             "validationUrl": "https://rp-westeurope.eventgrid.azure.net:553/eventsubscriptions/bridge/validate?id=1"},
    "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
    "eventTime": "2024-03-04T10:00:00.0000000Z",
    "metadataVersion": "1",
    "dataVersion": "1",
}]
GRID_HEADERS = {"Content-Type": "application/json", "aeg-event-type": "Notification"}


@pytest.fixture
def bridge(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    served = serve_bridge(tmp_path, RULES, ENV)
    yield served
    served.stop()
    assert served.outbound.fetched == []   # unwrap never calls out, whatever it received
    assert_no_secret_logged(caplog, SECRETS)


def sns_body(name: str, **changes) -> tuple[bytes, dict[str, str]]:
    body, headers = sample(name)
    message = {**json.loads(body), **changes}
    return json.dumps(message).encode(), headers


def push_body(data: dict, attributes: dict, message_id: str = "8921317451263042") -> bytes:
    return json.dumps({
        "message": {"data": base64.b64encode(json.dumps(data).encode()).decode(), "attributes": attributes,
                    "messageId": message_id, "publishTime": "2024-03-04T10:00:00.000Z"},
        "subscription": "projects/acme-catalog/subscriptions/bridge-push",
    }).encode()


def basic(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(),
            "Content-Type": "application/json"}


# ---- unwrap: sns ------------------------------------------------------------------------------

def test_a_token_source_routes_the_message_inside_an_sns_notification(bridge):
    body, headers = sample("aws-sns-notification.json")
    answer = bridge.post("sns_relay", body, headers, query=f"?token={TOKEN}")
    assert answer.status_code == 202, answer.text
    data = answer.json()
    assert data["event_type"] == "Notification"
    assert data["matched"] == ["any notification"]
    event = bridge.event(data["event_id"])
    assert event["delivery_id"] == json.loads(body)["MessageId"]
    assert event["fate"] == "pending"


def test_the_message_json_string_becomes_the_payload_and_yaml_event_and_id_win(bridge):
    inner = {"kind": "feed.ready", "ref": "feed-7", "feed": "products"}
    body, headers = sns_body("aws-sns-notification.json", Message=json.dumps(inner))
    answer = bridge.post("sns_typed", body, {**headers, "X-Relay-Token": TOKEN})
    assert answer.status_code == 202, answer.text
    data = answer.json()
    assert data["event_type"] == "feed.ready"
    assert data["matched"] == ["typed"]
    event = bridge.event(data["event_id"])
    assert event["delivery_id"] == "feed-7"


def test_s3_records_through_sns_split_with_keys_decoded_and_a_fate_each(bridge):
    body, headers = sample("aws-sns-notification-s3-objectcreated.json")
    envelope = json.loads(body)
    inner = json.loads(envelope["Message"])
    copy = json.loads(json.dumps(inner["Records"][0]))
    copy["eventName"] = "ObjectCreated:Copy"
    copy["s3"]["object"]["key"] = "other/file+one.csv"
    deleted = {**copy, "eventName": "ObjectRemoved:Delete"}
    inner["Records"] += [copy, deleted]
    answer = bridge.post("sns_relay", json.dumps({**envelope, "Message": json.dumps(inner)}).encode(), headers,
                         query=f"?token={TOKEN}")
    assert answer.status_code == 202, answer.text
    events = answer.json()["events"]
    assert [e["event_type"] for e in events] == ["ObjectCreated:Put", "ObjectCreated:Copy", "ObjectRemoved:Delete"]
    fates = [bridge.event(e["event_id"]) for e in events]
    assert [f["delivery_id"] for f in fates] == [f"{envelope['MessageId']}#{i}" for i in range(3)]
    assert [f["fate"] for f in fates] == ["pending", "pending", "ignored"]
    assert [f["matched_rules"] for f in fates] == [["csv uploaded"], ["copied"], []]
    again = bridge.post("sns_relay", json.dumps({**envelope, "Message": json.dumps(inner)}).encode(), headers,
                        query=f"?token={TOKEN}")
    assert [e.get("duplicate") for e in again.json()["events"]] == [True, True, True]
    assert bridge.count() == 3


@pytest.mark.parametrize("name", ["aws-sns-subscription-confirmation.json", "aws-sns-unsubscribe-confirmation.json"])
def test_a_subscription_handshake_is_answered_but_never_confirmed_or_stored(bridge, name):
    body, headers = sample(name)
    answer = bridge.post("sns_relay", body, headers, query=f"?token={TOKEN}")
    assert answer.status_code == 200, answer.text
    reply = answer.json()
    assert reply["confirmed"] is False
    assert "AWS console" in reply["message"]
    message = json.loads(body)
    assert message["Token"] not in answer.text and message["SubscribeURL"] not in answer.text
    assert bridge.count() == 0
    assert bridge.outbound.fetched == []


@pytest.mark.parametrize("query", ["", "?token=wrong", f"?code={TOKEN}"])
def test_wrong_credentials_are_401_and_store_nothing_even_for_a_handshake(bridge, query):
    for name in ("aws-sns-notification.json", "aws-sns-subscription-confirmation.json"):
        body, headers = sample(name)
        answer = bridge.post("sns_relay", body, headers, query=query)
        assert answer.status_code == 401
        assert "AWS console" not in answer.text
    assert bridge.count() == 0


@pytest.mark.parametrize("body", [
    b'{"Records": []}',                                          # an S3 event sent directly, no SNS
    b'{"Type": "Bogus", "Message": "{}"}',
    b'{"Type": "Notification", "MessageId": "m-1"}',             # no Message
    b'[{"Type": "Notification", "Message": "{}"}]',
    b'"Notification"',
    b"not json at all",
])
def test_a_body_that_is_not_an_sns_message_is_400(bridge, body):
    answer = bridge.post("sns_relay", body, {"Content-Type": "text/plain; charset=UTF-8"}, query=f"?token={TOKEN}")
    assert answer.status_code == 400, answer.text
    assert bridge.count() == 0


# ---- unwrap: pubsub ---------------------------------------------------------------------------

def test_a_basic_source_routes_a_pubsub_push_with_base64_data(bridge):
    body = push_body({"bucket": "acme-feeds", "name": "incoming/products.csv"}, {"eventType": "OBJECT_FINALIZE"})
    answer = bridge.post("push", body, basic())
    assert answer.status_code == 202, answer.text
    data = answer.json()
    assert data["event_type"] == "OBJECT_FINALIZE"
    assert data["matched"] == ["object finalized"]
    event = bridge.event(data["event_id"])
    assert event["delivery_id"] == "8921317451263042"
    assert event["fate"] == "pending"
    assert bridge.post("push", body, basic()).json()["duplicate"] is True
    assert bridge.count() == 1


@pytest.mark.parametrize("headers", [basic(password="wrong"), basic(user="someone"),
                                     {"Content-Type": "application/json"}])
def test_a_push_with_wrong_credentials_is_401(bridge, headers):
    body = push_body({"bucket": "acme-feeds", "name": "incoming/products.csv"}, {"eventType": "OBJECT_FINALIZE"})
    assert bridge.post("push", body, headers).status_code == 401
    assert bridge.count() == 0


@pytest.mark.parametrize("body", [b'{"bucket": "acme-feeds"}', b'{"message": "text"}',
                                  b'{"message": {"data": "%%% not base64"}}', b"[]"])
def test_a_body_that_is_not_a_push_is_400(bridge, body):
    assert bridge.post("push", body, basic()).status_code == 400
    assert bridge.count() == 0


# ---- unwrap: eventgrid ------------------------------------------------------------------------

def test_the_validation_handshake_is_answered_with_valid_credentials_only(bridge):
    headers = {**GRID_HEADERS, "aeg-event-type": "SubscriptionValidation"}
    for query in ("", "?token=wrong"):
        refused = bridge.post("grid", json.dumps(VALIDATION).encode(), headers, query=query)
        assert refused.status_code == 401
        assert "512d38b6" not in refused.text
    answer = bridge.post("grid", json.dumps(VALIDATION).encode(), headers, query=f"?token={GRID_KEY}")
    assert answer.status_code == 200
    assert answer.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert bridge.count() == 0


def test_a_validation_event_without_its_header_is_400(bridge):
    answer = bridge.post("grid", json.dumps(VALIDATION).encode(), GRID_HEADERS, query=f"?token={GRID_KEY}")
    assert answer.status_code == 400
    assert bridge.count() == 0


def test_an_event_grid_array_splits_into_events_keyed_by_their_own_ids(bridge):
    answer = bridge.post("grid", json.dumps(BLOBS).encode(), GRID_HEADERS, query=f"?token={GRID_KEY}")
    assert answer.status_code == 202, answer.text
    events = answer.json()["events"]
    assert [e["event_type"] for e in events] == ["Microsoft.Storage.BlobCreated", "Microsoft.Storage.BlobDeleted"]
    fates = [bridge.event(e["event_id"]) for e in events]
    assert [f["delivery_id"] for f in fates] == [BLOBS[0]["id"], BLOBS[1]["id"]]
    assert [f["fate"] for f in fates] == ["pending", "ignored"]
    assert bridge.count() == 2


@pytest.mark.parametrize("body", [b'{"anything": "at all"}', b'[{"id": "x"}]', b"[]", b'"text"'])
def test_a_body_that_is_not_event_grid_is_400(bridge, body):
    answer = bridge.post("grid", body, GRID_HEADERS, query=f"?token={GRID_KEY}")
    assert answer.status_code == 400
    assert bridge.count() == 0


# ---- configuration ----------------------------------------------------------------------------

@pytest.mark.parametrize("source", [
    "type: sns\n    topic_arn: '*'",
    "type: pubsub\n    verify: none",
    "type: eventgrid\n    secret: key",
    "type: cloudevents\n    secret: key",
    "type: businesscentral\n    secret: state",
])
def test_unwrap_on_a_cloud_type_is_a_config_error_with_file_and_line(tmp_path, source):
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"sources:\n  cloud:\n    {source}\n    unwrap: sns\n")
    line = rules.read_text().splitlines().index("    unwrap: sns") + 1
    with pytest.raises(ConfigError) as error:
        load_config(rules, {})
    assert any(problem.startswith(f"{rules}:{line}: sources.cloud.unwrap: not allowed on type")
               for problem in error.value.errors), error.value.errors


def test_an_unknown_unwrap_value_is_a_config_error_with_file_and_line(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("sources:\n  relay:\n    type: token\n    secret: t0ken\n    bearer: true\n    unwrap: kinesis\n")
    with pytest.raises(ConfigError) as error:
        load_config(rules, {})
    assert error.value.errors == [f"{rules}:6: sources.relay.unwrap: must be one of: sns, pubsub, eventgrid "
                                  "(the cloud envelope the body comes in)"]


def test_unwrap_is_accepted_on_the_other_types(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("sources:\n"
                     "  a:\n    type: none\n    unwrap: eventgrid\n"
                     "  b:\n    type: hmac\n    secret: s3cret\n    header: X-Sig\n    unwrap: pubsub\n"
                     "  c:\n    type: github\n    secret: s3cret\n    unwrap: sns\n")
    config = load_config(rules, {})
    assert {name: source.options["unwrap"] for name, source in config.sources.items()} == \
        {"a": "eventgrid", "b": "pubsub", "c": "sns"}
