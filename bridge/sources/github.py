"""GitHub: `X-Hub-Signature-256: sha256=<hex>` over the raw body; JSON or form `payload=` bodies."""
from __future__ import annotations

from marshmallow import fields

from bridge.sources.base import RawRequest, SecretField, Source, SourceSchema
from bridge.sources.signatures import any_signature_matches

PREFIX = "sha256="


class GitHubSchema(SourceSchema):
    secret = SecretField()


class GitHubSource(Source):
    type_name = "github"
    schema = GitHubSchema

    def verify(self, request: RawRequest) -> bool:
        header = request.headers.get("x-hub-signature-256", "")
        if not header.startswith(PREFIX):
            return False
        return any_signature_matches(self.secrets, request.body, "sha256", "hex", [header[len(PREFIX):]])

    def event_type(self, document, request):
        return request.headers.get("x-github-event") or super().event_type(document, request)

    def delivery_id(self, document, request):
        return request.headers.get("x-github-delivery") or super().delivery_id(document, request)
