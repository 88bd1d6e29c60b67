"""What the cloud envelope sources share: shared-token checks, reading JSON before verification,
and deliveries whose default event type and id come from the envelope rather than the item.

Cloud senders wrap the event they carry (a JSON string inside JSON, base64 data, an array of
events). Their `parse` keeps the envelope and their `split` returns `Item`s: the payload the rules
see plus the sender's own event type and delivery id for it. A YAML `event:` / `delivery_id:`
expression wins over those defaults whenever it yields a value. `Item` and that precedence live in
base (any source's `unwrap:` uses them too) and are re-exported here.
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from marshmallow import ValidationError, fields, validates_schema

from bridge.sources.base import (Delivery, Item, RawRequest, Source, SourceSchema, search_text,  # noqa: F401
                                 text_or_none, token_matches)
from bridge.sources.outbound import OutboundError

NOT_JSON = object()
CACHE_SIZE = 32


class EnvelopeSchema(SourceSchema):
    """The cloud envelope types unwrap their own envelope: `unwrap:` is for the other types."""

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def no_unwrap(self, data, original_data, **kwargs):
        if isinstance(original_data, dict) and "unwrap" in original_data:
            kind = original_data.get("type")
            raise ValidationError(f"not allowed on type {kind}: it unwraps its own envelope already; "
                                  "unwrap: is for sources such as token or basic that receive an envelope",
                                  field_name="unwrap")


class EnvelopeSource(Source):
    """A source whose `split` returns `Item`s (the Item-aware delivery lives in base.Source)."""

    def make_delivery(self, item: Any, request: RawRequest, index: int = 0, count: int = 1) -> Delivery:
        if not isinstance(item, Item):
            item = Item(item)
        return super().make_delivery(item, request, index, count)

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
