"""The simulator over real HTTP, with time driven by a fake clock (no sleeping for time rules)."""
import math
import threading
import time

import pytest
import requests

from bridge.platform import (
    Accepted, JobServerError, Locked, PlatformClient, QueueFull, RateLimited, Rejected, Unknown,
)
from bridge.simulator import create_simulator, start_simulator_thread

T0 = 1_700_000_000.25
TOKEN = "4711:sim-token"
HEADERS = {"X-Auth-Token": TOKEN}
RATE = 300
RUN = 1000  # longer than the window, so a second call can find the first still running
SITE = 42


class FakeClock:
    """Time that only moves when a test says so."""

    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class Sim:
    """A running simulator plus handy calls against it."""

    def __init__(self, **kwargs):
        self.clock = FakeClock()
        self.server, self.thread = start_simulator_thread(
            "127.0.0.1", 0, clock=self.clock, **kwargs)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.state = self.server.app.extensions["productsup_simulator"]

    def trigger(self, site=SITE, body=None, headers=HEADERS):
        body = {"action": "import"} if body is None else body
        return requests.post(f"{self.url}/platform/v2/process/{site}", json=body,
                             headers=headers, timeout=5)

    def status(self, process_id, site=SITE, headers=HEADERS):
        return requests.get(f"{self.url}/platform/v2/sites/{site}/status/{process_id}",
                            headers=headers, timeout=5)

    def fault(self, **body):
        return requests.post(f"{self.url}/_sim/faults", json=body, timeout=5)

    def get(self, path):
        return requests.get(f"{self.url}{path}", timeout=5).json()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def shared():
    sim = Sim(rate_limit_seconds=RATE, run_seconds=RUN)
    yield sim
    sim.stop()


@pytest.fixture
def sim(shared):
    requests.post(f"{shared.url}/_sim/reset", timeout=5).raise_for_status()
    shared.clock.now = T0
    return shared


def pid_of(response):
    assert response.status_code == 200, response.text
    return response.json()["process_id"]


# --- accepting, rate limit, queue -----------------------------------------------------------

def test_accepted_call_starts_running_and_is_recorded(sim):
    response = sim.trigger(body={"action": "export", "id": 9})
    process_id = pid_of(response)
    assert response.json() == {"success": True, "process_id": process_id}
    assert sim.status(process_id).json() == {"success": True, "status": "running"}
    assert sim.get("/_sim/calls") == [{"at": T0, "site": SITE, "action": "export", "id": 9,
                                       "status": 200, "answer": "accepted",
                                       "process_id": process_id}]
    (process,) = sim.get("/_sim/processes")
    assert process["status"] == "running" and process["started_at"] == T0


def test_rate_limit_and_retry_after_timestamp(sim):
    pid_of(sim.trigger())
    sim.clock.now = T0 + 10
    limited = sim.trigger()
    assert limited.status_code == 429
    assert limited.json() == {"success": False, "message": "Too many attempts."}
    assert limited.headers["X-RateLimit-Limit"] == "1"
    assert limited.headers["X-Ratelimit-Remaining"] == "0"
    assert limited.headers["X-Ratelimit-Retry-After"] == str(math.ceil(T0 + RATE))


def test_only_accepted_calls_start_the_window(sim):
    pid_of(sim.trigger())
    sim.clock.now = T0 + RATE - 1
    assert sim.trigger().status_code == 429
    sim.clock.now = T0 + RATE
    assert sim.trigger().status_code == 200


def test_rate_limit_is_per_site(sim):
    pid_of(sim.trigger(site=1))
    pid_of(sim.trigger(site=2))


def test_one_running_one_queued_then_queue_full(sim):
    first = pid_of(sim.trigger())
    sim.clock.now = T0 + RATE
    second = pid_of(sim.trigger())
    assert sim.status(first).json()["status"] == "running"
    assert sim.status(second).json()["status"] == "queued"
    sim.clock.now = T0 + 2 * RATE
    full = sim.trigger()
    assert full.status_code == 429
    assert "already in the current queue" in full.json()["message"]
    assert "X-Ratelimit-Retry-After" not in full.headers


def test_queued_process_starts_when_running_one_ends(sim):
    first = pid_of(sim.trigger())
    sim.clock.now = T0 + RATE
    second = pid_of(sim.trigger())
    sim.clock.now = T0 + RUN + 0.5
    assert sim.status(first).json()["status"] == "success"
    assert sim.status(second).json()["status"] == "running"
    processes = {p["process_id"]: p for p in sim.get("/_sim/processes")}
    assert processes[first]["ended_at"] == T0 + RUN
    assert processes[second]["started_at"] == T0 + RUN
    assert processes[second]["queued_at"] == T0 + RATE


def test_status_transitions_queued_running_success(sim):
    pid_of(sim.trigger())
    sim.clock.now = T0 + RATE
    second = pid_of(sim.trigger())
    seen = []
    for now in (T0 + RATE, T0 + RUN, T0 + 2 * RUN - 1, T0 + 2 * RUN):
        sim.clock.now = now
        seen.append(sim.status(second).json()["status"])
    assert seen == ["queued", "running", "running", "success"]


def test_slot_frees_after_queue_full(sim):
    pid_of(sim.trigger())
    sim.clock.now = T0 + RATE
    pid_of(sim.trigger())
    sim.clock.now = T0 + 2 * RATE
    assert sim.trigger().status_code == 429  # queue full: does not start the window
    sim.clock.now = T0 + RUN
    assert sim.trigger().status_code == 200


def test_unknown_id_answers_queued(sim):
    assert sim.status("no-such-process").json() == {"success": True, "status": "queued"}


def test_other_sites_process_answers_queued(sim):
    process_id = pid_of(sim.trigger(site=7))
    assert sim.status(process_id, site=8).json()["status"] == "queued"


def test_reset_clears_everything(sim):
    pid_of(sim.trigger())
    sim.fault(answer="locked")
    requests.post(f"{sim.url}/_sim/reset", timeout=5)
    assert sim.get("/_sim/calls") == [] and sim.get("/_sim/processes") == []
    assert sim.trigger().status_code == 200


# --- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, {"X-Auth-Token": "no-colon"}, {"X-Auth-Token": ":x"},
                                     {"X-Auth-Token": "1: "}])
def test_bad_auth_is_401(sim, headers):
    response = sim.trigger(headers=headers)
    assert response.status_code == 401
    assert response.json() == {"success": False, "message": "Invalid authentication token"}
    assert sim.status("x", headers=headers).status_code == 401


def test_configured_token_must_match():
    other = Sim(auth_token=TOKEN)
    try:
        assert other.trigger(headers={"X-Auth-Token": "4711:wrong"}).status_code == 401
        assert other.status("x", headers={"X-Auth-Token": "4711:wrong"}).status_code == 401
        assert other.trigger().status_code == 200
    finally:
        other.stop()


@pytest.mark.parametrize("body", [
    [1], "text", {}, {"action": "imprt"}, {"action": "export"}, {"action": "channel", "id": 0},
    {"action": "export", "id": "5"}, {"action": "export", "id": True}, {"action": "import", "id": -1},
])
def test_bad_body_is_400(sim, body):
    response = sim.trigger(body=body)
    assert response.status_code == 400 and response.json()["success"] is False


def test_non_json_body_is_400(sim):
    response = requests.post(f"{sim.url}/platform/v2/process/{SITE}", data=b"\xff{",
                             headers=HEADERS, timeout=5)
    assert response.status_code == 400


@pytest.mark.parametrize("site", ["abc", "0", "-1", "1.5", "99999999999999999999999"])
def test_bad_site_is_404(sim, site):
    assert sim.trigger(site=site).status_code == 404
    assert sim.status("x", site=site).status_code == 404


def test_unknown_path_is_json_404(sim):
    response = requests.get(f"{sim.url}/nope", timeout=5)
    assert response.status_code == 404 and response.json()["success"] is False


def test_failed_calls_are_recorded(sim):
    sim.trigger(headers={})
    sim.trigger(site="abc")
    assert [(c["site"], c["status"], c["answer"]) for c in sim.get("/_sim/calls")] == [
        (SITE, 401, "unauthorized"), (None, 404, "not_found")]


# --- faults ---------------------------------------------------------------------------------

CANNED = [
    ("rate_limited", 429, "Too many attempts."),
    ("queue_full", 429, "already in the current queue"),
    ("locked", 500, "lock is already acquired"),
    ("job_server", 500, "job server"),
    ("unauthorized", 401, "Invalid authentication token"),
    ("forbidden", 403, "rights"),
    ("not_found", 404, "not found"),
    ("bad_request", 400, "Bad request"),
    ("success_false", 200, "could not be triggered"),
]


@pytest.mark.parametrize("name, status, text", CANNED)
def test_canned_fault_answers_once_and_creates_nothing(sim, name, status, text):
    assert sim.fault(answer=name).status_code == 200
    response = sim.trigger()
    assert response.status_code == status
    assert response.json()["success"] is False and text in response.json()["message"]
    assert sim.get("/_sim/processes") == []
    assert sim.get("/_sim/calls")[0]["answer"] == name
    assert sim.trigger().status_code == 200  # used up; the rules apply again


def test_rate_limited_fault_names_a_retry_time(sim):
    sim.fault(answer="rate_limited")
    assert sim.trigger().headers["X-Ratelimit-Retry-After"] == str(math.ceil(T0 + RATE))


def test_legacy_pid_fault_creates_a_real_process(sim):
    sim.fault(answer="legacy_pid")
    body = sim.trigger().json()
    assert set(body) == {"success", "pid"}
    assert sim.status(body["pid"]).json()["status"] == "running"
    assert sim.get("/_sim/calls")[0]["process_id"] == body["pid"]


def test_no_id_fault_creates_a_real_process(sim):
    sim.fault(answer="no_id")
    assert sim.trigger().json() == {"success": True}
    (process,) = sim.get("/_sim/processes")
    assert process["status"] == "running"
    assert sim.trigger().status_code == 429  # it opened the window like any accepted call


def test_timeout_fault_answers_late_but_creates_the_process(sim):
    sim.fault(answer="timeout", seconds=0.3)
    started = time.monotonic()
    response = sim.trigger()
    assert time.monotonic() - started >= 0.3
    assert response.json()["process_id"] == sim.get("/_sim/processes")[0]["process_id"]


def test_fault_for_one_site_spares_others_and_counts(sim):
    sim.fault(answer="locked", site=5, count=2)
    assert sim.trigger(site=6).status_code == 200
    assert [sim.trigger(site=5).status_code for _ in range(2)] == [500, 500]
    assert sim.trigger(site=5).status_code == 200


def test_faults_still_need_auth_and_a_good_body(sim):
    sim.fault(answer="locked")
    assert sim.trigger(headers={}).status_code == 401
    assert sim.trigger(body={"action": "nope"}).status_code == 400
    assert sim.trigger().status_code == 500


@pytest.mark.parametrize("body", [
    {"answer": "explode"}, {}, [1], {"answer": "locked", "count": 0},
    {"answer": "locked", "site": "x"}, {"answer": "timeout", "seconds": "long"},
])
def test_bad_fault_is_400(sim, body):
    assert requests.post(f"{sim.url}/_sim/faults", json=body, timeout=5).status_code == 400


# --- the lock -------------------------------------------------------------------------------

def wait_until(predicate, deadline=5.0):
    end = time.monotonic() + deadline
    while not predicate():
        assert time.monotonic() < end, "condition never became true"
        time.sleep(0.005)


def test_concurrent_calls_for_one_site_get_a_lock_500():
    slow = Sim(call_latency=0.3)
    try:
        results = {}
        first = threading.Thread(target=lambda: results.setdefault("first", slow.trigger()))
        first.start()
        wait_until(lambda: slow.state.is_handling(SITE))
        second = slow.trigger()
        first.join(timeout=5)
        assert results["first"].status_code == 200
        assert second.status_code == 500
        assert second.json() == {"success": False,
                                 "message": "Could not trigger the process, a lock is already acquired"}
        assert sorted(c["answer"] for c in slow.get("/_sim/calls")) == ["accepted", "locked"]
        assert not slow.state.is_handling(SITE)
    finally:
        slow.stop()


# --- client and simulator agree -------------------------------------------------------------

EXPECTED = {
    "rate_limited": RateLimited(float(math.ceil(T0 + RATE)), message="Too many attempts."),
    "queue_full": QueueFull,
    "locked": Locked,
    "job_server": JobServerError,
    "unauthorized": Rejected(401, message="Invalid authentication token"),
    "forbidden": Rejected(403, message="You do not have the rights to access this site"),
    "not_found": Rejected(404, message="Site not found"),
    "bad_request": Rejected(400, message="Bad request"),
    "success_false": Rejected(200, message="Process could not be triggered"),
    "legacy_pid": Accepted,
    "no_id": Accepted(None),
    "timeout": Unknown,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_client_classifies_every_fault_like_the_real_table(sim, name):
    client = PlatformClient(sim.url, TOKEN, timeout=(1, 0.1))
    sim.fault(answer=name, seconds=0.3)
    outcome = client.trigger(SITE, "import")
    expected = EXPECTED[name]
    if isinstance(expected, type):
        assert type(outcome) is expected
    else:
        assert outcome == expected


def test_client_reads_accepted_id_and_status_from_rules(sim):
    client = PlatformClient(sim.url, TOKEN)
    outcome = client.trigger(SITE, "channel", 3)
    assert isinstance(outcome, Accepted) and outcome.process_id
    assert client.status(SITE, outcome.process_id) == "running"
    assert client.status(SITE, "unknown") == "queued"
    sim.clock.now = T0 + 10
    assert client.trigger(SITE, "import") == RateLimited(float(math.ceil(T0 + RATE)),
                                                        message="Too many attempts.")


def test_client_sees_legacy_pid_as_the_real_process(sim):
    client = PlatformClient(sim.url, TOKEN)
    sim.fault(answer="legacy_pid")
    outcome = client.trigger(SITE, "import")
    assert client.status(SITE, outcome.process_id) == "running"


def test_client_sees_real_lock_and_queue_full():
    slow = Sim(call_latency=0.3, rate_limit_seconds=0, run_seconds=RUN)
    client = PlatformClient(slow.url, TOKEN)
    try:
        assert isinstance(client.trigger(SITE, "import"), Accepted)
        assert isinstance(client.trigger(SITE, "import"), Accepted)
        assert isinstance(client.trigger(SITE, "import"), QueueFull)
        results = {}
        first = threading.Thread(target=lambda: results.setdefault("r", client.trigger(7, "all")))
        first.start()
        wait_until(lambda: slow.state.is_handling(7))
        assert isinstance(client.trigger(7, "all"), Locked)
        first.join(timeout=5)
        assert isinstance(results["r"], Accepted)
    finally:
        slow.stop()


def test_create_simulator_is_a_plain_flask_app():
    app = create_simulator(clock=FakeClock())
    response = app.test_client().post("/platform/v2/process/1", json={"action": "all"},
                                      headers=HEADERS)
    assert response.status_code == 200 and response.get_json()["success"] is True
