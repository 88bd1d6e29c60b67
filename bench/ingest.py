"""Ingest benchmark: `POST /hooks/github` on the real bridge under gunicorn, against a bare floor.

Three servers run side by side on 127.0.0.1, all with the same gunicorn settings (gthread, 2 workers
x 4 threads):

  floor     bench/floor_app.py: verify the HMAC over the raw body, answer 202; nothing else
  no-match  the bridge with a rule that does not match the sample: verify, parse, match, store, 200
  bridge    the bridge with a rule that matches the sample: verify, parse, match, store the event
            and merge its intent, 202 (no dispatcher runs, so the platform is never called)

One client process sends GitHub's signed push sample from N threads, each with its own
requests.Session. The targets take turns in rounds (the order rotates each round), so drift on a
busy machine hits all of them alike; the ratios are the figures to read, not the absolute rates.

    .venv/bin/python bench/ingest.py [--requests 2000] [--threads 8] [--rounds 5] [--warmup 100]
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "samples"
SAMPLE = "github-push.json"
SECRET = "It's a Secret to Everybody"
DELIVERY_HEADER = "X-GitHub-Delivery"   # unique per request: the bridge answers a redelivery 200, unstored
TIMEOUT = (5, 30)             # every request: connect, read
READY_TIMEOUT = 30.0          # seconds for a server to answer /healthz
PROBLEM_WORDS = ("Traceback", "ERROR", "locked", "CRITICAL", "WORKER TIMEOUT")   # in a server's log
OVERALL_DEADLINE = 110.0      # seconds; rounds still to come are skipped past this

RULES = """\
sources:
  github:
    type: github
    secret: ${{GITHUB_WEBHOOK_SECRET}}
rules:
  - name: hello world pushed
    source: github
    event: push
    when:
      payload.repository.full_name: {repo}
    then:
      - {{action: import, site: 1}}
"""


# --- the sample -----------------------------------------------------------------------------

def load_sample() -> tuple[bytes, dict[str, str]]:
    """The body byte for byte, and the headers GitHub sent (minus length and host)."""
    body = (SAMPLES / SAMPLE).read_bytes()
    headers = {}
    lines = (SAMPLES / SAMPLE.replace(".json", ".headers.txt")).read_text().splitlines()[1:]
    for line in lines:
        if not line.strip():
            break
        name, _, value = line.partition(":")
        if name.strip().lower() not in ("content-length", "host"):
            headers[name.strip()] = value.strip()
    return body, headers


# --- servers --------------------------------------------------------------------------------

@dataclass
class Server:
    name: str
    label: str
    expect: int
    process: subprocess.Popen
    url: str
    log_path: Path
    db_path: Path | None = None

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(15)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gunicorn(app: str, port: int, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
            "--threads", "4", "--workers", "2", "--no-control-socket", *extra, app]


def start_server(name: str, label: str, expect: int, app: str, env: dict[str, str], tmp: Path,
                 extra: list[str] = (), db_path: Path | None = None) -> Server:
    port = free_port()
    log_path = tmp / f"{name}.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(gunicorn(app, port, list(extra)), env={**os.environ, **env}, cwd=ROOT,
                                   stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    return Server(name, label, expect, process, f"http://127.0.0.1:{port}", log_path, db_path)


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"{server.name} exited with {server.process.returncode}:\n{server.log()}")
        try:
            if requests.get(server.url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{server.name} did not answer /healthz within {READY_TIMEOUT}s:\n{server.log()}")


def start_all(tmp: Path, servers: list[Server]) -> None:
    """Start the three targets into `servers` (so the caller can stop whatever did start)."""
    common = {"GITHUB_WEBHOOK_SECRET": SECRET, "PRODUCTSUP_API_URL": "http://127.0.0.1:9",
              "PRODUCTSUP_AUTH_TOKEN": "1:x"}
    servers.append(start_server("floor", "floor: HMAC + 202", 202, "floor_app:create_app()", common, tmp,
                                ["--pythonpath", str(ROOT / "bench")]))
    for name, label, expect, repo in (("nomatch", "bridge, no rule matches", 200, "acme/elsewhere"),
                                      ("bridge", "bridge, rule matches", 202, "Codertocat/Hello-World")):
        rules, db = tmp / f"{name}.yaml", tmp / f"{name}.db"
        rules.write_text(RULES.format(repo=repo))
        env = {**common, "DATABASE_URL": f"sqlite:///{db}", "BRIDGE_RULES": str(rules)}
        servers.append(start_server(name, label, expect, "bridge.app:create_app()", env, tmp, db_path=db))
    for server in servers:
        wait_ready(server)


# --- load -----------------------------------------------------------------------------------

@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)   # seconds
    statuses: dict[str, int] = field(default_factory=dict)
    wall: float = 0.0                                      # seconds spent in this target's batches
    round_rates: list[float] = field(default_factory=list)

    def add(self, latencies: list[float], statuses: list[str], wall: float) -> None:
        self.latencies.extend(latencies)
        for status in statuses:
            self.statuses[status] = self.statuses.get(status, 0) + 1
        self.wall += wall
        self.round_rates.append(len(latencies) / wall)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def batch(url: str, body: bytes, headers: dict[str, str], count: int, threads: int) -> tuple[list, list, float]:
    """`count` POSTs from `threads` threads with one Session each; returns latencies, statuses, wall."""
    shares = [count // threads + (1 if i < count % threads else 0) for i in range(threads)]
    latencies: list[list[float]] = [[] for _ in range(threads)]
    statuses: list[list[str]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def worker(i: int) -> None:
        with requests.Session() as session:
            barrier.wait()
            for _ in range(shares[i]):
                fresh = {**headers, DELIVERY_HEADER: str(uuid.uuid4())}   # a new delivery, as GitHub sends
                started = time.perf_counter()
                try:
                    status = str(session.post(url, data=body, headers=fresh, timeout=TIMEOUT).status_code)
                except requests.RequestException as exc:
                    status = type(exc).__name__
                latencies[i].append(time.perf_counter() - started)
                statuses[i].append(status)

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - started
    return [x for part in latencies for x in part], [s for part in statuses for s in part], wall


def check_once(server: Server, body: bytes, headers: dict[str, str]) -> None:
    fresh = {**headers, DELIVERY_HEADER: str(uuid.uuid4())}
    answer = requests.post(server.url + "/hooks/github", data=body, headers=fresh, timeout=TIMEOUT)
    if answer.status_code != server.expect:
        raise SystemExit(f"{server.name}: expected {server.expect}, got {answer.status_code}: {answer.text[:300]}")


def stored_events(server: Server) -> int | None:
    if server.db_path is None:
        return None
    with sqlite3.connect(server.db_path) as conn:
        return conn.execute("select count(*) from events").fetchone()[0]


# --- report ---------------------------------------------------------------------------------

def report(servers: list[Server], tallies: dict[str, Tally], sent: dict[str, int], args) -> None:
    floor = tallies["floor"]
    print(f"\nPOST /hooks/github, {SAMPLE} ({(SAMPLES / SAMPLE).stat().st_size} bytes), {args.threads} client "
          f"threads, gunicorn gthread 2 workers x 4 threads, {len(floor.round_rates)} rounds, "
          f"{os.cpu_count()} cores\n")
    head = (f"{'target':<24} {'reqs':>5} {'answers':<14} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'max ms':>7} {'req/s ÷ floor':>13} {'rounds min-max':>15} {'p50 × floor':>11}")
    print(head)
    print("-" * len(head))
    for server in servers:
        tally = tallies[server.name]
        per_round = [r / f for r, f in zip(tally.round_rates, floor.round_rates)]
        answers = " ".join(f"{k}:{v}" for k, v in sorted(tally.statuses.items()))
        print(f"{server.label:<24} {len(tally.latencies):>5} {answers:<14} {tally.rate:>7.0f} "
              f"{tally.percentile(0.50):>7.1f} {tally.percentile(0.99):>7.1f} {max(tally.latencies) * 1000:>7.0f} "
              f"{tally.rate / floor.rate:>13.2f} "
              f"{min(per_round):>7.2f}-{max(per_round):<7.2f} "
              f"{tally.percentile(0.50) / floor.percentile(0.50):>11.2f}")
    bridge, nomatch = tallies["bridge"], tallies["nomatch"]
    print(f"\nbridge/bare throughput ratio: {bridge.rate / floor.rate:.2f} "
          f"(no-match/bare {nomatch.rate / floor.rate:.2f}, bridge/no-match {bridge.rate / nomatch.rate:.2f})")
    for server in servers:
        count = stored_events(server)
        if count is not None:
            print(f"{server.name}: events stored {count}, requests sent {sent[server.name]}")
        problems = [line for line in server.log().splitlines() if any(word in line for word in PROBLEM_WORDS)]
        if problems:
            print(f"{server.name}: {len(problems)} error line(s) in its log, first: {problems[0][:200]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per target")
    parser.add_argument("--threads", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--rounds", type=int, default=5, help="turns each target takes")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured requests per target first")
    args = parser.parse_args()
    began = time.monotonic()
    body, headers = load_sample()
    tmp = Path(tempfile.mkdtemp(prefix="bridge-bench-ingest-"))
    servers: list[Server] = []
    try:
        start_all(tmp, servers)
        sent = {s.name: 0 for s in servers}
        for server in servers:
            check_once(server, body, headers)
            batch(server.url + "/hooks/github", body, headers, args.warmup, args.threads)
            sent[server.name] += 1 + args.warmup
        tallies = {s.name: Tally() for s in servers}
        per_round = [args.requests // args.rounds + (1 if r < args.requests % args.rounds else 0)
                     for r in range(args.rounds)]
        for r, count in enumerate(per_round):
            if time.monotonic() - began > OVERALL_DEADLINE:
                print(f"deadline reached: stopped after {r} of {args.rounds} rounds", file=sys.stderr)
                break
            order = servers[r % len(servers):] + servers[:r % len(servers)]
            for server in order:
                tallies[server.name].add(*batch(server.url + "/hooks/github", body, headers, count, args.threads))
                sent[server.name] += count
        report(servers, tallies, sent, args)
        print(f"\nwall time {time.monotonic() - began:.1f} s")
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
