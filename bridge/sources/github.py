"""GitHub: `X-Hub-Signature-256: sha256=<hex>` over the raw body; JSON or form `payload=` bodies.

The legacy `X-Hub-Signature: sha1=<hex>` counts only with `allow_sha1: true`, and only when no
SHA-256 header came: a request cannot downgrade itself by sending a wrong SHA-256 and a right SHA-1.

Gitea, Forgejo and Gogs imitate GitHub: they send `X-GitHub-Event` and a valid
`X-Hub-Signature-256`. Their payloads are shaped differently, so a delivery that names itself as one
of them is refused here (it belongs to a `gitea` source), whatever its signature.

`ping` (sent when a hook is created) is stored like any event: GitHub only needs a 2xx, and the
stored ping shows in `GET /events/<id>` that the hook reaches the bridge with the right secret.
"""
from __future__ import annotations

from marshmallow import fields

from bridge.sources.base import RawRequest, SecretsField, SourceSchema
from bridge.sources.bodies import media_type_and_charset
from bridge.sources.errors import BadRequestBody
from bridge.sources.generic import SenderSource
from bridge.sources.signatures import ALGORITHMS, any_signature_matches

# Senders that copy GitHub's headers; any of their own headers marks a delivery as theirs.
LOOKALIKE_SENDERS = ("forgejo", "gitea", "gogs")
LOOKALIKE_HEADERS = tuple(f"x-{sender}-{part}" for sender in LOOKALIKE_SENDERS
                          for part in ("signature", "event", "delivery"))


class GitHubSchema(SourceSchema):
    secret = SecretsField()
    allow_sha1 = fields.Boolean(load_default=False)


class GitHubSource(SenderSource):
    type_name = "github"
    schema = GitHubSchema
    event_headers = ("x-github-event",)
    delivery_headers = ("x-github-delivery",)

    def verify(self, request: RawRequest) -> bool:
        headers = request.headers
        if any(name in headers for name in LOOKALIKE_HEADERS):
            return False
        if "x-hub-signature-256" in headers:
            return prefixed_hmac_valid(self.secrets, request.body, headers["x-hub-signature-256"], ("sha256",))
        if self.options.get("allow_sha1") and "x-hub-signature" in headers:
            return prefixed_hmac_valid(self.secrets, request.body, headers["x-hub-signature"], ("sha1",))
        return False

    def parse(self, request: RawRequest):
        """GitHub always sends one JSON object, as the body or as the form field `payload`; anything
        else passed the signature but is not a GitHub event: 400, so it is neither stored nor lost
        behind a 2xx (a JSON body sent with curl's default form content type lands here too)."""
        media_type, _ = media_type_and_charset(request.content_type)
        if media_type == "application/x-www-form-urlencoded" and not _has_payload_field(request.body):
            raise BadRequestBody("a GitHub form body carries the event as JSON in the field 'payload'; "
                                 "set the webhook's content type, or send Content-Type: application/json")
        payload = super().parse(request)
        if not isinstance(payload, dict):
            raise BadRequestBody("a GitHub event is a JSON object")
        return payload


def _has_payload_field(body: bytes) -> bool:
    return body.startswith(b"payload=") or b"&payload=" in body


def prefixed_hmac_valid(secrets, body: bytes, header: str, allowed: tuple[str, ...]) -> bool:
    """`<algorithm>=<hex>`: the algorithm comes from the prefix, never from the header's name, and
    must be one the source accepts. Any secret may match (rotation)."""
    algorithm, sep, value = header.partition("=")
    if not sep or algorithm not in allowed or algorithm not in ALGORITHMS:
        return False
    return any_signature_matches(secrets, body, algorithm, "hex", [value])
