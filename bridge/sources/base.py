"""What every source shares: the raw request it sees, the delivery it makes, its config fields.

A source is the only stage that can turn a request into a *verified* delivery. `Source.receive`
runs the same steps for every sender, and each family overrides only the steps it needs:

    check_ip -> verify (raw bytes) -> parse (body, envelopes) -> handshake? -> split -> deliveries

Any source may also carry `unwrap: sns | pubsub | eventgrid`: after its own check passes, the body
is read as that cloud envelope (its handshakes answered, its batches split into `Item`s), so a
`token` or `basic` endpoint can receive an SNS subscription, a Pub/Sub push or an Event Grid
delivery. The cloud envelope types themselves refuse the key: they unwrap already.
"""
from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field, replace
from typing import Any, Callable, ClassVar

import jmespath
from marshmallow import Schema, ValidationError, fields, validate

from bridge.sources.bodies import parse_body
from bridge.sources.errors import BadRequestBody, Unverified  # noqa: F401  (re-exported)

DEFAULT_MAX_BODY = 5 * 1024 * 1024
DEFAULT_TOLERANCE = 300.0
UNWRAP_KINDS = ("sns", "pubsub", "eventgrid")


@dataclass(frozen=True)
class RawRequest:
    body: bytes                      # after transport decoding (gzip, deflate), before anything else
    headers: dict[str, str]          # names lower-cased
    query: dict[str, str]
    content_type: str = ""
    method: str = "POST"
    received_at: float = 0.0         # the bridge's clock, for timestamp tolerance
    client_ip: str | None = None     # as far as the trusted proxies vouch for it
    raw_body: bytes | None = None    # the bytes as sent, when a transport encoding was removed


@dataclass(frozen=True)
class Reply:
    """A handshake the source answers itself (a challenge, a validation code): no event is stored."""
    status: int = 200
    body: Any = None                 # dict/list -> JSON, str/bytes -> as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass(frozen=True)
class Item:
    """One event cut out of an envelope, with the sender's defaults for its type and id.
    A YAML `event:` / `delivery_id:` expression wins over those defaults whenever it yields a value."""
    payload: Any
    event_type: str | None = None
    delivery_id: str | None = None


@dataclass(frozen=True)
class Delivery:
    """One verified, parsed event as the source saw it; rules read `document`."""
    source: str
    event_type: str | None
    delivery_id: str | None
    payload: Any
    headers: dict[str, str]
    query: dict[str, str]

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


class SecretsField(fields.Field):
    """One secret or a list of them (rotation: any one matches). Empty or unset is a config error."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", True)
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> list[str]:
        values = value if isinstance(value, list) else [value]
        if not values:
            raise ValidationError("is empty; expected a secret or a list of secrets")
        for item in values:
            if item is None or item == "":
                raise ValidationError("is empty; expected a secret (usually ${SOME_VARIABLE}) "
                                      "or a list of secrets")
            if not isinstance(item, str):
                raise ValidationError(f"is a {type(item).__name__}; expected a secret as a string, "
                                      "usually \"${SOME_VARIABLE}\"")
            if not item.strip():
                raise ValidationError("is only whitespace; expected a real secret")
        return values


# Kept for sources written against the single-secret field name.
SecretField = SecretsField


class DurationField(fields.Field):
    """`30s`, `5m`, `1h` or seconds; the rules package owns the format."""

    def _deserialize(self, value, attr, data, **kwargs) -> float:
        from bridge.rules.durations import parse_duration
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ValidationError(str(exc))


class NetworksField(fields.Field):
    """A list of CIDR blocks (or single addresses) the sender's requests come from."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list) or not value:
            raise ValidationError("expected a non-empty list of CIDR blocks such as 192.0.2.0/24")
        networks, bad = [], []
        for item in value:
            try:
                networks.append(ipaddress.ip_network(str(item), strict=False))
            except ValueError:
                bad.append(repr(item))
        if bad:
            raise ValidationError(f"{', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not an IP address or "
                                  "CIDR block; expected e.g. 192.0.2.0/24 or 2001:db8::/32")
        return tuple(networks)


class SourceSchema(Schema):
    type = fields.String(required=True)
    event = JMESPathField(load_default=None)
    delivery_id = JMESPathField(load_default=None)
    max_body = fields.Integer(load_default=DEFAULT_MAX_BODY, validate=validate.Range(
        min=1, max=100 * 1024 * 1024, error="must be from 1 to 104857600 (bytes); the default is 5242880"))
    allow_ips = NetworksField(load_default=None)
    unwrap = fields.String(load_default=None, validate=validate.OneOf(
        UNWRAP_KINDS, error="must be one of: sns, pubsub, eventgrid (the cloud envelope the body comes in)"))


class Source:
    type_name: ClassVar[str]
    schema: ClassVar[type[Schema]] = SourceSchema
    # Outbound HTTP GET (url -> body bytes) for the few senders a source must call back
    # (SNS subscription confirmation, signing certificates). The app sets it; tests replace it.
    outbound: Callable[[str], bytes] | None = None
    # False for senders whose envelope carries a secret (Business Central's clientState): the
    # event then keeps its parsed payload, which the source stripped of the secret, not the bytes.
    store_raw_body: ClassVar[bool] = True

    def __init__(self, name: str, options: dict[str, Any]):
        self.name = name
        self.options = options
        self.secrets: list[str] = options.get("secret") or []
        self.max_body: int = options.get("max_body", DEFAULT_MAX_BODY)

    def __repr__(self) -> str:  # never show options: they hold secrets
        return f"<{type(self).__name__} {self.name!r}>"

    # ---- the steps of receive, in order; families override what they need -----------------

    def receive(self, request: RawRequest) -> list[Delivery] | Reply:
        if not self.ip_allowed(request):
            raise Unverified()
        early = self.before_verify(request)
        if early is not None:
            return early
        if not self.verified(request):
            raise Unverified()
        payload = self.parse(request)
        reply = self.handshake(payload, request)
        if reply is None and self.options.get("unwrap"):
            reply = unwrap_handshake(self, payload, request)
        if reply is not None:
            return reply
        items = self.split(payload, request)
        return [self.make_delivery(item, request, index, len(items)) for index, item in enumerate(items)]

    def options_request(self, request: RawRequest) -> Reply | None:
        """An HTTP OPTIONS handshake (CloudEvents webhooks); None means 405."""
        return None

    def ip_allowed(self, request: RawRequest) -> bool:
        networks = self.options.get("allow_ips")
        if not networks:
            return True
        try:
            address = ipaddress.ip_address(request.client_ip or "")
        except ValueError:
            return False
        return any(address in network for network in networks)

    def before_verify(self, request: RawRequest) -> Reply | None:
        """Handshakes a sender makes before it signs anything (e.g. a validation token echo)."""
        return None

    def verified(self, request: RawRequest) -> bool:
        """Senders sign what they send before transport compression, but accept a signature over
        the compressed bytes too: both are bytes the sender authenticated."""
        if self.verify(request):
            return True
        return request.raw_body is not None and self.verify(replace(request, body=request.raw_body))

    def verify(self, request: RawRequest) -> bool:
        raise NotImplementedError

    def parse(self, request: RawRequest) -> Any:
        return parse_body(request.body, request.content_type)

    def handshake(self, payload: Any, request: RawRequest) -> Reply | None:
        return None

    def split(self, payload: Any, request: RawRequest) -> list[Any]:
        """One event per item where the sender batches; most senders send one. Under `unwrap:`
        the envelope's events, as `Item`s."""
        if self.options.get("unwrap"):
            return unwrap_items(self.options["unwrap"], payload)
        return [payload]

    def make_delivery(self, payload: Any, request: RawRequest, index: int = 0, count: int = 1) -> Delivery:
        if isinstance(payload, Item):
            return self.item_delivery(payload, request, index, count)
        document = {"source": self.name, "event": None, "payload": payload,
                    "headers": request.headers, "query": request.query}
        delivery_id = self.delivery_id(document, request)
        if delivery_id is not None and count > 1 and not self.item_ids_are_unique:
            delivery_id = f"{delivery_id}#{index}"
        return Delivery(self.name, self.event_type(document, request), delivery_id, payload,
                        request.headers, request.query)

    def item_delivery(self, item: Item, request: RawRequest, index: int, count: int) -> Delivery:
        """A YAML `event:` / `delivery_id:` first, then the envelope's defaults in the Item, then
        whatever the source's own type would name (a sender header, say)."""
        document = {"source": self.name, "event": None, "payload": item.payload,
                    "headers": request.headers, "query": request.query}
        configured_type = text_or_none(search_text(self.options.get("event"), document))
        event_type = configured_type or item.event_type or text_or_none(self.event_type(document, request))
        configured_id = text_or_none(search_text(self.options.get("delivery_id"), document))
        delivery_id = configured_id or item.delivery_id or text_or_none(self.delivery_id(document, request))
        unique = UNWRAP_IDS_UNIQUE[self.options["unwrap"]] if self.options.get("unwrap") else self.item_ids_are_unique
        # A configured expression may read a value shared by the whole batch: suffix it to be safe.
        if delivery_id is not None and count > 1 and (configured_id or not unique):
            delivery_id = f"{delivery_id}#{index}"
        return Delivery(self.name, event_type, delivery_id, item.payload, request.headers, request.query)

    # Set when delivery_id reads a per-item id (Event Grid), so batch items need no suffix.
    item_ids_are_unique: ClassVar[bool] = False

    def event_type(self, document: dict, request: RawRequest) -> str | None:
        return search_text(self.options.get("event"), document)

    def delivery_id(self, document: dict, request: RawRequest) -> str | None:
        return search_text(self.options.get("delivery_id"), document)


# Whether each envelope's items carry ids of their own (Event Grid: each event's id) or share one
# (an SNS MessageId over several S3 records gets `#0`, `#1`...).
UNWRAP_IDS_UNIQUE = {"sns": False, "pubsub": True, "eventgrid": True}


def unwrap_items(kind: str, payload: Any) -> list[Item]:
    """The events of the `kind` envelope. The cloud modules import this one: import them late."""
    from bridge.sources import unwrap
    return unwrap.items(kind, payload)


def unwrap_handshake(source: Source, payload: Any, request: RawRequest) -> Reply | None:
    from bridge.sources import unwrap
    return unwrap.handshake(source, payload, request)


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


def search_text(expression, document) -> str | None:
    """A configured JMESPath read as text; structures and nulls are no usable id or type."""
    if expression is None:
        return None
    try:
        value = expression.search(document)
    except (jmespath.exceptions.JMESPathError, RecursionError, TypeError, ValueError):
        return None
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def same_bytes(expected: bytes, given: bytes) -> bool:
    """Constant-time comparison on bytes."""
    return hmac.compare_digest(expected, given)


def token_matches(secrets: list[str], given: str | bytes | None) -> bool:
    """A shared token (or password) against every configured secret, in constant time, on bytes;
    every secret is compared, with no early exit, so timing does not tell which one matched."""
    if given is None:
        return False
    given_bytes = given if isinstance(given, bytes) else header_bytes(given)
    matched = False
    for secret in secrets:
        matched |= same_bytes(secret.encode("utf-8"), given_bytes)
    return matched


def first_header(headers: dict[str, str], names) -> str | None:
    """The first of a sender's header names that is present and not empty (names lower-cased)."""
    for name in names:
        value = headers.get(name)
        if value:
            return value
    return None


def auth_credentials(value: str | None, scheme: str) -> str | None:
    """The credentials after an Authorization scheme name (compared case-insensitively, as HTTP says)."""
    if not value:
        return None
    name, _, rest = value.strip().partition(" ")
    if name.lower() != scheme or not rest.strip():
        return None
    return rest.strip()


def bearer_token(value: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, else None."""
    return auth_credentials(value, "bearer")


def header_bytes(value: str) -> bytes:
    """Header text back to the bytes that were sent (WSGI decodes headers as latin-1)."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape")
