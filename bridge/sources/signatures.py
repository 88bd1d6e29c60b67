"""HMAC signing helpers shared by every source that signs its body."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
ENCODINGS = ("hex", "base64")


def digest(secret: str, message: bytes, algorithm: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), message, ALGORITHMS[algorithm]).digest()


def decode_signature(text: str, encoding: str) -> bytes | None:
    """The raw bytes a sender's signature text stands for, or None if it is not well formed."""
    try:
        if encoding == "hex":
            return bytes.fromhex(text)
        return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        return None


def signature_matches(secret: str, message: bytes, algorithm: str, encoding: str, given: str) -> bool:
    expected = digest(secret, message, algorithm)
    given_bytes = decode_signature(given.strip(), encoding)
    if given_bytes is None:
        return False
    return hmac.compare_digest(expected, given_bytes)
