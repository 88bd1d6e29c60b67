"""Body parsing, after verification: JSON, GitHub's form `payload=`, and JSON sent as text/plain."""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from bridge.sources.errors import BadRequestBody


def parse_body(raw: bytes, content_type: str) -> Any:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not raw.strip():
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequestBody("body is not UTF-8")
    if media_type == "application/x-www-form-urlencoded":
        return _parse_form(text)
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise BadRequestBody(f"body is not valid JSON: {getattr(exc, 'msg', 'nested too deeply')}")


def _parse_form(text: str) -> Any:
    try:
        form = parse_qs(text, keep_blank_values=True, strict_parsing=True, max_num_fields=1000)
    except ValueError:
        raise BadRequestBody("form body is malformed")
    if "payload" in form:
        try:
            return json.loads(form["payload"][0])
        except (json.JSONDecodeError, RecursionError):
            raise BadRequestBody("form field 'payload' is not valid JSON")
    return {key: values[0] if len(values) == 1 else values for key, values in form.items()}
