"""Code hosts other than GitHub: GitLab, Gitea (with Forgejo and Gogs), Bitbucket Cloud and Data Center.

Each type reads its sender's own headers for the event type and the delivery id; a YAML `event:` or
`delivery_id:` expression wins whenever it yields a value. (GitHub itself is in github.py.)
"""
from __future__ import annotations

import hmac

from marshmallow import ValidationError, fields, validates_schema

from bridge.sources.base import (DEFAULT_TOLERANCE, DurationField, RawRequest, SecretsField, SourceSchema,
                                 token_matches)
from bridge.sources.generic import SenderSource
from bridge.sources.github import LOOKALIKE_SENDERS, prefixed_hmac_valid
from bridge.sources.signatures import decode_signature, digest, standard_webhooks_key, standard_webhooks_valid


# ---- GitLab -----------------------------------------------------------------------------------

class SigningSecretsField(SecretsField):
    """Standard Webhooks secrets (`whsec_<base64>`): a value that is no key is a config error."""

    def _deserialize(self, value, attr, data, **kwargs) -> list[str]:
        secrets = super()._deserialize(value, attr, data, **kwargs)
        for secret in secrets:
            if standard_webhooks_key(secret) is None:
                raise ValidationError("is not a signing token; expected whsec_ followed by base64, "
                                      "as GitLab shows it when you create the signing token")
        return secrets


class GitLabSchema(SourceSchema):
    secret = SecretsField(required=False, load_default=None, allow_none=False)
    signing_secret = SigningSecretsField(required=False, load_default=None, allow_none=False)
    tolerance = DurationField(load_default=DEFAULT_TOLERANCE)

    @validates_schema
    def something_to_check(self, data, **kwargs):
        if not data.get("secret") and not data.get("signing_secret"):
            raise ValidationError("is missing; expected secret (GitLab's secret token, sent as X-Gitlab-Token), "
                                  "signing_secret (its signing token, whsec_...), or both", field_name="secret")


class GitLabSource(SenderSource):
    """`X-Gitlab-Token` is the secret token itself; the signing token signs id, timestamp and body.

    Every check that is configured must pass: with both set, a request needs the token and a fresh
    signature. The signature is the stronger one (the token alone can be replayed forever)."""
    type_name = "gitlab"
    schema = GitLabSchema
    event_headers = ("x-gitlab-event",)
    # Idempotency-Key stays the same when GitLab retries; webhook-id equals it; the webhook UUID is
    # the only id older GitLab versions send.
    delivery_headers = ("idempotency-key", "webhook-id", "x-gitlab-webhook-uuid")

    def sender_delivery_id(self, document, request):
        """With a signing secret the signed webhook-id names the delivery: the unsigned
        Idempotency-Key could be changed to slip a replay past deduplication."""
        if self.options.get("signing_secret"):
            return request.headers.get("webhook-id") or None
        return super().sender_delivery_id(document, request)

    def verify(self, request: RawRequest) -> bool:
        checks = []
        if self.secrets:
            checks.append(token_matches(self.secrets, request.headers.get("x-gitlab-token")))
        if self.options.get("signing_secret"):
            headers = request.headers
            checks.append(standard_webhooks_valid(
                self.options["signing_secret"], headers.get("webhook-id"), headers.get("webhook-timestamp"),
                request.body, headers.get("webhook-signature"), request.received_at, self.options["tolerance"]))
        return bool(checks) and all(checks)


# ---- Gitea, Forgejo, Gogs ---------------------------------------------------------------------

class GiteaSchema(SourceSchema):
    secret = SecretsField()


class GiteaSource(SenderSource):
    """Bare hex HMAC-SHA256 of the body, under each sender's own header name.

    Forgejo sends its own, Gitea's and Gogs' headers; Gitea sends Gitea's and Gogs'; Gogs its own.
    Every one present must match, and at least one must be there. The GitHub-style headers they
    also send are ignored, so a real GitHub delivery never passes here."""
    type_name = "gitea"
    schema = GiteaSchema
    event_headers = tuple(f"x-{sender}-event" for sender in LOOKALIKE_SENDERS)
    delivery_headers = tuple(f"x-{sender}-delivery" for sender in LOOKALIKE_SENDERS)
    signature_headers = tuple(f"x-{sender}-signature" for sender in LOOKALIKE_SENDERS)

    def verify(self, request: RawRequest) -> bool:
        given = [request.headers[name] for name in self.signature_headers if name in request.headers]
        return bool(given) and all_hex_match(self.secrets, request.body, "sha256", given)


def all_hex_match(secrets, body: bytes, algorithm: str, signatures: list[str]) -> bool:
    """Each hex signature matches one of the secrets; the body is hashed once per secret."""
    decoded = [decode_signature(text, "hex") for text in signatures]
    matched = [False] * len(decoded)
    for secret in secrets:
        expected = digest(secret, body, algorithm)
        for index, given in enumerate(decoded):
            matched[index] |= given is not None and hmac.compare_digest(expected, given)
    return all(matched)


# ---- Bitbucket Cloud and Data Center ----------------------------------------------------------

class BitbucketSchema(SourceSchema):
    secret = SecretsField()
    allow_sha1 = fields.Boolean(load_default=False)


class BitbucketSource(SenderSource):
    """`X-Hub-Signature: sha256=<hex>`: GitHub's legacy SHA-1 header name, but SHA-256 inside.

    The algorithm comes from the prefix; `sha1=` counts only with `allow_sha1: true`. Both
    Bitbucket editions always send `X-Event-Key`; a request without it (a GitHub or Gitea delivery
    signed with the same secret) is not Bitbucket's and is refused."""
    type_name = "bitbucket"
    schema = BitbucketSchema
    event_headers = ("x-event-key",)
    delivery_headers = ("x-request-uuid", "x-request-id")   # Cloud, Data Center

    def verify(self, request: RawRequest) -> bool:
        header = request.headers.get("x-hub-signature")
        if header is None or not request.headers.get("x-event-key"):
            return False
        allowed = ("sha256", "sha1") if self.options.get("allow_sha1") else ("sha256",)
        return prefixed_hmac_valid(self.secrets, request.body, header, allowed)


TYPES = [GitLabSource, GiteaSource, BitbucketSource]
