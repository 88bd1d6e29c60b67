"""Senders without a family of their own: a configurable HMAC, a shared token, basic auth, or nothing.

`HmacScheme` is also the one description of "an HMAC over some bytes in a header" that the vendor
families reuse (Slack, Shopify, CircleCI, Akeneo): a sender's scheme is a few
values (which headers, what is signed, how the signature is written), not a new verifier each time.
`SenderSource` holds the precedence every family follows for the event type and the delivery id:
the YAML `event:` / `delivery_id:` win when they yield a value, the sender's own headers or body
fill in otherwise.
"""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from marshmallow import ValidationError, fields, validate, validates_schema

from bridge.sources.base import (DEFAULT_TOLERANCE, DurationField, RawRequest, SecretsField, Source,
                                 SourceSchema, auth_credentials, bearer_token, first_header, header_bytes,
                                 same_bytes, token_matches)
from bridge.sources.signatures import ALGORITHMS, ENCODINGS, any_signature_matches, fresh_unix_seconds


# ---- signed content: a template such as "{timestamp}.{body}" -----------------------------------

class Slot(NamedTuple):
    """A placeholder in a signed-content template, filled with the bytes the sender sent."""
    name: str


SLOTS = ("body", "timestamp", "id")
BODY_ONLY = (Slot("body"),)
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def parse_signed(template: str) -> tuple[str | Slot, ...]:
    """Split a template into literal text and slots; a typo is a config error, not a silent mismatch."""
    parts: list[str | Slot] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        _literal(template[position:match.start()], parts)
        if match.group(1) not in SLOTS:
            raise ValueError(f"unknown placeholder {{{match.group(1)}}}; expected {{body}}, {{timestamp}} or {{id}}")
        parts.append(Slot(match.group(1)))
        position = match.end()
    _literal(template[position:], parts)
    return tuple(parts)


def _literal(text: str, parts: list) -> None:
    if "{" in text or "}" in text:
        raise ValueError("unbalanced braces; write placeholders as {body}, {timestamp} or {id}")
    if text:
        parts.append(text)


def render_signed(parts, values: dict[str, bytes]) -> bytes:
    """The exact bytes the sender signed: literal text as UTF-8, slots as the bytes received."""
    return b"".join(values[part.name] if isinstance(part, Slot) else part.encode("utf-8") for part in parts)


class SignedField(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return parse_signed(super()._deserialize(value, attr, data, **kwargs))
        except ValueError as exc:
            raise ValidationError(str(exc))


# ---- matching --------------------------------------------------------------------------------

@dataclass(frozen=True)
class HmacScheme:
    """How one sender signs: an HMAC of `signed` (body, timestamp, id), written in a header,
    possibly several signatures separated by `separator`, each carrying `prefix`."""
    headers: tuple[str, ...]
    signed: tuple = BODY_ONLY
    algorithm: str = "sha256"
    encoding: str = "hex"
    prefix: str = ""
    separator: str | None = None
    timestamp_headers: tuple[str, ...] = ()
    id_headers: tuple[str, ...] = ()
    tolerance: float = DEFAULT_TOLERANCE

    def verify(self, request: RawRequest, keys) -> bool:
        given = first_header(request.headers, self.headers)
        values = self.signed_values(request)
        if given is None or values is None:
            return False
        message = render_signed(self.signed, values)
        return any_signature_matches(keys, message, self.algorithm, self.encoding, self.candidates(given))

    def signed_values(self, request: RawRequest) -> dict[str, bytes] | None:
        values = {"body": request.body}
        if self.timestamp_headers:
            timestamp = first_header(request.headers, self.timestamp_headers)
            if not fresh_unix_seconds(timestamp, request.received_at, self.tolerance):
                return None
            values["timestamp"] = header_bytes(timestamp)
        if self.id_headers:
            identifier = first_header(request.headers, self.id_headers)
            if identifier is None:
                return None
            values["id"] = header_bytes(identifier)
        return values

    def candidates(self, given: str) -> list[str]:
        entries = given.split(self.separator) if self.separator else [given]
        found = []
        for entry in (entry.strip() for entry in entries):
            if entry.startswith(self.prefix) and len(entry) > len(self.prefix):
                found.append(entry[len(self.prefix):])
        return found


# ---- the precedence of event type and delivery id --------------------------------------------

def as_text(value: Any) -> str | None:
    """A sender's id or type as text; structures, booleans and empty strings are no usable value."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        return str(value) or None
    return None


def body_field(document: dict, name: str) -> str | None:
    payload = document.get("payload")
    return as_text(payload.get(name)) if isinstance(payload, dict) else None


class SenderSource(Source):
    """A source whose sender names its events and deliveries. A YAML `event:` / `delivery_id:` wins
    whenever it yields a value; when it yields nothing, the sender's own name for it is used: by
    default the first of its `event_headers` / `delivery_headers` that is set."""
    event_headers: tuple[str, ...] = ()
    delivery_headers: tuple[str, ...] = ()

    def event_type(self, document, request):
        return super().event_type(document, request) or self.sender_event_type(document, request)

    def delivery_id(self, document, request):
        return super().delivery_id(document, request) or self.sender_delivery_id(document, request)

    def sender_event_type(self, document: dict, request: RawRequest) -> str | None:
        return first_header(request.headers, self.event_headers)

    def sender_delivery_id(self, document: dict, request: RawRequest) -> str | None:
        return first_header(request.headers, self.delivery_headers)


def without_credentials(request: RawRequest, headers=(), query=()) -> RawRequest:
    """The request as rules and the store may see it: the credential-bearing names removed."""
    drop_headers = {name.lower() for name in headers if name}
    drop_query = {name for name in query if name}
    return replace(request,
                   headers={k: v for k, v in request.headers.items() if k not in drop_headers},
                   query={k: v for k, v in request.query.items() if k not in drop_query})


# ---- type: hmac --------------------------------------------------------------------------------

class HmacSchema(SourceSchema):
    secret = SecretsField()
    header = fields.String(required=True, validate=validate.Length(min=1))
    algorithm = fields.String(load_default="sha256", validate=validate.OneOf(sorted(ALGORITHMS)))
    encoding = fields.String(load_default="hex", validate=validate.OneOf(ENCODINGS))
    prefix = fields.String(load_default="")
    separator = fields.String(load_default=None, validate=validate.Length(min=1))
    signed = SignedField(load_default=BODY_ONLY)
    timestamp_header = fields.String(load_default=None, validate=validate.Length(min=1))
    id_header = fields.String(load_default=None, validate=validate.Length(min=1))
    tolerance = DurationField(load_default=None)

    @validates_schema
    def consistent(self, data, **kwargs):
        """Each header named must be signed and each slot signed must have its header: a timestamp
        that is read but not signed could be changed by anyone, so it would protect nothing."""
        slots = {part.name for part in data["signed"] if isinstance(part, Slot)}
        if "body" not in slots:
            raise ValidationError("must include {body}: a signature that does not cover the body protects nothing",
                                  field_name="signed")
        for slot, option in (("timestamp", "timestamp_header"), ("id", "id_header")):
            if slot in slots and not data.get(option):
                raise ValidationError(f"required because 'signed' uses {{{slot}}}: the header it is read from",
                                      field_name=option)
            if data.get(option) and slot not in slots:
                raise ValidationError(f"set, but 'signed' does not include {{{slot}}}; add it where the sender "
                                      "puts it, e.g. signed: \"{timestamp}.{body}\"", field_name=option)
        if data.get("tolerance") is not None and not data.get("timestamp_header"):
            raise ValidationError("only applies to a signed timestamp; set timestamp_header and {timestamp}",
                                  field_name="tolerance")


class HmacSource(SenderSource):
    type_name = "hmac"
    schema = HmacSchema

    def __init__(self, name, options):
        super().__init__(name, options)
        tolerance = options.get("tolerance")
        self.scheme = HmacScheme(
            headers=(options["header"].lower(),), signed=options["signed"], algorithm=options["algorithm"],
            encoding=options["encoding"], prefix=options["prefix"], separator=options.get("separator"),
            timestamp_headers=_names(options.get("timestamp_header")), id_headers=_names(options.get("id_header")),
            tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance)

    def verify(self, request: RawRequest) -> bool:
        return self.scheme.verify(request, self.secrets)

    def sender_delivery_id(self, document, request):
        """The signed id header, when the sender has one, is the natural delivery id."""
        return first_header(request.headers, self.scheme.id_headers)


def _names(header: str | None) -> tuple[str, ...]:
    return (header.lower(),) if header else ()


# ---- type: token -------------------------------------------------------------------------------

class TokenSchema(SourceSchema):
    secret = SecretsField()
    header = fields.String(load_default=None, validate=validate.Length(min=1))
    query = fields.String(load_default=None, validate=validate.Length(min=1))
    bearer = fields.Boolean(load_default=False)

    @validates_schema
    def one_place(self, data, **kwargs):
        places = [data.get("header") is not None, data.get("query") is not None, data.get("bearer") is True]
        if sum(places) != 1:
            raise ValidationError("set exactly one of 'header' (a header name), 'query' (a query parameter) "
                                  "or 'bearer: true' (Authorization: Bearer <token>)", field_name="header")


class TokenSource(Source):
    """A shared token in a header, a query parameter or `Authorization: Bearer`, compared in constant time."""
    type_name = "token"
    schema = TokenSchema

    def verify(self, request: RawRequest) -> bool:
        return token_matches(self.secrets, self.given_token(request))

    def given_token(self, request: RawRequest) -> str | None:
        if self.options.get("bearer"):
            return bearer_token(request.headers.get("authorization"))
        if self.options.get("header"):
            return request.headers.get(self.options["header"].lower())
        return request.query.get(self.options["query"])

    def make_delivery(self, payload, request, index=0, count=1):
        """The token never reaches the rules document or the store, whatever its name."""
        header = "authorization" if self.options.get("bearer") else self.options.get("header")
        cleaned = without_credentials(request, headers=[header], query=[self.options.get("query")])
        return super().make_delivery(payload, cleaned, index, count)


# ---- type: basic -------------------------------------------------------------------------------

class UserField(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not value:
            raise ValidationError("is empty; expected the user name (usually ${SOME_VARIABLE})")
        if ":" in value:
            raise ValidationError("contains ':', which HTTP basic auth cannot carry in a user name")
        return value


class BasicSchema(SourceSchema):
    user = UserField(required=True)
    password = SecretsField()


class BasicSource(Source):
    """HTTP basic auth (`Authorization: Basic base64(user:password)`), both parts compared in
    constant time; `password` may be a list while a sender's password is being rotated."""
    type_name = "basic"
    schema = BasicSchema

    def __init__(self, name, options):
        super().__init__(name, options)
        self.secrets = options["password"]

    def verify(self, request: RawRequest) -> bool:
        pair = basic_pair(request.headers.get("authorization"))
        if pair is None:
            return False
        user, password = pair
        user_ok = same_bytes(self.options["user"].encode("utf-8"), user)
        return user_ok & token_matches(self.secrets, password)

    def make_delivery(self, payload, request, index=0, count=1):
        return super().make_delivery(payload, without_credentials(request, headers=["authorization"]), index, count)


def basic_pair(value: str | None) -> tuple[bytes, bytes] | None:
    encoded = auth_credentials(value, "basic")
    if encoded is None:
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True)
    except (ValueError, binascii.Error):
        return None
    user, colon, password = decoded.partition(b":")
    return (user, password) if colon else None


# ---- type: none --------------------------------------------------------------------------------

class NoVerificationSource(Source):
    """`type: none`: accepts anything. Only ever chosen explicitly in the rules file."""
    type_name = "none"

    def verify(self, request: RawRequest) -> bool:
        return True


TYPES: list = [HmacSource, TokenSource, BasicSource, NoVerificationSource]
