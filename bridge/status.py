"""Read-only views: the fate of an event, and a health check."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from werkzeug.exceptions import NotFound

status = Blueprint("status", __name__)


@status.get("/events/<event_id>")
def event(event_id: str):
    found = current_app.extensions["bridge"].store.event(event_id)
    if found is None:
        raise NotFound(f"no event {event_id!r}")
    return jsonify(found)


@status.get("/healthz")
def health():
    return jsonify(ok=True)
