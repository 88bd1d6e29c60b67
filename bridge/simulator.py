"""A local stand-in for the Productsup Platform API that follows its real rules.

It exists so the bridge can be exercised end to end, over real HTTP, without an account: per site
one process runs and one waits, one accepted call per rate-limit window, a lock while a call is
being handled, and status answers (an unknown id answers ``queued``, as the real one does).

State lives in memory behind one lock and is advanced lazily from ``clock`` on every request, so
tests can drive time with a fake clock instead of sleeping. ``/_sim/*`` endpoints let tests queue
canned answers (faults) and read back every call and process.
"""
from __future__ import annotations

import hmac
import math
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from flask import Blueprint, Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, make_server

ACTIONS = frozenset({"import", "export", "channel", "export-all", "all"})
ACTIONS_WITH_ID = frozenset({"export", "channel"})
TOKEN_FORM = re.compile(r"^[^:\s]+:\S+$")  # accountId:token
SITE_FORM = re.compile(r"^[1-9][0-9]{0,17}$")
EXTENSION = "productsup_simulator"
DEFAULT_FAULT_SECONDS = 35.0
EMBEDDED_POLL_INTERVAL = 0.05  # seconds; how fast shutdown() returns for an embedded server

MSG_UNAUTHORIZED = "Invalid authentication token"
MSG_FORBIDDEN = "You do not have the rights to access this site"
MSG_NOT_FOUND = "Site not found"
MSG_BAD_REQUEST = "Bad request"
MSG_LOCKED = "Could not trigger the process, a lock is already acquired"
MSG_RATE_LIMITED = "Too many attempts."
MSG_QUEUE_FULL = "Process could not be triggered, a process is already in the current queue"
MSG_JOB_SERVER = "Could not trigger the process, there was an error interacting with the job server"
MSG_SUCCESS_FALSE = "Process could not be triggered"

# Fault name -> (HTTP status, message) for the faults that only answer and create nothing.
CANNED = {
    "rate_limited": (429, MSG_RATE_LIMITED),
    "queue_full": (429, MSG_QUEUE_FULL),
    "locked": (500, MSG_LOCKED),
    "job_server": (500, MSG_JOB_SERVER),
    "unauthorized": (401, MSG_UNAUTHORIZED),
    "forbidden": (403, MSG_FORBIDDEN),
    "not_found": (404, MSG_NOT_FOUND),
    "bad_request": (400, MSG_BAD_REQUEST),
    "success_false": (200, MSG_SUCCESS_FALSE),
}
CREATING = frozenset({"legacy_pid", "no_id", "timeout"})  # faults that still accept a process
FAULTS = frozenset(CANNED) | CREATING


# --- state ----------------------------------------------------------------------------------

@dataclass
class Process:
    """One accepted process call and its life: queued, running, then success."""
    process_id: str
    site: int
    action: str
    id: int | None
    queued_at: float
    status: str = "queued"
    started_at: float | None = None
    ended_at: float | None = None

    def start(self, at: float) -> None:
        self.status, self.started_at = "running", at


@dataclass
class SiteState:
    """What the platform keeps per site: the running process, the waiting ones, the window."""
    running: Process | None = None
    waiting: deque = field(default_factory=deque)
    last_accepted_at: float | None = None
    handling: bool = False


@dataclass
class Fault:
    """A canned answer queued by a test for the next ``count`` matching process calls."""
    answer: str
    site: int | None
    count: int
    seconds: float


@dataclass
class Answer:
    """What a process call gets back, plus the short name recorded in ``/_sim/calls``."""
    status: int
    body: dict[str, Any]
    name: str
    headers: dict[str, str] = field(default_factory=dict)
    process_id: str | None = None
    delay: float = 0.0


class SimulatorState:
    """All simulated platform state; every public method takes the lock itself."""

    def __init__(self, *, rate_limit_seconds: float, run_seconds: float, clock: Callable[[], float],
                 auth_token: str | None, call_latency: float):
        self.rate_limit_seconds = rate_limit_seconds
        self.run_seconds = run_seconds
        self.clock = clock
        self.auth_token = auth_token
        self.call_latency = call_latency
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget everything, so one simulator can serve many tests."""
        with self.lock:
            self.sites: dict[int, SiteState] = {}
            self.processes: dict[str, Process] = {}
            self.calls: list[dict[str, Any]] = []
            self.faults: list[Fault] = []

    def site(self, site: int) -> SiteState:
        return self.sites.setdefault(site, SiteState())

    def advance(self, now: float) -> None:
        """Finish every run whose time is up; the next waiting one starts the moment it ends."""
        with self.lock:
            for state in self.sites.values():
                self._advance_site(state, now)

    def _advance_site(self, state: SiteState, now: float) -> None:
        while state.running and state.running.started_at + self.run_seconds <= now:
            done = state.running
            done.status, done.ended_at = "success", done.started_at + self.run_seconds
            state.running = state.waiting.popleft() if state.waiting else None
            if state.running:
                state.running.start(done.ended_at)

    def record_call(self, at: float, site: int | None) -> dict[str, Any]:
        """Append the call at receipt, so ``/_sim/calls`` keeps arrival order; filled in later."""
        call = {"at": at, "site": site, "action": None, "id": None, "status": None,
                "answer": None, "process_id": None}
        with self.lock:
            self.calls.append(call)
        return call

    def enter(self, site: int) -> bool:
        """Take the site's lock for the length of one call; False if another call holds it."""
        with self.lock:
            state = self.site(site)
            if state.handling:
                return False
            state.handling = True
            return True

    def leave(self, site: int) -> None:
        with self.lock:
            self.site(site).handling = False

    def is_handling(self, site: int) -> bool:
        """Whether a call for the site is being handled now (tests wait on this, never sleep)."""
        with self.lock:
            return site in self.sites and self.sites[site].handling

    def retry_at(self, site: int, now: float) -> float | None:
        """When the site may be called again, or None if it may be called now."""
        last = self.site(site).last_accepted_at
        if last is None or now >= last + self.rate_limit_seconds:
            return None
        return last + self.rate_limit_seconds

    def queue_full(self, site: int) -> bool:
        state = self.site(site)
        return state.running is not None and len(state.waiting) >= 1

    def accept(self, site: int, action: str, target: int | None, now: float) -> Process:
        """Create a real process: running if the site is idle, else waiting; opens the window."""
        with self.lock:
            self.advance(now)
            state = self.site(site)
            process = Process(uuid.uuid4().hex, site, action, target, queued_at=now)
            self.processes[process.process_id] = process
            state.last_accepted_at = now
            if state.running is None:
                process.start(now)
                state.running = process
            else:
                state.waiting.append(process)
            return process

    def add_fault(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, site: int) -> Fault | None:
        """Consume one use of the first fault queued for this site (or for any site)."""
        with self.lock:
            for fault in self.faults:
                if fault.site in (None, site):
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                    return fault
            return None

    def status_of(self, site: int, process_id: str, now: float) -> str:
        """Unknown ids (or another site's) answer queued, exactly like the real platform."""
        with self.lock:
            self.advance(now)
            process = self.processes.get(process_id)
            return process.status if process and process.site == site else "queued"


# --- answers --------------------------------------------------------------------------------

def _failure(status: int, message: str, name: str, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, {"success": False, "message": message}, name, headers or {})


def _rate_limited(retry_at: float) -> Answer:
    """The real headers: limit 1, none remaining, and an absolute Unix time to come back."""
    headers = {"X-RateLimit-Limit": "1", "X-Ratelimit-Remaining": "0",
               "X-Ratelimit-Retry-After": str(math.ceil(retry_at))}
    return _failure(429, MSG_RATE_LIMITED, "rate_limited", headers)


def _accepted(process: Process, id_key: str | None = "process_id", name: str = "accepted") -> Answer:
    body: dict[str, Any] = {"success": True}
    if id_key:
        body[id_key] = process.process_id
    headers = {"X-RateLimit-Limit": "1", "X-Ratelimit-Remaining": "0"}
    return Answer(200, body, name, headers, process.process_id)


def _canned(state: SimulatorState, fault: Fault, now: float) -> Answer:
    """A fault that only answers; rate_limited still names a plausible time to come back."""
    if fault.answer == "rate_limited":
        return _rate_limited(now + state.rate_limit_seconds)
    status, message = CANNED[fault.answer]
    return _failure(status, message, fault.answer)


def _fault_answer(state: SimulatorState, fault: Fault, site: int, body: dict, now: float) -> Answer:
    """Faults that create a process do so for real, bypassing lock, window and queue checks."""
    if fault.answer not in CREATING:
        return _canned(state, fault, now)
    process = state.accept(site, body["action"], body.get("id"), now)
    if fault.answer == "legacy_pid":
        return _accepted(process, "pid", "legacy_pid")
    if fault.answer == "no_id":
        return _accepted(process, None, "no_id")
    answer = _accepted(process, "process_id", "timeout")
    answer.delay = fault.seconds
    return answer


def _by_rules(state: SimulatorState, site: int, body: dict) -> Answer:
    """The real order after auth and body: lock, rate limit, queue, then accept."""
    if not state.enter(site):
        return _failure(500, MSG_LOCKED, "locked")
    try:
        if state.call_latency > 0:
            time.sleep(state.call_latency)
        with state.lock:
            now = state.clock()
            state.advance(now)
            retry_at = state.retry_at(site, now)
            if retry_at is not None:
                return _rate_limited(retry_at)
            if state.queue_full(site):
                return _failure(429, MSG_QUEUE_FULL, "queue_full")
            return _accepted(state.accept(site, body["action"], body.get("id"), now))
    finally:
        state.leave(site)


# --- request checks -------------------------------------------------------------------------

def _authorized(state: SimulatorState) -> bool:
    """The header must look like accountId:token and match the configured token if any."""
    token = request.headers.get("X-Auth-Token", "")
    if not TOKEN_FORM.match(token):
        return False
    if state.auth_token is None:
        return True
    return hmac.compare_digest(token.encode(), state.auth_token.encode())


def _parse_site(raw: str) -> int | None:
    return int(raw) if SITE_FORM.match(raw) else None


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _process_body() -> dict | None:
    """A JSON object with a known action, and a positive int id where the action needs one."""
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict) or body.get("action") not in ACTIONS:
        return None
    target = body.get("id")
    if body["action"] in ACTIONS_WITH_ID and not _is_positive_int(target):
        return None
    if target is not None and not _is_positive_int(target):
        return None
    return {"action": body["action"], "id": target}


def _check_process_call(state: SimulatorState, site: int | None) -> tuple[Answer | None, dict | None]:
    """Auth first, then the site, then the body, like the platform; an Answer means stop."""
    if not _authorized(state):
        return _failure(401, MSG_UNAUTHORIZED, "unauthorized"), None
    if site is None:
        return _failure(404, MSG_NOT_FOUND, "not_found"), None
    body = _process_body()
    if body is None:
        return _failure(400, MSG_BAD_REQUEST, "bad_request"), None
    return None, body


# --- views ----------------------------------------------------------------------------------

sim = Blueprint("productsup_simulator", __name__)


def _state() -> SimulatorState:
    return current_app.extensions[EXTENSION]


def _respond(answer: Answer):
    response = jsonify(answer.body)
    response.status_code = answer.status
    response.headers.update(answer.headers)
    return response


def _finish(call: dict[str, Any], answer: Answer):
    """Fill in the recorded call, then hold a slow answer back as a slow platform would."""
    with _state().lock:
        call.update(status=answer.status, answer=answer.name, process_id=answer.process_id)
    if answer.delay > 0:
        time.sleep(answer.delay)
    return _respond(answer)


@sim.post("/platform/v2/process/<site_id>")
def process_call(site_id: str):
    state = _state()
    now = state.clock()
    site = _parse_site(site_id)
    call = state.record_call(now, site)
    answer, body = _check_process_call(state, site)
    if answer is None:
        with state.lock:
            call.update(action=body["action"], id=body["id"])
        fault = state.take_fault(site)
        answer = (_fault_answer(state, fault, site, body, now) if fault
                  else _by_rules(state, site, body))
    return _finish(call, answer)


@sim.get("/platform/v2/sites/<site_id>/status/<process_id>")
def status_call(site_id: str, process_id: str):
    state = _state()
    site = _parse_site(site_id)
    if not _authorized(state):
        return _respond(_failure(401, MSG_UNAUTHORIZED, "unauthorized"))
    if site is None:
        return _respond(_failure(404, MSG_NOT_FOUND, "not_found"))
    return jsonify(success=True, status=state.status_of(site, process_id, state.clock()))


def _parse_fault(data: Any) -> Fault | str:
    """Validate a ``/_sim/faults`` body; a str is the reason it was refused."""
    if not isinstance(data, dict) or data.get("answer") not in FAULTS:
        return f"answer must be one of {sorted(FAULTS)}"
    site, count = data.get("site"), data.get("count", 1)
    seconds = data.get("seconds", DEFAULT_FAULT_SECONDS)
    if site is not None and not _is_positive_int(site):
        return "site must be a positive integer"
    if not _is_positive_int(count):
        return "count must be a positive integer"
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < 3600:
        return "seconds must be a number from 0 to 3600"
    return Fault(data["answer"], site, count, float(seconds))


@sim.post("/_sim/faults")
def add_fault():
    fault = _parse_fault(request.get_json(force=True, silent=True))
    if isinstance(fault, str):
        return jsonify(success=False, message=fault), 400
    _state().add_fault(fault)
    return jsonify(success=True, fault=asdict(fault))


@sim.get("/_sim/calls")
def list_calls():
    with _state().lock:
        return jsonify([dict(call) for call in _state().calls])


@sim.get("/_sim/processes")
def list_processes():
    state = _state()
    state.advance(state.clock())
    with state.lock:
        return jsonify([asdict(p) for p in state.processes.values()])


@sim.post("/_sim/reset")
def reset():
    _state().reset()
    return jsonify(success=True)


def _json_error(error: HTTPException):
    """Unknown paths and wrong methods answer JSON like the rest, never an HTML page."""
    return jsonify(success=False, message=error.description), error.code


# --- factory and serving --------------------------------------------------------------------

def create_simulator(*, rate_limit_seconds: float = 300, run_seconds: float = 60,
                     auth_token: str | None = None, call_latency: float = 0.0,
                     clock: Callable[[], float] = time.time) -> Flask:
    """Build a fresh simulator app; its state is at ``app.extensions["productsup_simulator"]``."""
    app = Flask(__name__)
    app.extensions[EXTENSION] = SimulatorState(
        rate_limit_seconds=rate_limit_seconds, run_seconds=run_seconds, clock=clock,
        auth_token=auth_token, call_latency=call_latency)
    app.register_blueprint(sim)
    app.register_error_handler(HTTPException, _json_error)
    return app


def _server(host: str, port: int, kwargs: dict[str, Any]) -> BaseWSGIServer:
    return make_server(host, port, create_simulator(**kwargs), threaded=True)


def run_simulator(host: str, port: int, **kwargs: Any) -> None:
    """Serve until interrupted; threaded, because the lock rule needs overlapping calls."""
    server = _server(host, port, kwargs)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def start_simulator_thread(host: str, port: int, **kwargs: Any) -> tuple[BaseWSGIServer, threading.Thread]:
    """Serve in a daemon thread; port 0 picks a free port (``server.server_port``)."""
    server = _server(host, port, kwargs)
    thread = threading.Thread(target=server.serve_forever, args=(EMBEDDED_POLL_INTERVAL,),
                              name="productsup-simulator", daemon=True)
    thread.start()
    return server, thread
