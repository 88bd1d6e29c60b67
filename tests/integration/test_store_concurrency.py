"""The store under contention, on SQLite and on a real PostgreSQL server (`database_url`, conftest.py).

Every thread has its own Store and engine, as separate processes would: whatever the interleaving,
one site has one holder, no event is lost, and a dead holder's work comes back as unknown outcome.
"""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, func, select, text, update

from bridge import scheduler
from bridge.rules.model import Intent, Match, RuleTrace
from bridge.sources import Delivery
from bridge.store import Store
from bridge.store import schema as t
from tests.helpers import wait_until

THREADS = 8
SITE = 555
NOW = 1_000_000.0
LEASE = 120.0


@pytest.fixture
def stores(database_url):
    """One Store per thread, each with a live connection, so the race starts at the database."""
    stores = [Store.from_url(database_url) for _ in range(THREADS)]
    stores[0].create_schema()
    for store in stores:
        store.count_events()
    yield stores
    for store in stores:
        store.dispose()


def race(stores, work):
    """Run `work(store, index)` in one thread per store, all released at the same instant."""
    barrier = threading.Barrier(len(stores))
    results, errors = [None] * len(stores), []

    def run(index, store):
        try:
            barrier.wait(10)
            results[index] = work(store, index)
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i, store)) for i, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    return results


def receive(store, now, site=SITE, action="import"):
    match = Match([Intent(site, action, None, "r", 30.0, 300.0)], [], [RuleTrace("r", True)])
    return store.record_event(Delivery("erp", "batch", None, {}, {}, {}), b"{}", match, now).event_id


def wait_while_running_unless_blocked(database_url, thread):
    """Until `thread` waits for a lock the test holds (PostgreSQL shows it; SQLite: a pause) or ends."""
    if not database_url.startswith("postgresql"):
        thread.join(0.3)
        return
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        waiting = select(func.count()).select_from(text("pg_locks")).where(text("NOT granted"))
        wait_until(lambda: not thread.is_alive() or conn.execute(waiting).scalar(), timeout=10,
                   message="the thread to finish or wait for a lock")
    engine.dispose()


def links(store):
    with store.engine.connect() as conn:
        return conn.execute(select(t.intent_events.c.event_id, t.intents.c.id, t.intents.c.status).join(
            t.intents, t.intents.c.id == t.intent_events.c.intent_id)).all()


@pytest.mark.parametrize("site_exists", [False, True], ids=["new-site", "known-site"])
def test_one_claimer_wins(stores, site_exists):
    for round_ in range(5):
        site = SITE + round_
        if site_exists:
            receive(stores[0], NOW, site=site)
        winners = race(stores, lambda store, i: store.claim_site(site, f"w{i}", NOW, LEASE))
        assert winners.count(True) == 1, (site, winners)


def test_concurrent_events_are_all_linked_and_coalesce(stores):
    per_thread = 5
    event_ids = race(stores, lambda store, i: [receive(store, NOW + n) for n in range(per_thread)])
    event_ids = [event_id for batch in event_ids for event_id in batch]
    assert len(set(event_ids)) == THREADS * per_thread
    linked = links(stores[0])
    assert sorted(e for e, _, _ in linked) == sorted(event_ids)        # one link per event, none lost
    assert {status for _, _, status in linked} == {"pending"}
    state, pending, _ = stores[0].site_snapshot(SITE)
    assert {i.id for i in pending} == {intent_id for _, intent_id, _ in linked}
    groups = scheduler.coalesce(pending)
    assert len(groups) == 1 and groups[0][0] == "import"             # one call, however many rows
    assert all(stores[0].event(e)["fate"] == "pending" for e in event_ids[:3])


def test_event_racing_a_call_start_gets_a_new_intent(stores, database_url):
    """An event committed after a call took its intent must not ride on that call: it needs the next."""
    store = stores[0]
    first = receive(store, NOW)
    (_, intent_id, _), = links(store)
    blocker = Store.from_url(database_url).engine
    with blocker.connect() as conn:
        conn.begin()
        # What start_call does, held open: the dispatcher took the intent and is about to call.
        conn.execute(update(t.intents).where(t.intents.c.id == intent_id).values(status="in_flight"))
        result = {}
        thread = threading.Thread(target=lambda: result.setdefault("event", receive(stores[1], NOW + 1)))
        thread.start()
        wait_while_running_unless_blocked(database_url, thread)   # record_event reaches the intent row
        conn.commit()
    thread.join(30)
    blocker.dispose()
    by_event = {event_id: (linked_id, status) for event_id, linked_id, status in links(store)}
    assert by_event[first] == (intent_id, "in_flight")
    assert by_event[result["event"]][0] != intent_id and by_event[result["event"]][1] == "pending"


def test_dead_holders_lease_expires_then_one_claimer_recovers_its_call(stores):
    event_id = receive(stores[0], NOW)
    assert stores[0].claim_site(SITE, "dead", NOW + 31, LEASE)
    _, pending, _ = stores[0].site_snapshot(SITE)
    call_id = stores[0].start_call(SITE, scheduler.Call("import", None, tuple(i.id for i in pending)), NOW + 31)

    early = race(stores, lambda store, i: store.claim_site(SITE, f"w{i}", NOW + 31 + LEASE - 1, LEASE))
    assert early.count(True) == 0
    assert stores[0].event(event_id)["intents"][0]["status"] == "in_flight"

    later = race(stores, lambda store, i: store.claim_site(SITE, f"w{i}", NOW + 31 + LEASE + 1, LEASE))
    assert later.count(True) == 1
    state, pending, _ = stores[0].site_snapshot(SITE)
    assert [(i.unknown_outcome, i.attempts) for i in pending] == [(True, 0)]
    assert state.last_call_at == NOW + 31 and not state.in_flight
    assert [(c["id"], c["outcome"]) for c in stores[0].calls(SITE)] == [(call_id, "Lost")]


def test_recovery_never_takes_a_live_call(stores, monkeypatch, database_url):
    """A dispatcher claims and starts its call just after another saw the site free in recover_abandoned."""
    checker, caller = stores[0], stores[1]
    receive(checker, NOW)
    _, pending, _ = checker.site_snapshot(SITE)
    call = scheduler.Call("import", None, tuple(i.id for i in pending))
    recover = checker._recover_abandoned_calls
    started = []

    def claim_and_call():
        assert caller.claim_site(SITE, "live", NOW + 31, LEASE)
        started.append(caller.start_call(SITE, call, NOW + 31))

    def recover_after_a_live_claim(conn, site_id, now):
        thread = threading.Thread(target=claim_and_call)
        thread.start()
        wait_while_running_unless_blocked(database_url, thread)   # it ends unless the site is locked for us
        recover(conn, site_id, now)
        return thread

    monkeypatch.setattr(checker, "_recover_abandoned_calls", recover_after_a_live_claim)
    checker.recover_abandoned(SITE, NOW + 31)
    wait_until(lambda: started, timeout=30, message="the live claimer to start its call")
    state, pending, _ = checker.site_snapshot(SITE)
    assert state.in_flight and pending == []
    assert [(c["id"], c["outcome"]) for c in checker.calls(SITE)] == [(started[0], None)]


def test_processes_starting_together_create_the_schema_once(database_url):
    """Web workers and dispatchers all call create_schema at start, on an empty database."""
    stores = [Store.from_url(database_url) for _ in range(THREADS)]
    try:
        race(stores, lambda store, i: store.create_schema())
        assert stores[0].count_events() == 0
    finally:
        for store in stores:
            store.dispose()
