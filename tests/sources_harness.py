"""A bridge app served over real HTTP inside the test process, with a pinned clock and a fake
outbound GET, for source tests whose senders sign timestamps or must be called back."""
from __future__ import annotations

import json
import sqlite3
import textwrap
import threading
from dataclasses import dataclass, field
from pathlib import Path

import requests
from werkzeug.serving import make_server

from bridge.app import create_app
from bridge.rules import load_config
from bridge.settings import Settings


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeOutbound:
    """Records every URL a source asks for and answers from `responses` (url -> bytes)."""
    responses: dict[str, bytes] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)

    def __call__(self, url: str) -> bytes:
        from bridge.sources.outbound import OutboundError
        self.fetched.append(url)
        if url not in self.responses:
            raise OutboundError(f"GET {url} answered 404")
        return self.responses[url]


@dataclass
class ServedBridge:
    url: str
    db: Path
    clock: Clock
    outbound: FakeOutbound
    server: object

    def post(self, source: str, body: bytes = b"", headers=None, query: str = "", method="POST") -> requests.Response:
        return requests.request(method, f"{self.url}/hooks/{source}{query}", data=body, headers=headers or {},
                                timeout=10)

    def count(self, table: str = "events") -> int:
        with sqlite3.connect(self.db) as db:
            return db.execute(f"select count(*) from {table}").fetchone()[0]

    def event(self, event_id: str) -> dict:
        return requests.get(f"{self.url}/events/{event_id}", timeout=5).json()

    def stop(self) -> None:
        self.server.shutdown()


def serve_bridge(tmp_path: Path, rules_yaml: str, env: dict[str, str] | None = None, now: float = 1_700_000_000.0,
                 outbound: FakeOutbound | None = None, trusted_proxies: int = 0) -> ServedBridge:
    """Start the bridge app (no dispatcher) on a free loopback port; call .stop() when done."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(textwrap.dedent(rules_yaml))
    db = tmp_path / "bridge.db"
    settings = Settings(database_url=f"sqlite:///{db}", rules_path=str(rules), api_url="http://127.0.0.1:9",
                        auth_token="1:unused", simulate=False, embed_simulator=False,
                        trusted_proxies=trusted_proxies)
    clock = Clock(now)
    outbound = outbound or FakeOutbound()
    app = create_app(settings, config=load_config(rules, env or {}), clock=clock, outbound=outbound)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return ServedBridge(f"http://127.0.0.1:{server.server_port}", db, clock, outbound, server)


def as_json(data) -> bytes:
    return json.dumps(data).encode()


def assert_no_secret_logged(caplog, secrets) -> None:
    """No record the bridge wrote in the test's setup and call holds a secret. (caplog.text read at
    teardown would hold only teardown's records. The test's HTTP client and the in-process dev
    server log request lines with their query strings: that is not the bridge's doing.)"""
    logged = [record.getMessage() for phase in ("setup", "call") for record in caplog.get_records(phase)
              if record.name.startswith("bridge")]
    assert not [line for line in logged for secret in secrets if secret in line]
