"""HMAC signing helpers shared by every source that signs its body."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math

ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
ENCODINGS = ("hex", "base64")


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
    """Rotation on both sides: any configured secret against any signature the sender gave.

    Every pair is compared, with no early exit, so timing does not tell which secret matched."""
    matched = False
    for secret in secrets:
        for candidate in candidates:
            matched |= signature_matches(secret, message, algorithm, encoding, candidate)
    return matched


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
