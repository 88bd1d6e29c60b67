"""`bridge explain`: what the bridge would do with one request, without storing or calling anything."""
from __future__ import annotations

import time

from bridge.sources import (BadRequestBody, BodyTooLarge, RawRequest, Reply, UnsupportedEncoding, Unverified,
                            decode_transport)


def parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"header {text!r} is not of the form 'Name: value'")
    return name.strip().lower(), value.strip()


def parse_query(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ValueError(f"query parameter {text!r} is not of the form 'name=value'")
    return name, value


def explain_request(config, source_name: str, body: bytes, headers, query,
                    now: float | None = None) -> tuple[list[str], bool]:
    """Lines to print, and whether the request would be accepted."""
    source = config.sources.get(source_name)
    if source is None:
        raise ValueError(f"no source named {source_name!r}; the rules define: {', '.join(config.sources) or 'none'}")
    header_map = dict(parse_header(h) for h in headers)
    if len(body) > source.max_body:
        return [f"body: {len(body)} bytes, over the limit of {source.max_body}: answered 413"], False
    try:
        decoded = decode_transport(body, header_map.get("content-encoding", ""), source.max_body)
    except (BodyTooLarge, UnsupportedEncoding, BadRequestBody) as exc:
        return [f"body: {exc}: refused"], False
    request = RawRequest(decoded, header_map, dict(parse_query(q) for q in query), header_map.get("content-type", ""),
                         received_at=time.time() if now is None else now, client_ip="127.0.0.1",
                         raw_body=body if decoded is not body else None)
    source.outbound = _no_calls_out
    try:
        received = source.receive(request)
    except Unverified:
        return [f"verification: FAILED for source {source_name!r} ({source.type_name}): answered 401"], False
    except BadRequestBody as exc:
        return [f"verification: passed ({source.type_name})", f"body: {exc}: answered 400"], False
    lines = [f"verification: passed ({source.type_name})"]
    if isinstance(received, Reply):
        return lines + [f"handshake: answered {received.status} with {received.body!r}; no event stored"], True
    for delivery in received:
        lines += _explain_delivery(config, delivery)
    return lines, True


def _no_calls_out(url: str) -> bytes:
    """A dry run must not confirm subscriptions or fetch anything on the sender's behalf."""
    from bridge.sources.outbound import OutboundError
    raise OutboundError(f"bridge explain makes no outbound calls (would GET {url})")


def _explain_delivery(config, delivery) -> list[str]:
    match = config.match(delivery.document)
    lines = [f"event type: {delivery.event_type!r}, delivery id: {delivery.delivery_id!r}"]
    for trace in match.traces:
        lines.append(f"rule {trace.rule!r}: {'MATCHED' if trace.matched else 'no match'}")
        lines += [f"    {reason}" for reason in trace.reasons]
    for intent in match.intents:
        target = f" id {intent.target_id}" if intent.target_id is not None else ""
        lines.append(f"intent: {intent.action}{target} on site {intent.site_id} (rule {intent.rule!r}, "
                     f"quiet {intent.quiet:g}s, max wait {intent.max_wait:g}s)")
    for rejection in match.rejections:
        lines.append(f"rejected intent (rule {rejection.rule!r}): {rejection.reason}")
    if not match.intents:
        lines.append("no intents: answered 200 with matched: []" if not match.matched_rules
                     else "no intents could be scheduled: answered 200")
    else:
        lines.append("answered 202")
    return lines
