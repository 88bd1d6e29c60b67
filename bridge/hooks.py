"""POST /hooks/<source>: the only ingest endpoint.

Reads as the pipeline: look up the source, read the capped raw body, let the source verify and
parse it (or answer a handshake), match the rules, record each event with its intents, answer.
"""
from __future__ import annotations

import json
import logging
from contextlib import contextmanager

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import (BadRequest, MethodNotAllowed, NotFound, RequestEntityTooLarge, RequestTimeout,
                                 Unauthorized, UnsupportedMediaType)

from bridge.sources import (BadRequestBody, BodyTooLarge, RawRequest, Reply, UnsupportedEncoding, Unverified,
                            decode_transport)

hooks = Blueprint("hooks", __name__)
# Event Grid sends at most 5,000 events a request; more is no sender we know.
MAX_BATCH = 5000
log = logging.getLogger("bridge.hooks")


@hooks.route("/hooks/<name>", methods=["POST", "OPTIONS"])
def receive(name: str):
    bridge = current_app.extensions["bridge"]
    source = bridge.config.sources.get(name)
    if source is None:
        raise NotFound(f"no source named {name!r} in the rules")
    raw = raw_request(source.max_body, bridge.clock(), bridge.settings)
    try:
        received = source.options_request(raw) if request.method == "OPTIONS" else source.receive(raw)
    except Unverified:
        log.warning("source %s: verification failed", name)
        raise Unauthorized("verification failed")
    except BadRequestBody as exc:
        raise BadRequest(str(exc))
    if received is None:
        raise MethodNotAllowed(valid_methods=["POST"])
    if isinstance(received, Reply):
        log.info("source %s: answered a handshake (%s)", name, received.status)
        return reply_response(received)
    return respond(record(bridge, source, received, raw.raw_body or raw.body))


def record(bridge, source, deliveries, body: bytes) -> list[dict]:
    """Match every event of the request, then store them all in one transaction."""
    if len(deliveries) > MAX_BATCH:
        raise RequestEntityTooLarge(f"a batch of {len(deliveries)} events; at most {MAX_BATCH} per request")
    items = [(delivery, stored_body(source, delivery, body, len(deliveries)), bridge.config.match(delivery.document))
             for delivery in deliveries]
    stored = bridge.store.record_events(items, bridge.clock())
    return [answer(delivery, match, event) for (delivery, _, match), event in zip(items, stored)]


def stored_body(source, delivery, body: bytes, count: int) -> bytes:
    """The bytes kept with an event: the request as sent, or, for one item of a batch (or a sender
    whose envelope holds a secret), that item alone, so a batch is not stored once per item."""
    if count == 1 and source.store_raw_body:
        return body
    return json.dumps(delivery.payload, default=str).encode("utf-8")


def answer(delivery, match, stored) -> dict:
    if stored.duplicate_of:
        log.info("source %s: delivery %s already received as %s", delivery.source, delivery.delivery_id,
                 stored.duplicate_of)
        return {"event_id": stored.duplicate_of, "duplicate": True, "delivery_id": delivery.delivery_id,
                "matched": [], "intents": [], "rejected": []}
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
    """202 when something was scheduled, 200 when stored (or already stored) with nothing to do."""
    status = 202 if any(answer["intents"] for answer in answers) else 200
    if len(answers) == 1:
        return jsonify(answers[0]), status
    return jsonify(events=answers), status


def reply_response(reply: Reply) -> Response:
    if isinstance(reply.body, (dict, list)):
        response = jsonify(reply.body)
    else:
        response = Response(reply.body if reply.body is not None else b"", content_type=reply.content_type)
    response.status_code = reply.status
    response.headers.update(reply.headers)
    return response


def raw_request(limit: int, now: float, settings) -> RawRequest:
    sent = read_capped_body(limit, settings.body_timeout)
    try:
        body = decode_transport(sent, request.headers.get("Content-Encoding", ""), limit)
    except BodyTooLarge as exc:
        raise RequestEntityTooLarge(str(exc))
    except UnsupportedEncoding as exc:
        raise UnsupportedMediaType(str(exc))
    except BadRequestBody as exc:
        raise BadRequest(str(exc))
    return RawRequest(body=body, headers=lower_headers(), query=request.args.to_dict(),
                      content_type=request.headers.get("Content-Type", ""), method=request.method,
                      received_at=now, client_ip=client_ip(settings.trusted_proxies),
                      raw_body=sent if body is not sent else None)


def read_capped_body(limit: int, timeout: float) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"body is larger than {limit} bytes")
    with socket_timeout(timeout):
        try:
            body = request.stream.read(limit + 1)
        except TimeoutError:
            raise RequestTimeout(f"the body did not arrive within {timeout:g} seconds")
    if len(body) > limit:
        raise RequestEntityTooLarge(f"body is larger than {limit} bytes")
    return body


@contextmanager
def socket_timeout(seconds: float):
    """gunicorn reads bodies on a blocking socket with no timeout: a sender that stops halfway
    would hold a worker thread forever, and a few of them the whole bridge."""
    sock = request.environ.get("gunicorn.socket")
    if sock is None:
        yield
        return
    sock.settimeout(seconds)
    try:
        yield
    finally:
        try:
            sock.settimeout(None)
        except OSError:
            pass


def lower_headers() -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


def client_ip(trusted_proxies: int) -> str | None:
    """The sender's address: each trusted proxy appends the address it saw to X-Forwarded-For, so
    the entry `trusted_proxies` from the right is the one the outermost trusted proxy vouches for.
    Entries further left were written by the client and can be forged."""
    if trusted_proxies == 0:
        return request.remote_addr
    chain = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
    if len(chain) < trusted_proxies:
        return None
    return chain[-trusted_proxies]
