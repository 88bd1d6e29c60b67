"""The two ways a source refuses a request."""


class BadRequestBody(ValueError):
    """The body passed verification but cannot be read: the sender gets a 400."""


class Unverified(Exception):
    """Verification failed. Deliberately carries no detail: the sender gets a bare 401."""
