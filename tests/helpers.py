"""Shared test helpers: real processes on loopback, the vendor samples, waiting on conditions."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "samples"   # a copy of the shared samples, so any clone can run the tests
GITHUB_SECRET = "It's a Secret to Everybody"


def sample(name: str) -> tuple[bytes, dict[str, str]]:
    """A sample body, byte for byte, and the headers its sender sent (minus the length)."""
    body = (SAMPLES / name).read_bytes()
    stem = name.rsplit(".", 1)[0]
    headers = {}
    lines = (SAMPLES / f"{stem}.headers.txt").read_text().splitlines()[1:]
    for line in lines:
        if not line.strip():
            break
        key, _, value = line.partition(":")
        if key.lower() not in ("content-length", "host"):
            headers[key.strip()] = value.strip()
    return body, headers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05, message: str = "condition"):
    """Poll a condition with a deadline: the test fails with `message` instead of hanging."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@dataclass
class Running:
    process: subprocess.Popen
    url: str
    log_path: Path

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def kill_hard(self) -> None:
        """kill -9 the whole process group: no shutdown code runs."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start(args: list[str], port: int, env: dict[str, str], log_path: Path, ready_path: str = "/healthz",
          cwd: Path | None = None) -> Running:
    """Start a server process in its own process group and wait until it answers."""
    log_file = open(log_path, "ab")
    process = subprocess.Popen(args, env={**os.environ, **env}, stdout=log_file, stderr=subprocess.STDOUT,
                               start_new_session=True, cwd=cwd or ROOT)
    running = Running(process, f"http://127.0.0.1:{port}", log_path)

    def answers():
        if process.poll() is not None:
            raise AssertionError(f"{args[0]} exited with {process.returncode}:\n{running.log()}")
        try:
            return requests.get(running.url + ready_path, timeout=1).status_code < 500
        except requests.ConnectionError:
            return False

    wait_until(answers, timeout=30, message=f"{' '.join(args)} to answer")
    return running


def bridge_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "bridge", *args]
