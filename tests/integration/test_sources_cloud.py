"""Azure Event Grid, CloudEvents webhooks and Business Central over real HTTP: each handshake as its
sender requires it, batches split into events with their own fate, and negative twins that get a
401 (never a 500) and store nothing. Deliveries are written here in the shapes the vendors document.

(SNS and Pub/Sub have files of their own: test_sources_cloud_sns.py, test_sources_cloud_pubsub.py.)"""
from __future__ import annotations

import json
import logging

import pytest

from bridge.sources import cloud
from tests.sources_harness import assert_no_secret_logged, serve_bridge

GRID_KEY = "grid-key-5d1c9"
CE_TOKEN = "ce-token-8e21"
BC_STATE = "bc-client-state-41f0"
SECRETS = (GRID_KEY, CE_TOKEN, BC_STATE)

RULES = """\
sources:
  grid:
    type: eventgrid
    secret: ${GRID_KEY}
  grid_header:
    type: eventgrid
    secret: ${GRID_KEY}
    header: X-Bridge-Key
    event: payload.data.api
  ce:
    type: cloudevents
    secret: ${CE_TOKEN}
  ce_strict:
    type: cloudevents
    secret: ${CE_TOKEN}
    allowed_origins: [eventgrid.azure.net]
    allowed_rate: 100
  ce_office:
    type: cloudevents
    secret: ${CE_TOKEN}
    allow_ips: [192.0.2.0/24]
  bc:
    type: businesscentral
    secret: [old-client-state, "${BC_STATE}"]
rules:
  - name: blob created
    source: grid
    event: Microsoft.Storage.BlobCreated
    when: {payload.subject: {regex: "/blobServices/default/containers/feeds/blobs/.*"}}
    then: {action: import, site: 31}
  - name: blob put
    source: grid_header
    event: PutBlockList
    then: {action: import, site: 32}
  - name: feed ready
    source: ce
    event: com.acme.feed.ready
    when: {payload.data.feed: products}
    then: {action: import, site: 33}
  - name: euro subject
    source: ce
    event: com.acme.price.changed
    when: {payload.subject: "Euro € 😀"}
    then: {action: export-all, site: 34}
  - name: quoted subject
    source: ce
    event: com.acme.price.changed
    when: {payload.subject: 'Euro "€"', payload.data.sku: X-1}
    then: {action: export-all, site: 36}
  - name: item changed
    source: bc
    event: [created, updated]
    when: {payload.clientState: {exists: false}}
    then: {action: import, site: 35}
"""
ENV = {"GRID_KEY": GRID_KEY, "CE_TOKEN": CE_TOKEN, "BC_STATE": BC_STATE}


@pytest.fixture
def bridge(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    served = serve_bridge(tmp_path, RULES, ENV)
    yield served
    served.stop()
    assert_no_secret_logged(caplog, SECRETS)
    assert served.outbound.fetched == []  # none of these senders is ever called back


def test_every_cloud_type_is_registered():
    assert {cls.type_name for cls in cloud.TYPES} == {"sns", "pubsub", "eventgrid", "cloudevents", "businesscentral"}


# ---- Azure Event Grid ------------------------------------------------------------------------

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
STORAGE = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/feeds/providers/" \
          "Microsoft.Storage/storageAccounts/acmefeeds"
BLOBS = [
    {"topic": STORAGE, "subject": "/blobServices/default/containers/feeds/blobs/products.csv",
     "eventType": "Microsoft.Storage.BlobCreated", "eventTime": "2024-03-04T10:01:00.1234567Z",
     "id": "831e1650-001e-001b-66ab-eeb76e069631",
     "data": {"api": "PutBlockList", "contentType": "text/csv", "contentLength": 524288, "blobType": "BlockBlob",
              "url": "https://acmefeeds.blob.core.windows.net/feeds/products.csv",
              "sequencer": "00000000000004420000000000028963"},
     "dataVersion": "", "metadataVersion": "1"},
    {"topic": STORAGE, "subject": "/blobServices/default/containers/archive/blobs/old.csv",
     "eventType": "Microsoft.Storage.BlobDeleted", "eventTime": "2024-03-04T10:01:02.0000000Z",
     "id": "831e1650-001e-001b-66ab-eeb76e069632",
     "data": {"api": "DeleteBlob", "blobType": "BlockBlob",
              "url": "https://acmefeeds.blob.core.windows.net/archive/old.csv"},
     "dataVersion": "", "metadataVersion": "1"},
]
GRID_HEADERS = {"Content-Type": "application/json", "aeg-event-type": "Notification",
                "aeg-subscription-name": "BRIDGE", "aeg-delivery-count": "0"}


def test_the_event_grid_validation_is_answered_with_the_code(bridge):
    headers = {**GRID_HEADERS, "aeg-event-type": "SubscriptionValidation"}
    answer = bridge.post("grid", json.dumps(VALIDATION).encode(), headers, query=f"?token={GRID_KEY}")
    assert answer.status_code == 200
    assert answer.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert bridge.count() == 0


@pytest.mark.parametrize("query", ["", "?token=wrong", f"?code={GRID_KEY}", "?token=%E2%82%AC"])
def test_the_validation_is_not_answered_without_the_key(bridge, query):
    headers = {**GRID_HEADERS, "aeg-event-type": "SubscriptionValidation"}
    answer = bridge.post("grid", json.dumps(VALIDATION).encode(), headers, query=query)
    assert answer.status_code == 401
    assert "512d38b6" not in answer.text


def test_a_validation_event_without_its_header_is_400(bridge):
    answer = bridge.post("grid", json.dumps(VALIDATION).encode(), GRID_HEADERS, query=f"?token={GRID_KEY}")
    assert answer.status_code == 400
    assert bridge.count() == 0


def test_an_event_grid_batch_splits_into_events_with_their_own_fate(bridge):
    answer = bridge.post("grid", json.dumps(BLOBS).encode(), GRID_HEADERS, query=f"?token={GRID_KEY}")
    assert answer.status_code == 202, answer.text
    events = answer.json()["events"]
    assert [e["event_type"] for e in events] == ["Microsoft.Storage.BlobCreated", "Microsoft.Storage.BlobDeleted"]
    fates = [bridge.event(e["event_id"]) for e in events]
    assert [f["delivery_id"] for f in fates] == [BLOBS[0]["id"], BLOBS[1]["id"]]  # item ids, no suffix
    assert [f["fate"] for f in fates] == ["pending", "ignored"]
    again = bridge.post("grid", json.dumps(BLOBS).encode(), GRID_HEADERS, query=f"?token={GRID_KEY}")
    assert [e.get("duplicate") for e in again.json()["events"]] == [True, True]
    assert bridge.count() == 2


def test_the_key_can_come_in_a_header_and_the_yaml_event_wins(bridge):
    headers = {**GRID_HEADERS, "X-Bridge-Key": GRID_KEY}
    answer = bridge.post("grid_header", json.dumps(BLOBS[:1]).encode(), headers)
    assert answer.status_code == 202, answer.text
    assert answer.json()["event_type"] == "PutBlockList"
    assert bridge.post("grid_header", json.dumps(BLOBS[:1]).encode(), GRID_HEADERS,
                       query=f"?token={GRID_KEY}").status_code == 401
    assert bridge.post("grid_header", json.dumps(BLOBS[:1]).encode(),
                       {**GRID_HEADERS, "X-Bridge-Key": "grid-kéy".encode()}).status_code == 401


@pytest.mark.parametrize("body", [b'"a string"', b"[1, 2]", b"{", b"\xff\xfe", b"[[{}]]"])
def test_a_verified_but_malformed_event_grid_body_is_400(bridge, body):
    assert bridge.post("grid", body, GRID_HEADERS, query=f"?token={GRID_KEY}").status_code == 400
    assert bridge.count() == 0


# ---- CloudEvents -----------------------------------------------------------------------------

def options(bridge, source: str, headers: dict):
    return bridge.post(source, b"", headers, method="OPTIONS")


def test_the_abuse_protection_handshake_grants_the_origin(bridge):
    answer = options(bridge, "ce", {"WebHook-Request-Origin": "eventemitter.example.com"})
    assert answer.status_code == 200
    assert answer.headers["WebHook-Allowed-Origin"] == "eventemitter.example.com"
    assert answer.headers["WebHook-Allowed-Rate"] == "*"
    assert "POST" in answer.headers["Allow"]
    asked = options(bridge, "ce", {"WebHook-Request-Origin": "eventemitter.example.com", "WebHook-Request-Rate": "120"})
    assert asked.headers["WebHook-Allowed-Rate"] == "120"
    assert bridge.count() == 0


def test_the_handshake_caps_the_rate_and_refuses_other_origins(bridge):
    capped = options(bridge, "ce_strict", {"WebHook-Request-Origin": "eventgrid.azure.net", "WebHook-Request-Rate": "120"})
    assert capped.status_code == 200
    assert capped.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    assert capped.headers["WebHook-Allowed-Rate"] == "100"
    refused = options(bridge, "ce_strict", {"WebHook-Request-Origin": "eventemitter.example.com"})
    assert refused.status_code == 403
    assert "WebHook-Allowed-Origin" not in refused.headers and "WebHook-Allowed-Rate" not in refused.headers


@pytest.mark.parametrize("headers", [
    {},
    {"WebHook-Request-Origin": "eventemitter.example.com", "WebHook-Request-Rate": "fast"},
    {"WebHook-Request-Origin": "eventemitter.example.com", "WebHook-Request-Rate": "0"},
    {"WebHook-Request-Origin": "évent.example.com".encode()},
])
def test_a_malformed_handshake_grants_nothing(bridge, headers):
    answer = options(bridge, "ce", headers)
    assert answer.status_code == 400
    assert "WebHook-Allowed-Origin" not in answer.headers


def test_the_handshake_respects_allow_ips(bridge):
    answer = options(bridge, "ce_office", {"WebHook-Request-Origin": "eventemitter.example.com"})
    assert answer.status_code == 401
    assert "WebHook-Allowed-Origin" not in answer.headers


def test_the_callback_variant_is_granted_synchronously_and_never_visited(bridge):
    answer = options(bridge, "ce", {"WebHook-Request-Origin": "eventemitter.example.com",
                                    "WebHook-Request-Callback": "https://eventemitter.example.com/confirm?id=1&key=x"})
    assert answer.status_code == 200
    assert answer.headers["WebHook-Allowed-Origin"] == "eventemitter.example.com"
    # the fixture asserts that nothing was fetched


FEED_READY = {"specversion": "1.0", "type": "com.acme.feed.ready", "source": "/erp/exports",
              "id": "A234-1234-1234", "time": "2024-03-04T10:00:00Z", "subject": "feeds/products",
              "datacontenttype": "application/json", "data": {"feed": "products", "rows": 1200}}
STRUCTURED = {"Content-Type": "application/cloudevents+json; charset=utf-8"}
BEARER = {"Authorization": f"Bearer {CE_TOKEN}"}


def test_a_structured_event_with_a_bearer_token(bridge):
    answer = bridge.post("ce", json.dumps(FEED_READY).encode(), {**STRUCTURED, **BEARER})
    assert answer.status_code == 202, answer.text
    assert answer.json()["matched"] == ["feed ready"]
    assert bridge.event(answer.json()["event_id"])["delivery_id"] == "A234-1234-1234@/erp/exports"


def test_a_structured_event_with_the_access_token_query_and_base64_data(bridge):
    event = {k: v for k, v in FEED_READY.items() if k != "data"}
    event["data_base64"] = "eyJmZWVkIjogInByb2R1Y3RzIn0="  # {"feed": "products"}
    answer = bridge.post("ce", json.dumps(event).encode(), STRUCTURED, query=f"?access_token={CE_TOKEN}")
    assert answer.status_code == 202, answer.text
    assert answer.json()["matched"] == ["feed ready"]


def test_a_binary_event_has_its_headers_percent_decoded(bridge):
    headers = {"ce-specversion": "1.0", "ce-type": "com.acme.price.changed", "ce-source": "/pricing",
               "ce-id": "price-77", "ce-subject": "Euro%20%E2%82%AC%20%F0%9F%98%80",
               "Content-Type": "application/json", **BEARER}
    answer = bridge.post("ce", b'{"sku": "X-1", "price": 9.5}', headers)
    assert answer.status_code == 202, answer.text
    assert answer.json()["matched"] == ["euro subject"]
    quoted = {**headers, "ce-id": "price-78", "ce-subject": '"Euro \\"%E2%82%AC\\""'}
    answer = bridge.post("ce", b'{"sku": "X-1"}', quoted)
    assert answer.json()["matched"] == ["quoted subject"]
    assert bridge.count() == 2


@pytest.mark.parametrize("subject", ["%C0%A0", "%FF", "Euro €".encode("utf-8")])
def test_a_binary_header_that_is_not_valid_is_400(bridge, subject):
    headers = {"ce-specversion": "1.0", "ce-type": "t", "ce-source": "/s", "ce-id": "1", "ce-subject": subject,
               "Content-Type": "application/json", **BEARER}
    assert bridge.post("ce", b"{}", headers).status_code == 400
    assert bridge.count() == 0


def test_a_batch_splits_into_events_with_their_own_fate(bridge):
    other = {**FEED_READY, "id": "B1", "type": "com.acme.feed.archived", "data": {"feed": "old"}}
    answer = bridge.post("ce", json.dumps([FEED_READY, other]).encode(),
                         {"Content-Type": "application/cloudevents-batch+json", **BEARER})
    assert answer.status_code == 202, answer.text
    events = answer.json()["events"]
    fates = [bridge.event(e["event_id"]) for e in events]
    assert [f["delivery_id"] for f in fates] == ["A234-1234-1234@/erp/exports", "B1@/erp/exports"]
    assert [f["fate"] for f in fates] == ["pending", "ignored"]


CE_NEGATIVES = {
    "missing token": {},
    "wrong token": {"Authorization": "Bearer wrong"},
    "token with one byte changed": {"Authorization": f"Bearer {CE_TOKEN[:-1]}0"},
    "basic scheme": {"Authorization": f"Basic {CE_TOKEN}"},
    "non-ASCII token": {"Authorization": f"Bearer {CE_TOKEN}é".encode()},
}


@pytest.mark.parametrize("headers", CE_NEGATIVES.values(), ids=CE_NEGATIVES.keys())
def test_cloudevents_negative_twins_are_401(bridge, headers):
    assert bridge.post("ce", json.dumps(FEED_READY).encode(), {**STRUCTURED, **headers}).status_code == 401
    assert bridge.post("ce", json.dumps(FEED_READY).encode(), STRUCTURED, query="?access_token=wrong").status_code == 401
    assert bridge.count() == 0


@pytest.mark.parametrize("body, content_type", [
    (b"[]", STRUCTURED["Content-Type"]),
    (json.dumps({**FEED_READY, "id": None}).encode(), STRUCTURED["Content-Type"]),
    (json.dumps({**FEED_READY, "specversion": "0.3"}).encode(), STRUCTURED["Content-Type"]),
    (json.dumps({**FEED_READY, "specversion": "1.0.evil"}).encode(), STRUCTURED["Content-Type"]),
    (json.dumps({**FEED_READY, "data_base64": "!!"}).encode(), STRUCTURED["Content-Type"]),
    (json.dumps(FEED_READY).encode(), "application/cloudevents-batch+json"),
    (b"{}", "application/cloudevents+avro"),
    (b'{"feed": "products"}', "application/json"),  # binary mode without ce-* headers
])
def test_a_verified_but_malformed_cloudevent_is_400(bridge, body, content_type):
    assert bridge.post("ce", body, {"Content-Type": content_type, **BEARER}).status_code == 400
    assert bridge.count() == 0


# ---- Business Central ------------------------------------------------------------------------

def notifications(state: str = BC_STATE) -> list[dict]:
    company = "api/v2.0/companies(b18aed47-c385-49d2-b954-dbdf8ad71780)"
    return [
        {"subscriptionId": "webhookItemsId", "clientState": state, "expirationDateTime": "2024-03-07T07:52:31Z",
         "resource": f"{company}/items(26814998-936a-401c-81c1-0e848a64971d)", "changeType": "updated",
         "lastModifiedDateTime": "2024-03-04T12:54:20.467Z"},
        {"subscriptionId": "webhookCustomersId", "clientState": state, "expirationDateTime": "2024-03-07T12:50:30Z",
         "resource": f"{company}/customers(130bbd17-dbb9-4790-9b12-2b0e9c9d22c3)", "changeType": "created",
         "lastModifiedDateTime": "2024-03-04T12:54:26.057Z"},
        {"subscriptionId": "webhookCustomersId", "clientState": state, "expirationDateTime": "2024-03-07T12:50:30Z",
         "resource": f"{company}/customers(4b4f31f0-dc1c-4033-b2aa-ab03ca1d6ebc)", "changeType": "deleted",
         "lastModifiedDateTime": "2024-03-04T12:54:30.503Z"},
        {"subscriptionId": "salesInvoice", "clientState": state, "expirationDateTime": "2024-03-07T10:55:01Z",
         "resource": f"/{company}/salesInvoices?$filter=lastDateTimeModified%20gt%202024-03-04T11:00:00Z",
         "changeType": "collection", "lastModifiedDateTime": "2024-03-04T12:54:30.503Z"},
    ]


def bc_body(items) -> bytes:
    return json.dumps({"value": items}).encode()


def test_the_business_central_handshake_echoes_the_token_as_text(bridge):
    answer = bridge.post("bc", b"", {"Content-Type": "application/json"}, query="?validationToken=Validation%20token%2B42")
    assert answer.status_code == 200
    assert answer.text == "Validation token+42"
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert bridge.count() == 0


def test_business_central_notifications_are_one_event_per_item(bridge):
    answer = bridge.post("bc", bc_body(notifications()), {"Content-Type": "application/json"})
    assert answer.status_code == 202, answer.text
    events = answer.json()["events"]
    assert [e["event_type"] for e in events] == ["updated", "created", "deleted", "collection"]
    fates = [bridge.event(e["event_id"]) for e in events]
    assert [f["fate"] for f in fates] == ["pending", "pending", "ignored", "ignored"]
    assert fates[0]["delivery_id"].startswith("webhookItemsId|api/v2.0/companies(")
    assert len({f["delivery_id"] for f in fates}) == 4
    again = bridge.post("bc", bc_body(notifications()), {"Content-Type": "application/json"})
    assert all(e.get("duplicate") for e in again.json()["events"])


def test_a_rotated_client_state_still_matches(bridge):
    items = notifications()
    items[0]["clientState"] = "old-client-state"
    assert bridge.post("bc", bc_body(items), {"Content-Type": "application/json"}).status_code == 202


BC_NEGATIVES = {
    "one forged item": lambda: notifications()[:1] + notifications("guess")[1:2],
    "one byte changed": lambda: notifications(BC_STATE[:-1] + "1"),
    "missing clientState": lambda: [{k: v for k, v in item.items() if k != "clientState"} for item in notifications()],
    "clientState not text": lambda: notifications(None),
    "non-ASCII clientState": lambda: notifications(BC_STATE + "é"),
    "no items": lambda: [],
    "items not objects": lambda: [BC_STATE],
}


@pytest.mark.parametrize("items", BC_NEGATIVES.values(), ids=BC_NEGATIVES.keys())
def test_business_central_negative_twins_are_401(bridge, items):
    assert bridge.post("bc", bc_body(items()), {"Content-Type": "application/json"}).status_code == 401
    assert bridge.count() == 0


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"value": {}}', b"\xff", b"{" * 50000])
def test_hostile_business_central_bodies_are_401(bridge, body):
    assert bridge.post("bc", body, {"Content-Type": "application/json"}).status_code == 401
    assert bridge.count() == 0


def test_lone_surrogates_in_ids_are_no_500(bridge):
    """JSON can carry `\\ud800`, which no database takes: such a type or id counts as absent."""
    body = b'[{"id": "\\ud800", "eventType": "\\udfff", "subject": "\\ud800", "data": {"api": "\\ud800"}}]'
    for source, headers, query in (("grid", GRID_HEADERS, f"?token={GRID_KEY}"),
                                   ("grid_header", {**GRID_HEADERS, "X-Bridge-Key": GRID_KEY}, "")):
        answer = bridge.post(source, body, headers, query=query)
        assert answer.status_code == 200, answer.text
        assert answer.json()["event_type"] is None
    event = {**FEED_READY, "id": "\ud800"}
    answer = bridge.post("ce", json.dumps(event).encode(), {**STRUCTURED, **BEARER})
    assert answer.status_code == 400
    assert bridge.count() == 2


def test_an_over_long_integer_is_no_500(bridge):
    huge = b"1" * 5000
    assert bridge.post("bc", b'{"value": [{"clientState": ' + huge + b"}]}",
                       {"Content-Type": "application/json"}).status_code == 401
    assert bridge.count() == 0


def test_an_over_long_integer_in_a_verified_body_is_400(bridge):
    body = b'[{"id": "1", "eventType": "x", "data": {"n": ' + b"1" * 5000 + b"}}]"
    assert bridge.post("grid", body, GRID_HEADERS, query=f"?token={GRID_KEY}").status_code == 400
    event = b'{"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data": ' + b"1" * 5000 + b"}"
    assert bridge.post("ce", event, {**STRUCTURED, **BEARER}).status_code == 400
    assert bridge.count() == 0


# ---- found by a break-it test ------------------------------------------------------------------

def stored_bytes(bridge) -> int:
    import sqlite3
    with sqlite3.connect(bridge.db) as db:
        return db.execute("select coalesce(sum(length(body)), 0) from events").fetchone()[0]


def test_a_batch_is_stored_once_not_once_per_item(bridge):
    items = [{**BLOBS[0], "id": f"blob-{n}"} for n in range(300)]
    body = json.dumps(items).encode()
    answer = bridge.post("grid", body, GRID_HEADERS, query=f"?token={GRID_KEY}")
    assert answer.status_code == 202 and len(answer.json()["events"]) == 300
    assert stored_bytes(bridge) < 2 * len(body)      # each event keeps its own item


def test_a_batch_over_the_limit_is_413_and_stores_nothing(bridge):
    from bridge.hooks import MAX_BATCH
    items = [{"id": f"i{n}", "eventType": "x", "subject": "s"} for n in range(MAX_BATCH + 1)]
    answer = bridge.post("grid", json.dumps(items).encode(), GRID_HEADERS, query=f"?token={GRID_KEY}")
    assert answer.status_code == 413 and bridge.count() == 0


def test_a_validation_carrying_other_events_is_400_so_none_is_dropped(bridge):
    headers = {**GRID_HEADERS, "aeg-event-type": "SubscriptionValidation"}
    answer = bridge.post("grid", json.dumps(VALIDATION + BLOBS[:1]).encode(), headers, query=f"?token={GRID_KEY}")
    assert answer.status_code == 400 and bridge.count() == 0


def test_an_absurd_requested_rate_grants_nothing_and_is_no_500(bridge):
    answer = options(bridge, "ce", {"WebHook-Request-Origin": "eventgrid.azure.net",
                                    "WebHook-Request-Rate": "1" * 4400})
    assert answer.status_code == 400


def test_cloudevent_ids_that_join_alike_are_different_deliveries(bridge):
    first = {**FEED_READY, "id": "x@y", "source": "z"}
    second = {**FEED_READY, "id": "x", "source": "y@z"}
    answers = [bridge.post("ce", json.dumps(event).encode(), {**STRUCTURED, **BEARER}) for event in (first, second)]
    assert [a.status_code for a in answers] == [202, 202]
    assert "duplicate" not in answers[1].json()


def test_business_central_client_state_is_not_stored(bridge):
    import sqlite3
    assert bridge.post("bc", bc_body(notifications()[:1]), {"Content-Type": "application/json"}).status_code == 202
    with sqlite3.connect(bridge.db) as db:
        bodies = b"".join(row[0] for row in db.execute("select body from events"))
    assert bodies and BC_STATE.encode() not in bodies
