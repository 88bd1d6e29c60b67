"""A real bridge under gunicorn and a real `bridge sim`, over HTTP on loopback, short windows."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import requests

from tests.helpers import GITHUB_SECRET, bridge_command, free_port, start

# Short windows so real-time tests take seconds; the simulator enforces the same rate limit.
QUIET, MAX_WAIT, MIN_INTERVAL, RUN_SECONDS = 1.0, 4.0, 3.0, 4.0
SITE = 4242

RULES = textwrap.dedent(f"""\
    defaults:
      debounce: {{quiet: {QUIET}s, max_wait: {MAX_WAIT}s}}
      min_interval: {MIN_INTERVAL}s
    sources:
      github:
        type: github
        secret: ${{GITHUB_WEBHOOK_SECRET}}
    rules:
      - name: hello world pushed to master
        source: github
        event: push
        when:
          payload.ref: refs/heads/master
          payload.repository.full_name: Codertocat/Hello-World
        then:
          - {{action: import, site: {SITE}}}
    """)


class Harness:
    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.rules = tmp_path / "rules.yaml"
        self.rules.write_text(RULES)
        self.db = tmp_path / "bridge.db"
        self.sim_port = free_port()
        self.sim = None
        self.bridges = []

    def start_sim(self):
        self.sim = start(bridge_command("sim", "--port", str(self.sim_port), "--rate-limit", str(MIN_INTERVAL),
                                        "--run-seconds", str(RUN_SECONDS)),
                         self.sim_port, {}, self.tmp / "sim.log", ready_path="/_sim/calls")
        return self.sim

    def env(self, port):
        return {"PORT": str(port), "DATABASE_URL": f"sqlite:///{self.db}", "BRIDGE_RULES": str(self.rules),
                "PRODUCTSUP_API_URL": self.sim.url, "PRODUCTSUP_AUTH_TOKEN": "1234:e2e-token-value",
                "GITHUB_WEBHOOK_SECRET": GITHUB_SECRET, "BRIDGE_TICK_SECONDS": "0.1",
                "BRIDGE_POLL_SECONDS": "0.5"}

    def start_bridge(self, port=None):
        port = port or free_port()
        bridge = start(bridge_command("serve", "--host", "127.0.0.1", "--port", str(port)), port, self.env(port),
                       self.tmp / f"bridge-{port}.log")
        self.bridges.append(bridge)
        return bridge

    def start_web(self):
        """The Procfile's web line alone: gunicorn, no dispatcher."""
        port = free_port()
        web = start([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                     "--no-control-socket", "--worker-class", "gthread", "--threads", "4", "--workers", "2", "bridge.app:create_app()"],
                    port, self.env(port), self.tmp / f"web-{port}.log")
        self.bridges.append(web)
        return web

    def start_worker(self):
        self.workers = getattr(self, "workers", [])
        log = open(self.tmp / f"worker-{len(self.workers)}.log", "ab")
        env = {key: value for key, value in self.env(0).items() if key != "PORT"}
        process = subprocess.Popen(bridge_command("worker"), env={**os.environ, **env}, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.workers.append(process)
        return process

    def calls(self):
        return requests.get(self.sim.url + "/_sim/calls", timeout=5).json()

    def stop(self):
        for process in getattr(self, "workers", []):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        for bridge in self.bridges:
            bridge.stop()
        if self.sim:
            self.sim.stop()

    def logs(self) -> str:
        return "".join(path.read_text(errors="replace") for path in self.tmp.glob("*.log"))


@pytest.fixture
def harness(tmp_path):
    h = Harness(tmp_path)
    h.start_sim()
    yield h
    h.stop()
    logs = h.logs()
    assert "e2e-token-value" not in logs and GITHUB_SECRET not in logs   # never a secret in a log line
