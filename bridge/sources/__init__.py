"""Source types by their `type:` name in the rules file."""
from bridge.sources.base import Delivery, RawRequest, Source
from bridge.sources.errors import BadRequestBody, Unverified
from bridge.sources.generic import HmacSource, NoVerificationSource, TokenSource
from bridge.sources.github import GitHubSource

SOURCE_TYPES: dict[str, type[Source]] = {
    cls.type_name: cls for cls in (GitHubSource, HmacSource, TokenSource, NoVerificationSource)
}

__all__ = ["SOURCE_TYPES", "BadRequestBody", "Delivery", "RawRequest", "Source", "Unverified"]
