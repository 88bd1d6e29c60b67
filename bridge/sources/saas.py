"""Shops, payments, chat, CI, PIM and the SaaS standard: Shopify, Stripe, Standard Webhooks, Slack,
CircleCI and Akeneo.

Each type is its sender's signing scheme plus where that sender names its events and deliveries.
The YAML `event:` / `delivery_id:` options win over these defaults when they yield a value
(see `generic.SenderSource`).
"""
from __future__ import annotations

from marshmallow import ValidationError

from bridge.sources.base import (DEFAULT_TOLERANCE, DurationField, RawRequest, Reply, SecretsField, SourceSchema,
                                 first_header, header_bytes)
from bridge.sources.errors import BadRequestBody
from bridge.sources.generic import HmacScheme, SenderSource, Slot, as_text, body_field
from bridge.sources.signatures import (any_signature_matches, fresh_unix_seconds, standard_webhooks_key,
                                       standard_webhooks_valid)


class SignedTimestampSchema(SourceSchema):
    """Senders that sign a timestamp: `tolerance` is how far it may be from our clock, either way."""
    secret = SecretsField()
    tolerance = DurationField(load_default=DEFAULT_TOLERANCE)


class SecretOnlySchema(SourceSchema):
    secret = SecretsField()


# ---- Shopify -----------------------------------------------------------------------------------

class ShopifySource(SenderSource):
    """Base64 HMAC-SHA256 of the body, keyed with the app's client secret. The `Shopify-*` names
    are those of Shopify's newer Events deliveries; the classic webhooks use `X-Shopify-*`."""
    type_name = "shopify"
    schema = SecretOnlySchema
    scheme = HmacScheme(headers=("x-shopify-hmac-sha256", "shopify-hmac-sha256"), encoding="base64")

    def verify(self, request: RawRequest) -> bool:
        return self.scheme.verify(request, self.secrets)

    def sender_event_type(self, document, request):
        return first_header(request.headers, ("x-shopify-topic", "shopify-topic"))

    def sender_delivery_id(self, document, request):
        """The webhook id is the same on every retry of one delivery; the event id is the fallback."""
        return first_header(request.headers, ("x-shopify-webhook-id", "shopify-webhook-id",
                                              "x-shopify-event-id", "shopify-event-id"))


# ---- Stripe ------------------------------------------------------------------------------------

class StripeSource(SenderSource):
    """`Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`, HMAC-SHA256 of "<t>.<body>". The key is
    the endpoint's whole signing secret, `whsec_` included: Stripe does not decode it."""
    type_name = "stripe"
    schema = SignedTimestampSchema

    def verify(self, request: RawRequest) -> bool:
        timestamp, signatures = stripe_signature(request.headers.get("stripe-signature"))
        if not signatures or not fresh_unix_seconds(timestamp, request.received_at, self.options["tolerance"]):
            return False
        message = header_bytes(timestamp) + b"." + request.body
        return any_signature_matches(self.secrets, message, "sha256", "hex", signatures)

    def sender_event_type(self, document, request):
        return body_field(document, "type")

    def sender_delivery_id(self, document, request):
        """The event id (`evt_...`) stays the same when Stripe retries, unlike the signature."""
        return body_field(document, "id")


def stripe_signature(header: str | None) -> tuple[str | None, list[str]]:
    """The timestamp and every v1 signature. Two timestamps are ambiguous, so none is used.
    Other schemes (v0, test-mode extras) are ignored."""
    if not header:
        return None, []
    timestamps, signatures = [], []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamps.append(value)
        elif key == "v1" and value:
            signatures.append(value)
    return (timestamps[0] if len(timestamps) == 1 else None), signatures


# ---- Standard Webhooks -------------------------------------------------------------------------

class StandardSecretsField(SecretsField):
    """`whsec_<base64>`: refused at load time when the part after the prefix is not base64."""

    def _deserialize(self, value, attr, data, **kwargs) -> list[str]:
        secrets = super()._deserialize(value, attr, data, **kwargs)
        if any(standard_webhooks_key(secret) is None for secret in secrets):
            raise ValidationError("is not a Standard Webhooks secret; expected whsec_ followed by base64, "
                                  "as the sender shows it")
        return secrets


class StandardWebhooksSchema(SignedTimestampSchema):
    secret = StandardSecretsField()


STANDARD_ID = ("webhook-id", "svix-id")
STANDARD_TIMESTAMP = ("webhook-timestamp", "svix-timestamp")
STANDARD_SIGNATURE = ("webhook-signature", "svix-signature")


class StandardWebhooksSource(SenderSource):
    """webhook-id / webhook-timestamp / webhook-signature ("v1,<base64>" entries separated by
    spaces) over "<id>.<timestamp>.<body>", keyed with the base64 after `whsec_`. Svix sends the
    same headers under `svix-*` names, which are read when the standard ones are absent."""
    type_name = "standard-webhooks"
    schema = StandardWebhooksSchema

    def verify(self, request: RawRequest) -> bool:
        headers = request.headers
        return standard_webhooks_valid(
            self.secrets, first_header(headers, STANDARD_ID), first_header(headers, STANDARD_TIMESTAMP),
            request.body, first_header(headers, STANDARD_SIGNATURE), request.received_at, self.options["tolerance"])

    def sender_event_type(self, document, request):
        return body_field(document, "type")

    def sender_delivery_id(self, document, request):
        return first_header(request.headers, STANDARD_ID)


# ---- Slack -------------------------------------------------------------------------------------

def slack_scheme(tolerance: float) -> HmacScheme:
    """`X-Slack-Signature: v0=<hex>`, HMAC-SHA256 of "v0:<X-Slack-Request-Timestamp>:<body>"."""
    return HmacScheme(headers=("x-slack-signature",), signed=("v0:", Slot("timestamp"), ":", Slot("body")),
                      prefix="v0=", timestamp_headers=("x-slack-request-timestamp",), tolerance=tolerance)


class SlackSource(SenderSource):
    """Events API, slash commands and interactivity. The Events API's url_verification is answered
    (after the signature checks out) with the challenge as plain text, as Slack asks."""
    type_name = "slack"
    schema = SignedTimestampSchema

    def __init__(self, name, options):
        super().__init__(name, options)
        self.scheme = slack_scheme(options["tolerance"])

    def verify(self, request: RawRequest) -> bool:
        return self.scheme.verify(request, self.secrets)

    def handshake(self, payload, request):
        if not (isinstance(payload, dict) and payload.get("type") == "url_verification"):
            return None
        challenge = payload.get("challenge")
        if not isinstance(challenge, str) or not challenge:
            raise BadRequestBody("url_verification without a challenge string")
        return Reply(status=200, body=challenge, content_type="text/plain; charset=utf-8")

    def sender_event_type(self, document, request):
        """The inner event's type for the Events API, the command for a slash command, else `type`
        (block_actions, view_submission, ...)."""
        payload = document.get("payload")
        if not isinstance(payload, dict):
            return None
        inner = payload.get("event")
        if payload.get("type") == "event_callback" and isinstance(inner, dict):
            return as_text(inner.get("type"))
        return as_text(payload.get("command")) or as_text(payload.get("type"))

    def sender_delivery_id(self, document, request):
        """event_id is kept across Slack's retries; commands and actions carry a trigger_id."""
        return body_field(document, "event_id") or body_field(document, "trigger_id")


# ---- CircleCI and Akeneo --------------------------------------------------------------------------

class CircleCISource(SenderSource):
    """`circleci-signature: v1=<hex>`, HMAC-SHA256 of the body; the header may list several
    comma-separated versioned signatures, of which the v1 ones count."""
    type_name = "circleci"
    schema = SecretOnlySchema
    scheme = HmacScheme(headers=("circleci-signature",), prefix="v1=", separator=",")

    def verify(self, request: RawRequest) -> bool:
        return self.scheme.verify(request, self.secrets)

    def sender_event_type(self, document, request):
        return request.headers.get("circleci-event-type") or body_field(document, "type")

    def sender_delivery_id(self, document, request):
        """The payload's `id` names the event; CircleCI documents it as the key for duplicates."""
        return body_field(document, "id")


AKENEO_SIGNATURE = ("x-akeneo-request-signature", "x-akeneo-signature")
AKENEO_TIMESTAMP = ("x-akeneo-request-timestamp", "x-akeneo-signature-timestamp")


class AkeneoSource(SenderSource):
    """Akeneo PIM events: hex HMAC-SHA256 of "<timestamp>.<body>". The Events API documents the
    `X-Akeneo-Request-*` headers; Akeneo's webhook client also sends `X-Akeneo-Signature` and
    `X-Akeneo-Signature-Timestamp`, so both pairs are read. A body batches up to ten events
    under `events`: each becomes its own event, named by its `action` and its `event_id`."""
    type_name = "akeneo"
    schema = SignedTimestampSchema

    def __init__(self, name, options):
        super().__init__(name, options)
        self.scheme = HmacScheme(headers=AKENEO_SIGNATURE, signed=(Slot("timestamp"), ".", Slot("body")),
                                 timestamp_headers=AKENEO_TIMESTAMP, tolerance=options["tolerance"])

    def verify(self, request: RawRequest) -> bool:
        return self.scheme.verify(request, self.secrets)

    def split(self, payload, request):
        if self.options.get("unwrap"):
            return super().split(payload, request)
        if isinstance(payload, dict) and isinstance(payload.get("events"), list):
            if not all(isinstance(item, dict) for item in payload["events"]):
                raise BadRequestBody("an Akeneo batch is a list of event objects under 'events'")
            return payload["events"]
        return [payload]

    @property
    def item_ids_are_unique(self) -> bool:
        """Each item's own event_id tells the items apart; a YAML delivery_id may not, so it gets
        the usual `#index` suffix."""
        return self.options.get("delivery_id") is None

    def sender_event_type(self, document, request):
        """`action` in the Events API; `type` in the Event Platform's CloudEvents."""
        return body_field(document, "action") or body_field(document, "type")

    def sender_delivery_id(self, document, request):
        return body_field(document, "event_id") or body_field(document, "id")


TYPES: list = [ShopifySource, StripeSource, StandardWebhooksSource, SlackSource, CircleCISource, AkeneoSource]
