"""What every source shares: the raw request it sees, the delivery it makes, its config fields.

A source is the only stage that can turn a request into a *verified* delivery: `Source.receive`
verifies over the exact raw bytes first and parses only what passed.
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any, ClassVar

import jmespath
from marshmallow import Schema, ValidationError, fields, validate

from bridge.sources.bodies import parse_body
from bridge.sources.errors import BadRequestBody, Unverified  # noqa: F401  (re-exported)

DEFAULT_MAX_BODY = 5 * 1024 * 1024


@dataclass(frozen=True)
class RawRequest:
    body: bytes
    headers: dict[str, str]          # names lower-cased
    query: dict[str, str]
    content_type: str = ""


@dataclass(frozen=True)
class Delivery:
    """One verified, parsed event as the source saw it; rules read `document`."""
    source: str
    event_type: str | None
    delivery_id: str | None
    payload: Any
    headers: dict[str, str]
    query: dict[str, str]
    verified: bool = field(default=True, repr=False)

    @property
    def document(self) -> dict[str, Any]:
        return {"source": self.source, "event": self.event_type, "payload": self.payload,
                "headers": self.headers, "query": self.query}


class JMESPathField(fields.String):
    """A JMESPath expression, compiled at load time so a typo is a config error, not a 500."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return jmespath.compile(text)
        except jmespath.exceptions.JMESPathError as exc:
            raise ValidationError(f"not a valid JMESPath expression ({exc.__class__.__name__}): {text!r}")


class SecretField(fields.String):
    """A non-empty secret: an unset `${VAR}` or an empty string is a config error, never an open door."""

    def __init__(self, **kwargs):
        super().__init__(required=True, validate=validate.Length(min=1, error="must not be empty"), **kwargs)


class SourceSchema(Schema):
    type = fields.String(required=True)
    event = JMESPathField(load_default=None)
    delivery_id = JMESPathField(load_default=None)
    max_body = fields.Integer(load_default=DEFAULT_MAX_BODY, validate=validate.Range(min=1))


class Source:
    type_name: ClassVar[str]
    schema: ClassVar[type[Schema]] = SourceSchema

    def __init__(self, name: str, options: dict[str, Any]):
        self.name = name
        self.options = options
        self.max_body: int = options.get("max_body", DEFAULT_MAX_BODY)

    def __repr__(self) -> str:  # never show options: they hold secrets
        return f"<{type(self).__name__} {self.name!r}>"

    def receive(self, request: RawRequest) -> list[Delivery]:
        if not self.verify(request):
            raise Unverified()
        payload = parse_body(request.body, request.content_type)
        return [self.make_delivery(payload, request)]

    def verify(self, request: RawRequest) -> bool:
        raise NotImplementedError

    def make_delivery(self, payload: Any, request: RawRequest) -> Delivery:
        document = {"source": self.name, "event": None, "payload": payload,
                    "headers": request.headers, "query": request.query}
        return Delivery(self.name, self.event_type(document, request), self.delivery_id(document, request),
                        payload, request.headers, request.query)

    def event_type(self, document: dict, request: RawRequest) -> str | None:
        return _search_text(self.options.get("event"), document)

    def delivery_id(self, document: dict, request: RawRequest) -> str | None:
        return _search_text(self.options.get("delivery_id"), document)


def _search_text(expression, document) -> str | None:
    if expression is None:
        return None
    value = expression.search(document)
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def same_bytes(expected: bytes, given: bytes) -> bool:
    """Constant-time comparison on bytes."""
    return hmac.compare_digest(expected, given)
