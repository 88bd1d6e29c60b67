"""Process wiring for `bridge serve` and `bridge worker`: gunicorn, the dispatcher thread, the simulator."""
from __future__ import annotations

import logging

from gunicorn.app.base import BaseApplication

from bridge.dispatcher import Dispatcher, start_dispatcher_thread
from bridge.platform import PlatformClient
from bridge.settings import Settings
from bridge.store import Store

log = logging.getLogger("bridge.runtime")


def build_dispatcher(settings: Settings, config, store: Store | None = None) -> Dispatcher:
    store = store or Store.from_url(settings.database_url)
    store.create_schema()
    _announce_platform(settings)
    return Dispatcher(store, PlatformClient(settings.api_url, settings.auth_token),
                      min_interval=lambda: config.defaults.min_interval, poll_seconds=settings.poll_seconds,
                      poll_deadline=settings.poll_deadline,
                      dedup_retention=lambda: config.defaults.dedup_retention)


def _announce_platform(settings: Settings) -> None:
    if settings.simulate:
        log.warning("no PRODUCTSUP_AUTH_TOKEN: calling the local simulator at %s, not Productsup",
                    settings.api_url)
    else:
        log.info("calling the Productsup Platform API at %s", settings.api_url)


class _Gunicorn(BaseApplication):
    def __init__(self, settings: Settings, options: dict):
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            if key in self.cfg.settings:  # skip settings an older gunicorn does not know
                self.cfg.set(key, value)

    def load(self):
        from bridge.app import create_app
        return create_app(self.settings)


def _start_worker_dispatcher(worker) -> None:
    """Runs in each web worker after it loaded the app: the dispatcher shares its store."""
    bridge = worker.wsgi.extensions["bridge"]
    dispatcher = Dispatcher(bridge.store, bridge.platform,
                            min_interval=lambda: bridge.config.defaults.min_interval,
                            poll_seconds=bridge.settings.poll_seconds,
                            poll_deadline=bridge.settings.poll_deadline,
                            dedup_retention=lambda: bridge.config.defaults.dedup_retention)
    worker.bridge_dispatcher = start_dispatcher_thread(dispatcher, bridge.settings.tick_seconds)


def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    if settings.embed_simulator:
        from bridge.simulator import start_simulator_thread
        start_simulator_thread("127.0.0.1", settings.sim_port)
    _announce_platform(settings)
    _Gunicorn(settings, {
        "bind": f"{host}:{port}", "workers": workers, "threads": 8, "worker_class": "gthread",
        "post_worker_init": _start_worker_dispatcher, "accesslog": "-", "timeout": 60,
        # The path without its query: a token sent as ?token=... must never reach a log line.
        "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss',
        # Several bridges on one machine (tests, a dev box) must not fight over one control socket.
        "control_socket_disable": True,
    }).run()
