"""Bodies: transport decoding with a size cap, then JSON, GitHub's form `payload=`, or JSON as text."""
from __future__ import annotations

import codecs
import json
import zlib
from typing import Any
from urllib.parse import parse_qs

from bridge.sources.errors import BadRequestBody, BodyTooLarge, UnsupportedEncoding

CHUNK = 64 * 1024


def decode_transport(raw: bytes, content_encoding: str, limit: int) -> bytes:
    """Undo gzip/deflate, never producing more than `limit` bytes (a zip bomb gets 413)."""
    encodings = [e.strip().lower() for e in content_encoding.split(",") if e.strip()]
    body = raw
    for encoding in reversed(encodings):  # the last encoding applied is listed last
        if encoding == "identity":
            continue
        if encoding in ("gzip", "x-gzip"):
            body = _inflate(body, zlib.MAX_WBITS | 16, limit)
        elif encoding == "deflate":
            body = _inflate_deflate(body, limit)
        else:
            raise UnsupportedEncoding(f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or none")
    return body


def _inflate_deflate(body: bytes, limit: int) -> bytes:
    # "deflate" means zlib-wrapped by the standard, raw deflate by some senders: accept both.
    try:
        return _inflate(body, zlib.MAX_WBITS, limit)
    except BadRequestBody:
        return _inflate(body, -zlib.MAX_WBITS, limit)


def _inflate(body: bytes, wbits: int, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    out = bytearray()
    try:
        data = body
        while data:
            out += inflater.decompress(data, limit + 1 - len(out))
            if len(out) > limit:
                raise BodyTooLarge(f"body decompresses to more than {limit} bytes")
            data = inflater.unconsumed_tail
        out += inflater.flush()
    except zlib.error:
        raise BadRequestBody("body is not valid compressed data for its Content-Encoding")
    if len(out) > limit:
        raise BodyTooLarge(f"body decompresses to more than {limit} bytes")
    if not inflater.eof:
        raise BadRequestBody("compressed body is truncated")
    return bytes(out)


def media_type_and_charset(content_type: str) -> tuple[str, str | None]:
    media_type, *params = content_type.split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower() or None
    return media_type.strip().lower(), charset


def decode_text(raw: bytes, charset: str | None) -> str:
    """Text in the declared charset (UTF-8 when none), without a byte-order mark."""
    name = charset or "utf-8"
    try:
        codec = codecs.lookup(name)
    except LookupError:
        raise BadRequestBody(f"charset {charset!r} is unknown")
    if codec.name == "utf-8":
        name = "utf-8-sig"
    try:
        return raw.decode(name)
    except UnicodeDecodeError:
        raise BadRequestBody(f"body is not valid {charset or 'UTF-8'}")


def parse_body(raw: bytes, content_type: str) -> Any:
    media_type, charset = media_type_and_charset(content_type)
    if not raw.strip():
        return None
    text = decode_text(raw, charset)
    if media_type == "application/x-www-form-urlencoded":
        return _parse_form(text)
    return parse_json(text)


def parse_json(text: str | bytes, what: str = "body") -> Any:
    try:
        return json.loads(text, parse_constant=_not_json)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequestBody(f"{what} is not valid JSON: {getattr(exc, 'msg', 'not UTF-8')}")
    except RecursionError:
        raise BadRequestBody(f"{what} is not valid JSON: nested too deeply")
    except BadRequestBody:
        raise
    except ValueError:  # an integer longer than Python's digit limit
        raise BadRequestBody(f"{what} is not usable JSON: a number in it is too long")


def _not_json(name: str):
    """Python's json reads NaN and Infinity; JSON has neither, and no sender means them."""
    raise BadRequestBody(f"body is not valid JSON: {name} is not a JSON value")


def _parse_form(text: str) -> Any:
    try:
        form = parse_qs(text, keep_blank_values=True, strict_parsing=True, max_num_fields=1000)
    except ValueError:
        raise BadRequestBody("form body is malformed")
    if "payload" in form:
        return parse_json(form["payload"][0], "form field 'payload'")
    return {key: values[0] if len(values) == 1 else values for key, values in form.items()}
