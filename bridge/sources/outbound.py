"""The one way a source calls out: a GET with timeouts and a size cap, never following redirects."""
from __future__ import annotations

import requests

CONNECT_TIMEOUT = 5
READ_TIMEOUT = 10
MAX_BYTES = 1024 * 1024


class OutboundError(Exception):
    """The call out failed; the message never holds secrets (URLs of senders carry none we keep)."""


def http_get(url: str) -> bytes:
    try:
        with requests.get(url, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), allow_redirects=False,
                          stream=True) as response:
            if response.status_code != 200:
                raise OutboundError(f"GET {url} answered {response.status_code}")
            body = response.raw.read(MAX_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise OutboundError(f"GET {url} failed: {exc.__class__.__name__}") from None
    if len(body) > MAX_BYTES:
        raise OutboundError(f"GET {url} answered more than {MAX_BYTES} bytes")
    return body
