"""`unwrap: sns | pubsub | eventgrid` on any source that is not itself a cloud envelope type.

The source's own check (a token, basic auth, an HMAC) has passed before anything here runs; the
envelope's own proofs (SNS signatures, Google's OIDC tokens) are not checked, and nothing here
calls out. What it does:
- `sns`: a Notification's Message is unwrapped (one event per S3 record, keys URL-decoded). A
  SubscriptionConfirmation or UnsubscribeConfirmation is NOT confirmed or visited: it is answered
  200 with a note to confirm the subscription in the AWS console, and nothing is stored.
- `pubsub`: a push's base64 `message.data`, event type from the `eventType` attribute.
- `eventgrid`: one event per array item; a subscription validation is answered
  `{"validationResponse": <code>}` exactly as the `eventgrid` type does.
A body that is not the named envelope is a 400.
"""
from __future__ import annotations

import logging
from typing import Any

from bridge.sources.base import BadRequestBody, Item, RawRequest, Reply, Source
from bridge.sources.cloud_aws import CONFIRMATION, NOTIFICATION, SIGNED_FIELDS, UNSUBSCRIBE, is_sns_url, \
    notification_items
from bridge.sources.cloud_azure import event_list, grid_items, validation_reply
from bridge.sources.cloud_common import text_or_none
from bridge.sources.cloud_google import push_items

log = logging.getLogger("bridge.sources.unwrap")

PUBSUB_ATTRIBUTE = "eventType"
CONFIRM_IN_CONSOLE = ("not confirmed by the bridge: a source with unwrap: sns never calls SNS back. Confirm "
                      "the subscription in the AWS console (SNS, Subscriptions, Confirm subscription) or with "
                      "aws sns confirm-subscription; nothing was stored")


def handshake(source: Source, payload: Any, request: RawRequest) -> Reply | None:
    kind = source.options["unwrap"]
    if kind == "sns":
        return sns_handshake(source, sns_message(payload))
    if kind == "eventgrid":
        return validation_reply(source.name, grid_events(payload), request)
    return None


def items(kind: str, payload: Any) -> list[Item]:
    if kind == "sns":
        message = sns_message(payload)
        if message["Type"] != NOTIFICATION:  # handshakes are answered before split
            raise BadRequestBody(f"an SNS {message['Type']} carries no event")
        return notification_items(message)
    if kind == "pubsub":
        return push_items(payload, PUBSUB_ATTRIBUTE)
    if kind == "eventgrid":
        return grid_items(grid_events(payload))
    raise ValueError(f"unknown unwrap kind {kind!r}")  # the schema allows only the three above


def sns_message(payload: Any) -> dict:
    """An SNS HTTP(S) message: an object with a known Type; a Notification has its Message as text."""
    kind = payload.get("Type") if isinstance(payload, dict) else None
    if not isinstance(kind, str) or kind not in SIGNED_FIELDS:
        raise BadRequestBody("not an SNS message: expected a JSON object with Type Notification, "
                             "SubscriptionConfirmation or UnsubscribeConfirmation")
    if kind == NOTIFICATION and not isinstance(payload.get("Message"), str):
        raise BadRequestBody("not an SNS notification: Message is missing or not a string")
    return payload


def sns_handshake(source: Source, message: dict) -> Reply | None:
    kind = message["Type"]
    if kind not in (CONFIRMATION, UNSUBSCRIBE):
        return None
    topic = text_or_none(message.get("TopicArn"))
    if kind == CONFIRMATION:
        url = message.get("SubscribeURL")
        # The operator needs this URL to confirm by hand; only an SNS URL is ever worth logging.
        log.warning("source %s: SNS subscription confirmation for topic %r not confirmed (unwrap: sns); "
                    "confirm it in the AWS console%s", source.name, topic,
                    f" with the SubscribeURL {url}" if is_sns_url(url) else "")
    else:
        log.info("source %s: SNS unsubscribe confirmation for topic %r acknowledged (not re-subscribed)",
                 source.name, topic)
    return Reply(200, {"acknowledged": kind, "confirmed": False, "topic_arn": topic,
                       "message": CONFIRM_IN_CONSOLE})


def grid_events(payload: Any) -> list[dict]:
    """Event Grid events; stricter than the eventgrid type (whose URL names the envelope): under
    unwrap, every event must have its `id` and `eventType`, or any JSON object would pass."""
    events = event_list(payload)
    if not events or not all(text_or_none(event.get("id")) and text_or_none(event.get("eventType"))
                             for event in events):
        raise BadRequestBody("not an Event Grid body: expected an array of events, each with 'id' and 'eventType'")
    return events
