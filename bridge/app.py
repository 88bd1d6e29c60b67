"""Flask app factory: all the wiring, and nothing at import time."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

from flask import Flask, jsonify
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from bridge.platform import PlatformClient
from bridge.rules import Config, load_config
from bridge.settings import Settings
from bridge.sources.outbound import http_get
from bridge.store import Store


@dataclass
class Bridge:
    """What the views and the dispatcher share: one per app."""
    settings: Settings
    config: Config
    store: Store
    platform: PlatformClient
    clock: Callable[[], float]


def create_app(settings: Settings | None = None, *, config: Config | None = None, store: Store | None = None,
               platform: PlatformClient | None = None, clock: Callable[[], float] | None = None,
               outbound: Callable[[str], bytes] | None = None) -> Flask:
    settings = settings or Settings.from_env()
    configure_logging()
    bridge = Bridge(
        settings=settings,
        config=config or load_config(settings.rules_path),
        store=store or Store.from_url(settings.database_url),
        platform=platform or PlatformClient(settings.api_url, settings.auth_token),
        clock=clock or time.time,
    )
    bridge.store.create_schema()
    for source in bridge.config.sources.values():
        source.outbound = outbound or http_get
    app = Flask("bridge")
    app.extensions["bridge"] = bridge
    app.json.sort_keys = False
    from bridge.hooks import hooks
    from bridge.status import status
    app.register_blueprint(hooks)
    app.register_blueprint(status)
    app.register_error_handler(HTTPException, _json_error)
    app.register_error_handler(OperationalError, _storage_busy)
    return app


def _storage_busy(exc: OperationalError):
    """A lock timeout or deadlock in the database: nothing was stored, the sender should retry.
    503 with Retry-After is the honest answer; a 2xx would lie and a 500 would look like a bug."""
    logging.getLogger("bridge.app").warning("storage busy: %s", exc.__class__.__name__)
    response = jsonify(error="storage busy; nothing was stored, retry shortly")
    response.status_code = 503
    response.headers["Retry-After"] = "5"
    return response


def _json_error(exc: HTTPException):
    response = jsonify(error=exc.description if exc.code != 500 else "internal error")
    response.status_code = exc.code or 500
    if exc.code == 405:
        response.headers["Allow"] = ", ".join(exc.valid_methods or [])
    return response


def configure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
