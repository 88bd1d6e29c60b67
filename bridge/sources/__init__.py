"""Source types by their `type:` name in the rules file, gathered from one module per family."""
from bridge.sources.base import Delivery, RawRequest, Reply, Source
from bridge.sources.bodies import decode_transport
from bridge.sources.errors import BadRequestBody, BodyTooLarge, UnsupportedEncoding, Unverified
from bridge.sources.github import GitHubSource
from bridge.sources import cloud, codehosts, generic, saas

SOURCE_TYPES: dict[str, type[Source]] = {
    cls.type_name: cls
    for cls in (GitHubSource, *generic.TYPES, *codehosts.TYPES, *saas.TYPES, *cloud.TYPES)
}

__all__ = ["SOURCE_TYPES", "BadRequestBody", "BodyTooLarge", "Delivery", "RawRequest", "Reply", "Source",
           "UnsupportedEncoding", "Unverified", "decode_transport"]
