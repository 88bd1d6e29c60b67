"""Google Cloud Pub/Sub push subscriptions: `{"message": {"data": base64, "attributes", "messageId",
"publishTime"}, "subscription"}`.

Pub/Sub signs nothing in the body. A push endpoint is protected by either (or both):
- a shared `token` in the endpoint URL's query, compared in constant time;
- the OIDC token Pub/Sub sends as `Authorization: Bearer <JWT>` when the subscription has
  authentication on: RS256 against Google's published keys (fetched only from GOOGLE_CERTS_URL,
  cached), issued by Google, for our `audience`, by the service account `email` (verified), and
  within its exp/iat window by the bridge's clock. The email matters as much as the audience:
  any Google account can mint a token for any audience.
A source with neither is a config error, unless it says `verify: none`.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from marshmallow import ValidationError, fields, validate, validates_schema

from bridge.sources.base import BadRequestBody, RawRequest, SecretsField, bearer_token, token_matches
from bridge.sources.cloud_common import EnvelopeSchema, EnvelopeSource, Item, StringListField, text_or_none

log = logging.getLogger("bridge.sources.pubsub")

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v3/certs"
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
CLOCK_SKEW = 60.0          # seconds of clock difference allowed around exp and iat
KEYS_MAX_AGE = 3600.0      # Google rotates its keys over days; refresh hourly
UNKNOWN_KID_REFETCH = 60.0  # an unknown key id refetches at most this often (hostile ids cannot hammer Google)


class PubSubSchema(EnvelopeSchema):
    secret = SecretsField(required=False, load_default=None)
    query = fields.String(load_default="token", validate=validate.Length(min=1))
    audience = StringListField(load_default=None)
    email = StringListField(load_default=None)
    attribute = fields.String(load_default="eventType", validate=validate.Length(min=1))
    verify = fields.String(load_default=None, validate=validate.OneOf(["none"]))

    @validates_schema
    def some_check(self, data, **kwargs):
        if (data.get("audience") is None) != (data.get("email") is None):
            raise ValidationError("set both 'audience' and 'email' (the push subscription's service account): "
                                  "a token for our audience alone can come from any Google account",
                                  field_name="audience")
        has_check = data.get("secret") is not None or data.get("audience") is not None
        if data.get("verify") == "none" and has_check:
            raise ValidationError("'verify: none' turns checks off; remove it or the checks", field_name="verify")
        if data.get("verify") is None and not has_check:
            raise ValidationError("set 'secret' (a token in the push URL's query) and/or 'audience' and 'email' "
                                  "(the push subscription's OIDC token), or 'verify: none' explicitly",
                                  field_name="secret")


class PubSubSource(EnvelopeSource):
    type_name = "pubsub"
    schema = PubSubSchema
    item_ids_are_unique = True

    def __init__(self, name, options):
        super().__init__(name, options)
        self.google_keys: dict[str, Any] = {}
        self.keys_fetched_at: float | None = None

    # ---- verification ---------------------------------------------------------------------

    def verify(self, request: RawRequest) -> bool:
        if self.options.get("verify") == "none":
            return True
        token_ok = self.secrets == [] or token_matches(self.secrets, request.query.get(self.options["query"]))
        oidc_ok = self.options.get("audience") is None or self.oidc_valid(request)
        return token_ok and oidc_ok

    def oidc_valid(self, request: RawRequest) -> bool:
        token = bearer_token(request.headers.get("authorization"))
        if token is None or not token.isascii():
            return False
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return False
        if header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
            return False
        key = self.google_key(header["kid"], request.received_at)
        if key is None:
            return False
        try:
            claims = jwt.decode(token, key, algorithms=["RS256"], audience=list(self.options["audience"]),
                                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                                         "verify_iss": False, "require": ["exp", "iat", "iss", "aud"]})
        except (jwt.PyJWTError, ValueError, TypeError):
            return False
        return self.claims_valid(claims, request.received_at)

    def claims_valid(self, claims: dict, now: float) -> bool:
        """Issuer, service account and time window, the last by the bridge's clock (tests pin it)."""
        exp, iat = claims.get("exp"), claims.get("iat")
        if not all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in (exp, iat)):
            return False
        return (claims.get("iss") in GOOGLE_ISSUERS
                and claims.get("email") in self.options["email"]
                and claims.get("email_verified") is True
                and now < exp + CLOCK_SKEW
                and iat <= now + CLOCK_SKEW)

    def google_key(self, kid: str, now: float):
        """Google's public key `kid`; refreshed hourly, or sooner (rate-limited) for an unknown id."""
        age = None if self.keys_fetched_at is None else now - self.keys_fetched_at
        stale = age is None or age > KEYS_MAX_AGE or age < 0
        if stale or (kid not in self.google_keys and age > UNKNOWN_KID_REFETCH):
            self.refresh_keys(now)
        return self.google_keys.get(kid)

    def refresh_keys(self, now: float) -> None:
        raw = self.fetch(GOOGLE_CERTS_URL)
        self.keys_fetched_at = now
        if raw is None:
            log.warning("source %s: could not fetch Google's token keys", self.name)
            return
        try:
            keys = jwt.PyJWKSet.from_json(raw.decode("utf-8")).keys
        except (jwt.PyJWTError, UnicodeDecodeError, ValueError, TypeError, KeyError):
            log.warning("source %s: Google's token keys could not be read", self.name)
            return
        self.google_keys = {key.key_id: key.key for key in keys
                            if isinstance(key.key_id, str) and isinstance(key.key, rsa.RSAPublicKey)}

    # ---- after verification ---------------------------------------------------------------

    def split(self, body: Any, request: RawRequest) -> list[Item]:
        return push_items(body, self.options["attribute"])


def push_items(body: Any, attribute: str) -> list[Item]:
    """The one message of a push: its decoded data, the event type from `attribute`, its messageId."""
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict):
        raise BadRequestBody("not a Pub/Sub push body: expected an object with a 'message' object")
    attributes = message.get("attributes")
    attributes = attributes if isinstance(attributes, dict) else {}
    message_id = text_or_none(message.get("messageId")) or text_or_none(message.get("message_id"))
    return [Item(decode_data(message.get("data")), text_or_none(attributes.get(attribute)), message_id)]


def decode_data(data: Any) -> Any:
    """message.data is base64: JSON inside becomes the document; UTF-8 text stays text; other
    bytes stay the base64 text they came as. An attributes-only message has no data (None)."""
    if data is None or data == "":
        return None
    if not isinstance(data, str):
        raise BadRequestBody("message.data is not a base64 string")
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        try:  # the URL-safe alphabet, which some publishers use
            raw = base64.b64decode(data.encode("ascii"), altchars=b"-_", validate=True)
        except (UnicodeEncodeError, binascii.Error, ValueError):
            raise BadRequestBody("message.data is not valid base64")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return data
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # ValueError: also an over-long integer
        return text


TYPES = [PubSubSource]
