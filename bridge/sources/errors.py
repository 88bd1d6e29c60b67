"""The ways a request is refused before it becomes an event."""


class BadRequestBody(ValueError):
    """The body passed verification but cannot be read: the sender gets a 400."""


class Unverified(Exception):
    """Verification failed. Deliberately carries no detail: the sender gets a bare 401."""


class BodyTooLarge(ValueError):
    """The body, or what it decompresses to, is over the source's cap: 413."""


class UnsupportedEncoding(ValueError):
    """A Content-Encoding we do not decode: 415."""
