"""Senders without a family of their own: a configurable HMAC, a shared token, or nothing at all."""
from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from bridge.sources.base import RawRequest, SecretField, Source, SourceSchema, header_bytes, same_bytes
from bridge.sources.signatures import ALGORITHMS, ENCODINGS, any_signature_matches


class HmacSchema(SourceSchema):
    secret = SecretField()
    header = fields.String(required=True, validate=validate.Length(min=1))
    algorithm = fields.String(load_default="sha256", validate=validate.OneOf(sorted(ALGORITHMS)))
    encoding = fields.String(load_default="hex", validate=validate.OneOf(ENCODINGS))
    prefix = fields.String(load_default="")


class HmacSource(Source):
    type_name = "hmac"
    schema = HmacSchema

    def verify(self, request: RawRequest) -> bool:
        given = request.headers.get(self.options["header"].lower(), "")
        prefix = self.options["prefix"]
        if not given.startswith(prefix):
            return False
        return any_signature_matches(self.secrets, request.body, self.options["algorithm"],
                                     self.options["encoding"], [given[len(prefix):]])


class TokenSchema(SourceSchema):
    secret = SecretField()
    header = fields.String(load_default=None, validate=validate.Length(min=1))
    query = fields.String(load_default=None, validate=validate.Length(min=1))

    @validates_schema
    def one_place(self, data, **kwargs):
        if (data.get("header") is None) == (data.get("query") is None):
            raise ValidationError("set exactly one of 'header' (a header name) or 'query' (a query parameter)",
                                  field_name="header")


class TokenSource(Source):
    """A shared token in a header or a query parameter, compared in constant time."""
    type_name = "token"
    schema = TokenSchema

    def verify(self, request: RawRequest) -> bool:
        if self.options.get("header"):
            given = request.headers.get(self.options["header"].lower())
        else:
            given = request.query.get(self.options["query"])
        if given is None:
            return False
        given_bytes = header_bytes(given)
        matched = False
        for secret in self.secrets:
            matched |= same_bytes(secret.encode("utf-8"), given_bytes)
        return matched


class NoVerificationSource(Source):
    """`type: none`: accepts anything. Only ever chosen explicitly in the rules file."""
    type_name = "none"

    def verify(self, request: RawRequest) -> bool:
        return True
