"""CloudEvents 1.0 over HTTP webhooks: structured (`application/cloudevents+json`), batched
(`application/cloudevents-batch+json`) and binary mode (attributes in `ce-*` headers), plus the
webhook spec's OPTIONS abuse-protection handshake.

Authorization follows the CloudEvents webhook spec: the access token comes as
`Authorization: Bearer <token>` or as the `access_token` query parameter; both are accepted and
compared in constant time. The OPTIONS handshake is not authorization (the spec says so): it only
tells a sender that this URL expects its events, so it is answered without a token, for the
origins the source allows. A `WebHook-Request-Callback` URL is never visited: the handshake is
always granted synchronously with the response headers, and fetching a URL named by an
unauthenticated request would let anyone make the bridge call anywhere.

Rules see each event as its JSON form: the attributes (`type`, `source`, `id`, `subject`, ...)
and `data`, whatever the mode it came in. `data_base64` and binary-mode bodies are decoded the
same way: JSON content types into documents, text into text, other bytes stay base64 text.
"""
from __future__ import annotations

import base64
import binascii
import logging
from typing import Any
from urllib.parse import unquote_to_bytes

from marshmallow import fields, validate

from bridge.sources.base import (BadRequestBody, RawRequest, Reply, SecretsField, Unverified, bearer_token,
                                 header_bytes, token_matches)
from bridge.sources.bodies import decode_text, media_type_and_charset, parse_json
from bridge.sources.cloud_common import EnvelopeSchema, EnvelopeSource, Item, StringListField, escaped, text_or_none

log = logging.getLogger("bridge.sources.cloudevents")

STRUCTURED, BATCH = "application/cloudevents+json", "application/cloudevents-batch+json"
REQUIRED = ("specversion", "id", "source", "type")
ALLOW = "POST, OPTIONS"


class CloudEventsSchema(EnvelopeSchema):
    secret = SecretsField()
    query = fields.String(load_default="access_token", validate=validate.Length(min=1))
    allowed_origins = StringListField(load_default=None)
    allowed_rate = fields.Integer(load_default=None, validate=validate.Range(min=1))


class CloudEventsSource(EnvelopeSource):
    type_name = "cloudevents"
    schema = CloudEventsSchema
    item_ids_are_unique = True

    # ---- the OPTIONS handshake ------------------------------------------------------------

    def options_request(self, request: RawRequest) -> Reply:
        if not self.ip_allowed(request):
            raise Unverified()
        origin = printable_ascii(request.headers.get("webhook-request-origin"))
        if not origin:
            return Reply(400, {"error": "an abuse-protection request needs a WebHook-Request-Origin header"},
                         headers={"Allow": ALLOW})
        if not self.origin_allowed(origin):
            log.warning("source %s: refused delivery permission to origin %r", self.name, origin)
            return Reply(403, {"error": "this origin may not deliver here"}, headers={"Allow": ALLOW})
        rate = self.allowed_rate(request.headers.get("webhook-request-rate"))
        if rate is None:
            return Reply(400, {"error": "WebHook-Request-Rate must be a positive integer"}, headers={"Allow": ALLOW})
        if "webhook-request-callback" in request.headers:
            log.info("source %s: granting %r synchronously; its callback URL is not visited", self.name, origin)
        return Reply(200, None, headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": rate,
                                         "Allow": ALLOW})

    def origin_allowed(self, origin: str) -> bool:
        allowed = self.options.get("allowed_origins")
        return allowed is None or "*" in allowed or origin.lower() in {name.lower() for name in allowed}

    def allowed_rate(self, requested: str | None) -> str | None:
        """The rate granted: what was asked, capped by `allowed_rate`; `*` when neither says.
        None when the request's rate is not a positive integer."""
        cap = self.options.get("allowed_rate")
        if requested is None:
            return str(cap) if cap else "*"
        text = requested.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) < 1:
            return None  # more than 9 digits is no rate anyone means (and int() of 4300+ digits raises)
        return str(min(int(text), cap) if cap else int(text))

    # ---- deliveries -----------------------------------------------------------------------

    def verify(self, request: RawRequest) -> bool:
        by_header = token_matches(self.secrets, bearer_token(request.headers.get("authorization")))
        by_query = token_matches(self.secrets, request.query.get(self.options["query"]))
        return by_header or by_query

    def parse(self, request: RawRequest) -> list[dict]:
        media_type, charset = media_type_and_charset(request.content_type)
        if media_type == BATCH:
            batch = parse_json(decode_text(request.body, charset))
            if not isinstance(batch, list):
                raise BadRequestBody("a CloudEvents batch must be a JSON array of events")
            return [structured_event(event) for event in batch]
        if media_type == STRUCTURED:
            return [structured_event(parse_json(decode_text(request.body, charset)))]
        if media_type.startswith("application/cloudevents"):
            raise BadRequestBody(f"CloudEvents format {media_type!r} is not supported; send JSON")
        return [binary_event(request)]

    def split(self, events: list[dict], request: RawRequest) -> list[Item]:
        return [Item(event, event["type"], f"{escaped(event['id'], '@')}@{event['source']}") for event in events]


def structured_event(event: Any) -> dict:
    """An event in the JSON format, with `data_base64` decoded into `data`."""
    if not isinstance(event, dict):
        raise BadRequestBody("a CloudEvent must be a JSON object")
    check_required(event)
    if "data_base64" not in event:
        return event
    if "data" in event:
        raise BadRequestBody("a CloudEvent has either data or data_base64, not both")
    encoded = event["data_base64"]
    try:
        raw = base64.b64decode(encoded.encode("ascii"), validate=True) if isinstance(encoded, str) else None
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raw = None
    if raw is None:
        raise BadRequestBody("data_base64 is not valid base64")
    content_type = event.get("datacontenttype")
    data = decode_data(raw, content_type if isinstance(content_type, str) else "")
    return {**{k: v for k, v in event.items() if k != "data_base64"}, "data": data}


def binary_event(request: RawRequest) -> dict:
    """Attributes from the `ce-*` headers (percent-decoded), data from the body."""
    event: dict[str, Any] = {name[3:]: header_value(name, value)
                             for name, value in request.headers.items() if name.startswith("ce-") and name[3:]}
    if "datacontenttype" in event:
        raise BadRequestBody("binary mode takes the data content type from Content-Type, not ce-datacontenttype")
    check_required(event)
    if request.content_type:
        event["datacontenttype"] = request.content_type
    event["data"] = decode_data(request.body, request.content_type)
    return event


def check_required(event: dict) -> None:
    missing = [name for name in REQUIRED if not text_or_none(event.get(name))]
    if missing:
        raise BadRequestBody(f"not a CloudEvent: missing {', '.join(missing)}")
    if event["specversion"] != "1.0":  # the only version there is; "1.x" would be a guess
        raise BadRequestBody(f"CloudEvents specversion {event['specversion']!r} is not supported; expected 1.0")


def header_value(name: str, value: str) -> str:
    """A `ce-*` header value as the spec decodes it: printable ASCII, an optional quoted string,
    then one round of percent-decoding that must yield valid UTF-8."""
    text = printable_ascii(value)
    if text is None:
        raise BadRequestBody(f"header {name} is not printable ASCII; CloudEvents percent-encodes other characters")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = unquote_string(text[1:-1])
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestBody(f"header {name} percent-decodes to invalid UTF-8")


def unquote_string(inner: str) -> str:
    """The content of an HTTP quoted-string: a backslash escapes the next character."""
    out, escaped = [], False
    for char in inner:
        if escaped or char != "\\":
            out.append(char)
            escaped = False
        else:
            escaped = True
    return "".join(out)


def printable_ascii(value: str | None) -> str | None:
    """The header's text when every byte sent is printable ASCII (space and tab allowed inside)."""
    if value is None:
        return None
    raw = header_bytes(value).strip()
    if not all(0x20 <= byte < 0x7F or byte == 0x09 for byte in raw):
        return None
    return raw.decode("ascii")


def decode_data(raw: bytes, content_type: str) -> Any:
    """Event data by its content type: JSON documents, text as text, other bytes as base64 text."""
    if not raw:
        return None
    media_type, charset = media_type_and_charset(content_type or "")
    if media_type in ("application/json", "text/json") or media_type.endswith("+json"):
        return parse_json(decode_text(raw, charset), "event data")
    if media_type.startswith("text/") or media_type.endswith("xml"):
        return decode_text(raw, charset)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii")


TYPES = [CloudEventsSource]
