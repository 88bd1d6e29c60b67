"""POST /hooks/<source>: the only ingest endpoint.

Reads as the pipeline: look up the source, read the capped raw body, verify and parse (the source
stage), match the rules, record the event with its intents, answer honestly.
"""
from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import NotFound, RequestEntityTooLarge, Unauthorized, BadRequest

from bridge.sources import BadRequestBody, RawRequest, Unverified

hooks = Blueprint("hooks", __name__)
log = logging.getLogger("bridge.hooks")


@hooks.post("/hooks/<name>")
def receive(name: str):
    bridge = current_app.extensions["bridge"]
    source = bridge.config.sources.get(name)
    if source is None:
        raise NotFound(f"no source named {name!r} in the rules")
    raw = RawRequest(read_capped_body(source.max_body), lower_headers(), request.args.to_dict(),
                     request.headers.get("Content-Type", ""))
    try:
        deliveries = source.receive(raw)
    except Unverified:
        log.warning("source %s: verification failed", name)
        raise Unauthorized("verification failed")
    except BadRequestBody as exc:
        raise BadRequest(str(exc))
    now = bridge.clock()
    answers = [record(bridge, delivery, raw.body, now) for delivery in deliveries]
    return respond(answers)


def record(bridge, delivery, body: bytes, now: float) -> dict:
    match = bridge.config.match(delivery.document)
    stored = bridge.store.record_event(delivery, body, match, now)
    log.info("source %s: event %s (%s) matched %s, %d intent(s)", delivery.source, stored.event_id,
             delivery.event_type, match.matched_rules or "nothing", len(stored.intents))
    return {
        "event_id": stored.event_id,
        "event_type": delivery.event_type,
        "matched": match.matched_rules,
        "intents": [{"site": i.site_id, "action": i.action, "id": i.target_id, "rule": i.rule,
                     "due_at": round(i.due_at, 3)} for i in stored.intents],
        "rejected": [{"rule": r.rule, "reason": r.reason} for r in match.rejections],
    }


def respond(answers: list[dict]):
    """202 when something was scheduled, 200 when the event was stored with nothing to do."""
    status = 202 if any(answer["intents"] for answer in answers) else 200
    body = answers[0] if len(answers) == 1 else {"events": answers}
    return jsonify(body), status


def read_capped_body(limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"body is larger than {limit} bytes")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise RequestEntityTooLarge(f"body is larger than {limit} bytes")
    return body


def lower_headers() -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}
