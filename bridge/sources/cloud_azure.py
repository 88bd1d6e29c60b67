"""Microsoft senders: Azure Event Grid (Event Grid schema) and Dynamics 365 Business Central.

Event Grid signs nothing: it delivers to the URL you give it, so the URL carries a key (a query
parameter) or the subscription sends a static delivery header; either is compared in constant
time before anything else. It proves we own the endpoint with a validation event
(`aeg-event-type: SubscriptionValidation`), answered `{"validationResponse": <validationCode>}`
only after that key check. Bodies are arrays: one event per item, keyed by the item's own id.

Business Central proves the endpoint with `?validationToken=...`, echoed as text/plain 200, and
puts the subscription's `clientState` into every notification item: that is the shared secret.
"""
from __future__ import annotations

import hmac
import logging
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from bridge.sources.base import BadRequestBody, RawRequest, Reply, SecretsField, token_matches
from bridge.sources.cloud_common import (NOT_JSON, EnvelopeSchema, EnvelopeSource, Item, escaped, json_or_none,
                                         text_or_none)

log = logging.getLogger("bridge.sources.azure")

VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
DEFAULT_QUERY = "token"


class EventGridSchema(EnvelopeSchema):
    secret = SecretsField()
    query = fields.String(load_default=None, validate=validate.Length(min=1))
    header = fields.String(load_default=None, validate=validate.Length(min=1))

    @validates_schema
    def one_place(self, data, **kwargs):
        if data.get("query") is not None and data.get("header") is not None:
            raise ValidationError("set one of 'query' (default: token) or 'header', not both", field_name="header")


class EventGridSource(EnvelopeSource):
    type_name = "eventgrid"
    schema = EventGridSchema
    item_ids_are_unique = True

    def verify(self, request: RawRequest) -> bool:
        if self.options.get("header"):
            given = request.headers.get(self.options["header"].lower())
        else:
            given = request.query.get(self.options.get("query") or DEFAULT_QUERY)
        return token_matches(self.secrets, given)

    def handshake(self, body: Any, request: RawRequest) -> Reply | None:
        return validation_reply(self.name, body, request)

    def split(self, body: Any, request: RawRequest) -> list[Item]:
        return grid_items(body)


def validation_reply(source_name: str, body: Any, request: RawRequest) -> Reply | None:
    """The answer to a subscription validation (after the key check), None for ordinary events."""
    events = event_list(body)
    validating = request.headers.get("aeg-event-type", "").strip() == "SubscriptionValidation"
    codes = [validation_code(event) for event in events if event.get("eventType") == VALIDATION_EVENT]
    if not validating and not codes:
        return None
    if not validating or len(events) != 1 or len(codes) != 1 or codes[0] is None:
        # Answering a validation that carries other events would silently drop those events.
        raise BadRequestBody("a subscription validation needs the aeg-event-type: SubscriptionValidation "
                             "header and exactly one event, the validation event with data.validationCode")
    log.info("source %s: answered an Event Grid subscription validation", source_name)
    return Reply(200, {"validationResponse": codes[0]})


def grid_items(body: Any) -> list[Item]:
    """One event per array item, keyed by the item's own id."""
    return [Item(event, text_or_none(event.get("eventType")), text_or_none(event.get("id")))
            for event in event_list(body)]


def event_list(body: Any) -> list[dict]:
    """Event Grid posts an array of event objects (a lone object is taken as an array of one)."""
    events = [body] if isinstance(body, dict) else body
    if not isinstance(events, list) or not all(isinstance(event, dict) for event in events):
        raise BadRequestBody("not an Event Grid body: expected a JSON array of event objects")
    return events


def validation_code(event: dict) -> str | None:
    data = event.get("data")
    return text_or_none(data.get("validationCode")) if isinstance(data, dict) else None


# ---- Business Central -------------------------------------------------------------------------

class BusinessCentralSchema(EnvelopeSchema):
    secret = SecretsField()


class BusinessCentralSource(EnvelopeSource):
    """`secret` lists the clientState values of the subscriptions that post here (any one matches)."""
    store_raw_body = False   # the raw body holds clientState, the shared secret
    type_name = "businesscentral"
    schema = BusinessCentralSchema
    item_ids_are_unique = True

    def before_verify(self, request: RawRequest) -> Reply | None:
        """Creating or renewing a subscription: echo the token. It carries no secret to check, and
        the echo grants nothing: notifications still need the clientState."""
        token = request.query.get("validationToken")
        if token is None:
            return None
        log.info("source %s: answered a Business Central subscription handshake", self.name)
        return Reply(200, token, headers={"X-Content-Type-Options": "nosniff"},
                     content_type="text/plain; charset=utf-8")

    def verify(self, request: RawRequest) -> bool:
        """Every item must carry a configured clientState: one forged item spoils the request."""
        items = notification_items(json_or_none(request.body))
        if not items:
            return False
        return all(self.client_state_matches(item.get("clientState")) for item in items)

    def client_state_matches(self, given: Any) -> bool:
        if not isinstance(given, str):
            return False
        given_bytes = given.encode("utf-8", "surrogatepass")
        matched = False
        for secret in self.secrets:
            matched |= hmac.compare_digest(secret.encode("utf-8"), given_bytes)
        return matched

    def split(self, body: Any, request: RawRequest) -> list[Item]:
        return [Item(without_client_state(item), text_or_none(item.get("changeType")), notification_id(item))
                for item in notification_items(body)]


def notification_items(body: Any) -> list[dict]:
    if body is NOT_JSON or not isinstance(body, dict) or not isinstance(body.get("value"), list):
        return []
    items = body["value"]
    return items if all(isinstance(item, dict) for item in items) else []


def without_client_state(item: dict) -> dict:
    """The clientState is the shared secret: rules (and `bridge explain`) never see it."""
    return {key: value for key, value in item.items() if key != "clientState"}


def notification_id(item: dict) -> str | None:
    """Business Central gives a notification no id; its retries repeat the same subscription,
    resource, change type and modification time, which together name the change."""
    parts = [text_or_none(item.get(key)) for key in ("subscriptionId", "resource", "changeType",
                                                     "lastModifiedDateTime")]
    if any(part is None for part in parts):
        return None
    return "|".join(escaped(part, "|") for part in parts)


TYPES = [EventGridSource, BusinessCentralSource]
