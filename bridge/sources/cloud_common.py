"""What the cloud envelope sources share: shared-token checks, reading JSON before verification,
and deliveries whose default event type and id come from the envelope rather than the item.

Cloud senders wrap the event they carry (a JSON string inside JSON, base64 data, an array of
events). Their `parse` keeps the envelope and their `split` returns `Item`s: the payload the rules
see plus the sender's own event type and delivery id for it. A YAML `event:` / `delivery_id:`
expression wins over those defaults whenever it yields a value.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from marshmallow import ValidationError, fields

from bridge.sources.base import Delivery, RawRequest, Source, header_bytes, same_bytes, search_text
from bridge.sources.outbound import OutboundError

NOT_JSON = object()
CACHE_SIZE = 32


@dataclass(frozen=True)
class Item:
    """One event cut out of an envelope, with the sender's defaults for its type and id."""
    payload: Any
    event_type: str | None = None
    delivery_id: str | None = None


class EnvelopeSource(Source):
    """A source whose `split` returns `Item`s; see the module docstring for the precedence."""

    def make_delivery(self, item: Any, request: RawRequest, index: int = 0, count: int = 1) -> Delivery:
        if not isinstance(item, Item):
            item = Item(item)
        document = {"source": self.name, "event": None, "payload": item.payload,
                    "headers": request.headers, "query": request.query}
        event_type = text_or_none(search_text(self.options.get("event"), document)) or item.event_type
        configured_id = text_or_none(search_text(self.options.get("delivery_id"), document))
        delivery_id = configured_id or item.delivery_id
        # A configured expression may read a value shared by the whole batch: suffix it to be safe.
        if delivery_id is not None and count > 1 and (configured_id or not self.item_ids_are_unique):
            delivery_id = f"{delivery_id}#{index}"
        return Delivery(self.name, event_type, delivery_id, item.payload, request.headers, request.query)

    def fetch(self, url: str) -> bytes | None:
        """GET through the app's outbound client; None when it fails or none is set (dry runs)."""
        if self.outbound is None:
            return None
        try:
            return self.outbound(url)
        except OutboundError:
            return None


def json_or_none(raw: bytes) -> Any:
    """The body as JSON for checks that must read it before it is verified; NOT_JSON when it is not."""
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (ValueError, RecursionError):  # decoding errors and over-long integers are ValueErrors
        return NOT_JSON


def text_or_none(value: Any) -> str | None:
    """A JSON string usable as an event type or id. JSON can smuggle lone surrogates (`"\\ud800"`),
    which no database column takes: such a value counts as absent."""
    if not isinstance(value, str):
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


def token_matches(secrets: list[str], given: str | None) -> bool:
    """A shared token against every configured secret, in constant time, on bytes."""
    if given is None:
        return False
    given_bytes = header_bytes(given) if isinstance(given, str) else b""
    matched = False
    for secret in secrets:
        matched |= same_bytes(secret.encode("utf-8"), given_bytes)
    return matched


def bearer_token(headers: dict[str, str]) -> str | None:
    """The token of `Authorization: Bearer <token>` (scheme case-insensitive), else None."""
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def https_host(url: Any) -> str | None:
    """The host of a plain https URL (no credentials, default port), else None."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "https" or parts.username is not None or parts.password is not None or port not in (None, 443):
        return None
    return parts.hostname


class BoundedCache(dict):
    """A small cache keyed by URL: the oldest entry goes first, so hostile ids cannot grow it."""

    def put(self, key, value) -> None:
        if key not in self and len(self) >= CACHE_SIZE:
            self.pop(next(iter(self)))
        self[key] = value


class StringListField(fields.Field):
    """One string or a list of non-empty strings, loaded as a tuple."""

    def _deserialize(self, value, attr, data, **kwargs) -> tuple[str, ...]:
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(item, str) and item for item in values):
            raise ValidationError("expected a non-empty string or a list of non-empty strings")
        return tuple(values)


def escaped(part: str, separator: str) -> str:
    """A delivery-id part with its separator percent-escaped, so joined ids cannot collide
    (`x@y` + `z` and `x` + `y@z` stay apart)."""
    return part.replace("%", "%25").replace(separator, "%" + format(ord(separator), "02X"))
