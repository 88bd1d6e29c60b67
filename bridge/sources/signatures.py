"""HMAC signing helpers shared by every source that signs its body."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re

from bridge.sources.base import header_bytes

ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
ENCODINGS = ("hex", "base64")
MAX_SIGNATURES = 16          # more than any sender sends while rotating; caps the HMAC work per request
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def digest(secret: str | bytes, message: bytes, algorithm: str) -> bytes:
    key = secret if isinstance(secret, bytes) else secret.encode("utf-8")
    return hmac.new(key, message, ALGORITHMS[algorithm]).digest()


def decode_signature(text: str, encoding: str) -> bytes | None:
    """The raw bytes a sender's signature text stands for, or None if it is not well formed."""
    try:
        if encoding == "hex":
            return bytes.fromhex(text)
        return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        return None


def signature_matches(secret: str | bytes, message: bytes, algorithm: str, encoding: str, given: str) -> bool:
    expected = digest(secret, message, algorithm)
    given_bytes = decode_signature(given.strip(), encoding)
    if given_bytes is None:
        return False
    return hmac.compare_digest(expected, given_bytes)


def any_signature_matches(secrets, message: bytes, algorithm: str, encoding: str, candidates) -> bool:
    """Rotation on both sides: any secret against any signature the sender gave.

    Each secret's HMAC is computed once (a 5 MiB body times every pair would be a cheap way to burn
    our CPU), more than MAX_SIGNATURES signatures are refused, and every pair is compared with no
    early exit, so timing does not tell which one matched."""
    given = [decode_signature(text.strip(), encoding) for text in candidates]
    given = [value for value in given if value is not None]
    if not given or len(given) > MAX_SIGNATURES:
        return False
    matched = False
    for secret in secrets:
        expected = digest(secret, message, algorithm)
        for value in given:
            matched |= hmac.compare_digest(expected, value)
    return matched


def fresh_unix_seconds(text: str | None, now: float, tolerance: float) -> bool:
    """Signed timestamps are ASCII decimal seconds; anything else (1e9, ' 12', non-ASCII) fails."""
    if text is None or not _UNIX_SECONDS.fullmatch(text):
        return False
    return timestamp_fresh(text, now, tolerance)


def timestamp_fresh(text: str | None, now: float, tolerance: float) -> bool:
    """A sender's signed Unix timestamp (seconds) within `tolerance` of our clock, either way."""
    if text is None:
        return False
    try:
        value = float(text.strip())
    except ValueError:
        return False
    if not math.isfinite(value):
        return False
    return abs(now - value) <= tolerance


# ---- Standard Webhooks (https://www.standardwebhooks.com): GitLab's signing token uses it too ----

STANDARD_WEBHOOKS_PREFIX = "whsec_"


def standard_webhooks_key(secret: str) -> bytes | None:
    """The HMAC key a `whsec_<base64>` secret stands for (the prefix is optional, as in the reference
    libraries); None when the rest is not base64 or decodes to nothing, so a config check can refuse it."""
    text = secret[len(STANDARD_WEBHOOKS_PREFIX):] if secret.startswith(STANDARD_WEBHOOKS_PREFIX) else secret
    key = decode_signature(text, "base64")
    return key or None


def standard_webhooks_valid(secrets, msg_id: str | None, timestamp: str | None, body: bytes,
                            signature_header: str | None, now: float, tolerance: float) -> bool:
    """HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`, base64, in space-separated `v1,<sig>`
    entries (the sender lists one per key while it rotates). The timestamp must be whole seconds
    within `tolerance` of `now`, so a captured request cannot be replayed later.

    Every secret is compared against every v1 entry with no early exit; other versions (`v1a,` is
    the asymmetric variant) are ignored, not errors."""
    if not msg_id or not signature_header or timestamp is None:
        return False
    if not fresh_unix_seconds(timestamp, now, tolerance):
        return False
    message = header_bytes(msg_id) + b"." + timestamp.encode("ascii") + b"." + body
    candidates = []
    for entry in signature_header.split(" "):
        version, _, value = entry.partition(",")
        decoded = decode_signature(value, "base64") if version == "v1" else None
        if decoded is not None:
            candidates.append(decoded)
    matched = False
    for secret in secrets:
        key = standard_webhooks_key(secret)
        expected = hmac.new(key or b"", message, hashlib.sha256).digest()
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate) and key is not None
    return matched

