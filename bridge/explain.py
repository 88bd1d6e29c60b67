"""`bridge explain`: what the bridge would do with one request, without storing or calling anything."""
from __future__ import annotations

from bridge.sources import BadRequestBody, RawRequest


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


def explain_request(config, source_name: str, body: bytes, headers, query) -> tuple[list[str], bool]:
    """Lines to print, and whether the request would be accepted and verified."""
    source = config.sources.get(source_name)
    if source is None:
        raise ValueError(f"no source named {source_name!r}; the rules define: {', '.join(config.sources) or 'none'}")
    header_map = dict(parse_header(h) for h in headers)
    request = RawRequest(body, header_map, dict(parse_query(q) for q in query), header_map.get("content-type", ""))
    if len(body) > source.max_body:
        return [f"body: {len(body)} bytes, over the limit of {source.max_body}: answered 413"], False
    if not source.verify(request):
        return [f"verification: FAILED for source {source_name!r} ({source.type_name}): answered 401"], False
    lines = [f"verification: passed ({source.type_name})"]
    try:
        deliveries = source.receive(request)
    except BadRequestBody as exc:
        return lines + [f"body: {exc}: answered 400"], False
    for delivery in deliveries:
        lines += _explain_delivery(config, delivery)
    return lines, True


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
