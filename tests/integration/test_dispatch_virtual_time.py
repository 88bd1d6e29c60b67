"""Store + scheduler + dispatcher + client against the simulator over HTTP, all in virtual time.

One fake clock drives both the bridge and the simulator, so a five-minute rate window passes in
microseconds and every assertion is about what happened, not about how long we waited.
"""
from __future__ import annotations

import textwrap
import threading

import pytest
import requests

from bridge.dispatcher import Dispatcher
from bridge.platform import PlatformClient
from bridge.rules import load_config
from bridge.simulator import start_simulator_thread
from bridge.sources import Delivery
from bridge.store import Store

SITE = 777
RULES = textwrap.dedent("""\
    defaults:
      debounce: {quiet: 30s, max_wait: 5m}
      min_interval: 5m
    sources:
      erp: {type: none}
    rules:
      - name: route by payload
        source: erp
        then:
          action: "{{ payload.action }}"
          site: "{{ payload.site }}"
    """)


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def sim(clock):
    server, thread = start_simulator_thread("127.0.0.1", 0, clock=clock, rate_limit_seconds=300, run_seconds=600)
    url = f"http://127.0.0.1:{server.server_port}"
    yield url
    server.shutdown()


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(RULES.replace('action: "{{ payload.action }}"', "action: import"))
    return load_config(path)


@pytest.fixture
def store(database_url):
    """Every test here runs on SQLite and on PostgreSQL (`database_url` in conftest.py)."""
    store = Store.from_url(database_url)
    store.create_schema()
    yield store
    store.dispose()


def make_dispatcher(store, sim, clock, worker_id="w1", timeout=(2, 5)):
    return Dispatcher(store, PlatformClient(sim, "1:token", timeout=timeout), min_interval=lambda: 300.0,
                      clock=clock, poll_seconds=10.0, worker_id=worker_id)


def receive(store, config, clock, site=SITE):
    delivery = Delivery("erp", "batch", None, {"site": site}, {}, {})
    return store.record_event(delivery, b"{}", config.match(delivery.document), clock()).event_id


def calls(sim):
    return requests.get(sim + "/_sim/calls", timeout=5).json()


def fault(sim, answer, count=1, **extra):
    requests.post(sim + "/_sim/faults", json={"answer": answer, "count": count, **extra}, timeout=5).raise_for_status()


def run_for(dispatcher, clock, seconds, step=1.0):
    """Tick the dispatcher through `seconds` of virtual time."""
    end = clock.now + seconds
    while clock.now < end:
        dispatcher.tick()
        clock.advance(step)


def test_one_event_fires_once_after_quiet(store, config, clock, sim):
    dispatcher = make_dispatcher(store, sim, clock)
    event_id = receive(store, config, clock)
    run_for(dispatcher, clock, 29)
    assert calls(sim) == []
    run_for(dispatcher, clock, 2)
    assert [c["answer"] for c in calls(sim)] == ["accepted"]
    event = store.event(event_id)
    assert event["fate"] == "fired" and event["intents"][0]["process_id"] == calls(sim)[0]["process_id"]


def test_steady_stream_fires_at_max_wait_then_respects_min_interval(store, config, clock, sim):
    dispatcher = make_dispatcher(store, sim, clock)
    start = clock.now
    for _ in range(60):                 # an event every 10 s for 10 minutes: quiet never passes
        receive(store, config, clock)
        run_for(dispatcher, clock, 10)
    run_for(dispatcher, clock, 400)
    times = [c["at"] - start for c in calls(sim)]
    assert times[0] == pytest.approx(300, abs=1.5)          # max_wait after the first event
    assert all(b - a >= 300 for a, b in zip(times, times[1:]))
    assert all(c["answer"] == "accepted" for c in calls(sim))


def test_event_while_our_process_is_queued_is_covered(store, config, clock, sim):
    dispatcher = make_dispatcher(store, sim, clock)
    receive(store, config, clock)
    run_for(dispatcher, clock, 31)                    # call 1: runs at once, for 600 s
    receive(store, config, clock)
    run_for(dispatcher, clock, 300)                   # call 2: queued behind run 1
    assert len(calls(sim)) == 2
    covered = receive(store, config, clock)           # run 2 is still queued: it will include this
    run_for(dispatcher, clock, 400)
    event = store.event(covered)
    assert event["fate"] == "covered"
    assert event["intents"][0]["process_id"] == calls(sim)[1]["process_id"]
    assert len(calls(sim)) == 2


def test_rate_limited_answer_waits_for_retry_after(store, config, clock, sim):
    dispatcher = make_dispatcher(store, sim, clock)
    fault(sim, "rate_limited")
    event_id = receive(store, config, clock)
    run_for(dispatcher, clock, 31)
    assert [c["answer"] for c in calls(sim)] == ["rate_limited"]
    run_for(dispatcher, clock, 400)
    assert [c["answer"] for c in calls(sim)] == ["rate_limited", "accepted"]
    assert store.event(event_id)["fate"] == "fired"


def test_lock_is_retried_in_seconds(store, config, clock, sim):
    dispatcher = make_dispatcher(store, sim, clock)
    fault(sim, "locked")
    receive(store, config, clock)
    run_for(dispatcher, clock, 40)
    answers = calls(sim)
    assert [c["answer"] for c in answers] == ["locked", "accepted"]
    assert answers[1]["at"] - answers[0]["at"] < 10


def test_job_server_error_retried_once_then_failed_loudly(store, config, clock, sim):
    dispatcher = make_dispatcher(store, sim, clock)
    fault(sim, "job_server", count=2)
    event_id = receive(store, config, clock)
    run_for(dispatcher, clock, 200)
    assert [c["answer"] for c in calls(sim)] == ["job_server", "job_server"]
    event = store.event(event_id)
    assert event["fate"] == "failed" and "job server" in event["intents"][0]["detail"]


REFUSALS = [("unauthorized", 401), ("forbidden", 403), ("not_found", 404), ("bad_request", 400),
            ("success_false", 200)]


# Telling the refusals apart is the client's business: one of them on PostgreSQL proves the store's part.
@pytest.mark.parametrize("database_url, answer, status",
                         [("sqlite", *refusal) for refusal in REFUSALS] + [("postgresql", *REFUSALS[0])],
                         indirect=["database_url"])
def test_permanent_refusal_fails_without_retry(store, config, clock, sim, answer, status):
    dispatcher = make_dispatcher(store, sim, clock)
    fault(sim, answer)
    event_id = receive(store, config, clock)
    run_for(dispatcher, clock, 1000)
    assert len(calls(sim)) == 1
    event = store.event(event_id)
    assert event["fate"] == "failed" and f"({status})" in event["intents"][0]["detail"]


@pytest.mark.parametrize("answer", ["legacy_pid", "no_id"])
def test_older_platforms_answers_are_accepted(store, config, clock, sim, answer):
    dispatcher = make_dispatcher(store, sim, clock)
    fault(sim, answer)
    event_id = receive(store, config, clock)
    run_for(dispatcher, clock, 31)
    assert store.event(event_id)["fate"] == "fired"
    assert len(calls(sim)) == 1


def test_timeout_is_retried_after_min_interval(store, config, clock, sim):
    dispatcher = make_dispatcher(store, sim, clock, timeout=(1, 0.3))
    fault(sim, "timeout", seconds=0.6)
    event_id = receive(store, config, clock)
    run_for(dispatcher, clock, 31)
    assert store.event(event_id)["fate"] == "pending"
    run_for(dispatcher, clock, 300)
    assert store.event(event_id)["fate"] == "fired"
    answers = calls(sim)
    assert len(answers) == 2 and answers[1]["at"] - answers[0]["at"] >= 300


def test_dead_dispatcher_mid_call_is_recovered_as_unknown(store, config, clock, sim):
    from bridge import scheduler
    event_id = receive(store, config, clock)
    clock.advance(31)
    # A dispatcher claimed the site and recorded the call, then died before the answer.
    assert store.claim_site(SITE, "dead", clock(), 120)
    state, pending, _ = store.site_snapshot(SITE)
    store.start_call(SITE, scheduler.Call("import", None, tuple(i.id for i in pending)), clock())
    dispatcher = make_dispatcher(store, sim, clock)
    run_for(dispatcher, clock, 100)
    assert calls(sim) == []                            # the dead holder's lease has not run out
    run_for(dispatcher, clock, 250)
    assert [c["answer"] for c in calls(sim)] == ["accepted"]
    assert store.event(event_id)["fate"] == "fired"


def test_two_dispatchers_racing_make_one_call(store, config, clock, sim, database_url):
    receive(store, config, clock)
    clock.advance(31)
    second_store = Store.from_url(database_url)
    dispatchers = [make_dispatcher(store, sim, clock, "a"), make_dispatcher(second_store, sim, clock, "b")]
    barrier = threading.Barrier(len(dispatchers))

    def run(dispatcher):
        barrier.wait()
        for _ in range(5):
            dispatcher.tick()

    threads = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [c["answer"] for c in calls(sim)] == ["accepted"]
    second_store.dispose()


def test_a_run_seen_queued_after_the_event_covers_it_even_once_it_is_running(store, config, clock, sim):
    """Coverage rests on the last `queued` sighting, not on the status read since."""
    from bridge.store import schema as t
    event_id = receive(store, config, clock)
    with store.engine.begin() as conn:
        conn.execute(t.processes.insert().values(
            process_id="p-earlier", site_id=SITE, action="all", target_id=None, called_at=clock() - 100,
            status="running", last_seen_queued_at=clock() + 1, last_polled_at=clock() + 5))
    run_for(make_dispatcher(store, sim, clock), clock, 100)
    event = store.event(event_id)
    assert event["fate"] == "covered" and event["intents"][0]["process_id"] == "p-earlier"
    assert calls(sim) == []
