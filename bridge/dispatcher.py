"""The imperative shell around the scheduler: claim due work, call the platform, record the answer.

The clock is read once per step and passed down; every decision comes from `bridge.scheduler`.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Callable

from bridge import scheduler
from bridge.platform import PlatformClient

log = logging.getLogger("bridge.dispatcher")

# A claim outlives the longest call (connect + read timeouts) with room to record the answer.
CLAIM_LEASE = 60.0
# Forgetting old delivery ids is housekeeping: once an hour is plenty.
PRUNE_EVERY = 3600.0


class Dispatcher:
    def __init__(self, store, platform: PlatformClient, *, min_interval: Callable[[], float],
                 clock: Callable[[], float] = time.time, poll_seconds: float = 30.0,
                 poll_deadline: float = 6 * 3600, worker_id: str | None = None,
                 dedup_retention: Callable[[], float] = lambda: 7 * 86400.0):
        self.store = store
        self.platform = platform
        self.min_interval = min_interval
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.poll_deadline = poll_deadline
        self.dedup_retention = dedup_retention
        self.pruned_at = float("-inf")
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def tick(self) -> float | None:
        """One pass over every site with work. Returns when the next known work is due."""
        now = self.clock()
        self.poll_statuses(now)
        self.prune(now)
        next_due = None
        for site_id in self.store.sites_with_work():
            due = self.run_site(site_id)
            if due is not None:
                next_due = due if next_due is None else min(next_due, due)
        return next_due

    def run_site(self, site_id: int) -> float | None:
        self.store.recover_abandoned(site_id, self.clock())
        decisions = self._decide(site_id, self.clock())
        call = next((d for d in decisions if isinstance(d, scheduler.Call)), None)
        if call is None:
            return next((d.until for d in decisions if isinstance(d, scheduler.Wait)), None)
        self._call_under_claim(site_id)
        return None

    def _decide(self, site_id: int, now: float) -> list[scheduler.Decision]:
        state, pending, processes = self.store.site_snapshot(site_id, now - self.poll_deadline)
        decisions = scheduler.decide(now, state, pending, processes, self.min_interval())
        for cover in (d for d in decisions if isinstance(d, scheduler.Cover)):
            log.info("site %s: intents %s covered by queued process %s", site_id, cover.intent_ids,
                     cover.process_id)
            self.store.cover(cover.intent_ids, cover.process_id, now)
        return decisions

    def _call_under_claim(self, site_id: int) -> None:
        if not self.store.claim_site(site_id, self.worker_id, self.clock(), CLAIM_LEASE):
            return  # another process holds this site: it makes the call
        try:
            self._refresh_queued(site_id)
            # Decide again under the claim: the snapshot before it may be stale.
            decisions = self._decide(site_id, self.clock())
            call = next((d for d in decisions if isinstance(d, scheduler.Call)), None)
            if call is not None:
                self._call(site_id, call)
        finally:
            self.store.release_site(site_id, self.worker_id)

    def _refresh_queued(self, site_id: int) -> None:
        """A fresh `queued` read of our own process can spare a call: its run will hold the new data."""
        now = self.clock()
        for process in self.store.processes_to_poll(now, 0.0, now - self.poll_deadline, site_id=site_id):
            if process["status"] == "queued":
                self._poll_one(process)

    def _call(self, site_id: int, call: scheduler.Call) -> None:
        called_at = self.clock()
        call_id = self.store.start_call(site_id, call, called_at)
        outcome = self.platform.trigger(site_id, call.action, call.target_id)
        now = self.clock()
        state, pending, processes = self.store.site_snapshot(site_id, now - self.poll_deadline)
        intents = self.store.intents_of_call(call_id)
        result = scheduler.after_call(called_at, now, call, outcome, intents, processes, self.min_interval())
        self.store.finish_call(site_id, call_id, call, outcome, result, now, called_at)
        level = logging.WARNING if result.fate == "failed" else logging.INFO
        log.log(level, "site %s: %s%s -> %s (%s) %s", site_id, call.action,
                f" {call.target_id}" if call.target_id is not None else "", type(outcome).__name__,
                result.fate, result.process_id or result.detail)

    def prune(self, now: float) -> None:
        if now - self.pruned_at >= PRUNE_EVERY:
            self.pruned_at = now
            self.store.prune_deliveries(now - self.dedup_retention())

    def poll_statuses(self, now: float) -> None:
        for process in self.store.processes_to_poll(now, self.poll_seconds, now - self.poll_deadline):
            self._poll_one(process)

    def _poll_one(self, process: dict) -> None:
        asked_at = self.clock()
        status = self.platform.status(process["site_id"], process["process_id"])
        if isinstance(status, str):
            self.store.record_status(process["id"], status, asked_at)

    def run_forever(self, stop: threading.Event, tick_seconds: float = 1.0) -> None:
        log.info("dispatcher %s started", self.worker_id)
        while not stop.is_set():
            try:
                next_due = self.tick()
            except Exception:  # a database hiccup must not end the loop; it is retried next tick
                log.exception("dispatcher tick failed")
                next_due = None
            wait = tick_seconds if next_due is None else min(tick_seconds, max(0.05, next_due - self.clock()))
            stop.wait(wait)
        log.info("dispatcher %s stopped", self.worker_id)


def start_dispatcher_thread(dispatcher: Dispatcher, tick_seconds: float) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run_forever, args=(stop, tick_seconds),
                              name="bridge-dispatcher", daemon=True)
    thread.start()
    return stop, thread
