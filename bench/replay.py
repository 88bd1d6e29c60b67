"""Replay benchmark: event traces in virtual time, the bridge against two naive forwarders.

Every strategy calls the real simulator (bridge.simulator, over HTTP on 127.0.0.1, rate limit
300 s, runs of 600 s) through the real PlatformClient, and one fake clock drives both sides, so
hours of traffic replay in seconds and nothing sleeps:

  bridge       the real store (SQLite in a temp dir), scheduler and dispatcher, as `bridge worker`
               wires them (debounce quiet 30 s, max_wait 5 m, min_interval 5 m, status polls 30 s)
  naive        one process call per event, the moment it arrives; no retry
  fixed-delay  one process call per event, 30 s after it arrives; no coalescing, no rate awareness

Events are recorded into the bridge's store the way the hook endpoint records them (a verified
delivery matched against a rules file). The bridge's loop is event driven: after each tick the
virtual clock jumps to the next thing the dispatcher would act on (an arrival, the due time the
dispatcher returned, the next status poll), which is what its real loop does with a finer tick.

An event "lands" in the first run of its site that the simulator STARTED at or after the event's
arrival (a run includes the data that arrived before it started). After the last event each replay
goes on for a drain hour, so late runs count.

    .venv/bin/python bench/replay.py [--seed 7] [--traces burst,trickle,sessions,midrun]
"""
from __future__ import annotations

import argparse
import heapq
import logging
import random
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import requests

from bridge.dispatcher import Dispatcher
from bridge.platform import PlatformClient
from bridge.rules import load_config
from bridge.simulator import start_simulator_thread
from bridge.sources import Delivery
from bridge.store import Store
from bridge.store.repository import RUNNING_POLL_FACTOR

EPOCH = 1_700_000_000.0       # virtual time of every trace's t=0 (a plausible Unix time)
RATE_LIMIT = 300.0            # simulator: one accepted process call per site per 5 minutes
RUN_SECONDS = 600.0           # simulator: each run lasts 10 minutes (--run-seconds)
POLL_SECONDS = 30.0           # the bridge's default BRIDGE_POLL_SECONDS
FIXED_DELAY = 30.0            # the fixed-delay forwarder's wait
DRAIN = 3600.0                # virtual seconds replayed after the last event
MIN_STEP = 0.05               # the dispatcher loop's shortest pause, as in run_forever
MAX_TICKS = 200_000           # hard bound on dispatcher ticks per replay
WALL_LIMIT = 60.0             # hard bound on wall seconds per replay
TOKEN = "1:bench"
HTTP_TIMEOUT = 10

RULES = """\
defaults:
  debounce: {quiet: 30s, max_wait: 5m}
  min_interval: 5m
sources:
  uploads: {type: none}
rules:
  - name: upload finished
    source: uploads
    then:
      action: import
      site: "{{ payload.site }}"
"""


class Clock:
    """One virtual clock for the bridge and the simulator."""

    def __init__(self, now: float = EPOCH):
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- traces ---------------------------------------------------------------------------------

@dataclass
class Trace:
    name: str
    description: str
    events: list[tuple[float, int]]      # (seconds from t=0, site), sorted

    @property
    def end(self) -> float:
        return self.events[-1][0]


def burst(rng: random.Random) -> Trace:
    return Trace("burst", "all within 2 s",
                 sorted((rng.uniform(0, 2), 1) for _ in range(20)))


def trickle(rng: random.Random) -> Trace:
    return Trace("trickle", "one every 20 s for 2 h",
                 [(i * 20.0, 1) for i in range(360)])


def sessions(rng: random.Random) -> Trace:
    """Upload sessions: 3-30 files 1-20 s apart; sessions start ~30 min apart on average, over 8 h."""
    events, t, count = [], 0.0, 0
    while True:
        t += rng.expovariate(1 / 1800)
        if t > 8 * 3600:
            break
        at, count = t, count + 1
        for _ in range(rng.randint(3, 30)):
            events.append((at, 1))
            at += rng.uniform(1, 20)
        t = at
    return Trace("sessions", f"{count} upload sessions within 8 h", sorted(events))


def midrun(rng: random.Random) -> Trace:
    """Every 25 min one event starts a run; 3 more arrive 2-10 min later, while that run goes on."""
    events = []
    for r in range(12):
        start = r * 1500.0 + rng.uniform(0, 60)
        events.append((start, 1))
        events.extend((start + rng.uniform(120, 600), 1) for _ in range(3))
    return Trace("midrun", "12 rounds 25 min apart: 1 event, then 3 more 2-10 min later",
                 sorted(events))


TRACES: dict[str, Callable[[random.Random], Trace]] = {
    "burst": burst, "trickle": trickle, "sessions": sessions, "midrun": midrun}


# --- strategies -----------------------------------------------------------------------------

@dataclass
class Replay:
    """What one strategy did with one trace, as the simulator saw it."""
    calls: list[dict]
    processes: list[dict]
    wall: float
    status_reads: int = 0
    notes: list[str] = field(default_factory=list)


class CountingSession(requests.Session):
    """The client's session, counting status reads (the simulator lists only process calls)."""

    def __init__(self):
        super().__init__()
        self.status_reads = 0

    def request(self, method, url, *args, **kwargs):
        if method == "GET" and "/status/" in url:
            self.status_reads += 1
        return super().request(method, url, *args, **kwargs)


class Simulator:
    """A fresh simulator on 127.0.0.1 reading the given virtual clock."""

    def __init__(self, clock: Clock, run_seconds: float):
        self.server, _ = start_simulator_thread("127.0.0.1", 0, clock=clock, rate_limit_seconds=RATE_LIMIT,
                                                run_seconds=run_seconds)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def read(self) -> tuple[list[dict], list[dict]]:
        calls = requests.get(self.url + "/_sim/calls", timeout=HTTP_TIMEOUT).json()
        processes = requests.get(self.url + "/_sim/processes", timeout=HTTP_TIMEOUT).json()
        return calls, processes

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def replay_bridge(trace: Trace, sim: Simulator, clock: Clock, tmp: Path, tick: float) -> Replay:
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    config = load_config(rules)
    store = Store.from_url(f"sqlite:///{tmp / 'bridge.db'}")
    store.create_schema()
    session = CountingSession()
    dispatcher = Dispatcher(store, PlatformClient(sim.url, TOKEN, session=session),
                            min_interval=lambda: config.defaults.min_interval, clock=clock,
                            poll_seconds=POLL_SECONDS, worker_id="bench")
    began, horizon = time.monotonic(), EPOCH + trace.end + DRAIN
    arrivals = [(EPOCH + t, site) for t, site in trace.events]
    event_ids, i, ticks = [], 0, 0
    try:
        while clock.now <= horizon and ticks < MAX_TICKS and time.monotonic() - began < WALL_LIMIT:
            while i < len(arrivals) and arrivals[i][0] <= clock.now:
                delivery = Delivery("uploads", "upload.finished", None, {"site": arrivals[i][1]}, {}, {})
                event_ids.append(store.record_event(delivery, b"{}", config.match(delivery.document),
                                                    clock()).event_id)
                i += 1
            next_due = dispatcher.tick()
            ticks += 1
            wake = next_wake(clock.now, arrivals[i][0] if i < len(arrivals) else None, next_due,
                             next_poll(store, dispatcher, clock.now), tick)
            if wake is None:
                break
            clock.now = wake
        stopped_at = clock.now
        clock.now = horizon
        calls, processes = sim.read()
        notes = bridge_notes(store, event_ids, arrivals, processes, ticks, i, began)
        if stopped_at < horizon and (ticks >= MAX_TICKS or time.monotonic() - began >= WALL_LIMIT):
            notes.append(f"STOPPED EARLY by a bound at t={stopped_at - EPOCH:.0f}s of {horizon - EPOCH:.0f}s")
    finally:
        store.dispose()
        session.close()
    return Replay(calls, processes, time.monotonic() - began, session.status_reads, notes)


def next_poll(store: Store, dispatcher: Dispatcher, now: float) -> float | None:
    """When the dispatcher will next read a status: a queued process every POLL_SECONDS, a running
    one RUNNING_POLL_FACTOR times less often (the store's rule)."""
    rows = store.processes_to_poll(now, 0.0, now - dispatcher.poll_deadline)
    times = []
    for row in rows:
        if row["last_polled_at"] is None:
            return now
        factor = RUNNING_POLL_FACTOR if row["status"] == "running" else 1
        times.append(row["last_polled_at"] + dispatcher.poll_seconds * factor + 1e-3)
    return min(times, default=None)


def next_wake(now: float, arrival: float | None, due: float | None, poll: float | None,
              tick: float) -> float | None:
    """The next moment anything can happen; dispatcher wakes keep the real loop's shortest pause.

    With `tick` > 0 the loop also wakes at least every `tick` seconds, like run_forever does.
    """
    candidates = [] if arrival is None else [max(arrival, now)]
    candidates += [max(t, now + MIN_STEP) for t in (due, poll) if t is not None]
    if tick > 0 and candidates:
        candidates.append(now + tick)
    return min(candidates, default=None)


def bridge_notes(store, event_ids, arrivals, processes, ticks, delivered, began) -> list[str]:
    """The bridge's own account of each event, checked against what the simulator says happened."""
    started = {p["process_id"]: p["started_at"] for p in processes}
    fates: dict[str, int] = {}
    contradicted = []
    for event_id, (arrived, _) in zip(event_ids, arrivals):
        event = store.event(event_id)
        fates[event["fate"]] = fates.get(event["fate"], 0) + 1
        for intent in event["intents"]:
            if intent["status"] in ("fired", "covered"):
                at = started.get(intent["process_id"])
                if at is None or at < arrived:
                    contradicted.append((event_id, intent["status"], arrived - EPOCH, at and at - EPOCH))
    notes = [f"bridge fates: {', '.join(f'{k} {v}' for k, v in sorted(fates.items()))}; "
             f"{ticks} ticks, {time.monotonic() - began:.1f} s wall"]
    if delivered < len(arrivals):
        notes.append(f"only {delivered} of {len(arrivals)} events were delivered")
    if contradicted:
        first = contradicted[0]
        notes.append(f"{len(contradicted)} event(s) the bridge calls fired/covered whose process did not start "
                     f"after them (first: {first[1]}, arrived t={first[2]:.0f}s, process started "
                     f"{'never' if first[3] is None else f't={first[3]:.0f}s'})")
    return notes


def replay_forwarder(trace: Trace, sim: Simulator, clock: Clock, delay: float) -> Replay:
    """Call once per event, `delay` seconds after it arrives, whatever the platform says."""
    began = time.monotonic()
    client = PlatformClient(sim.url, TOKEN)
    due = [(EPOCH + t + delay, n, site) for n, (t, site) in enumerate(trace.events)]
    heapq.heapify(due)
    while due:
        at, _, site = heapq.heappop(due)
        clock.now = at
        client.trigger(site, "import")
    client.session.close()
    clock.now = EPOCH + trace.end + DRAIN
    calls, processes = sim.read()
    return Replay(calls, processes, time.monotonic() - began)


STRATEGIES = {
    "bridge": lambda trace, sim, clock, tmp, args: replay_bridge(trace, sim, clock, tmp, args.tick),
    "naive": lambda trace, sim, clock, tmp, args: replay_forwarder(trace, sim, clock, 0.0),
    "fixed-30s": lambda trace, sim, clock, tmp, args: replay_forwarder(trace, sim, clock, FIXED_DELAY),
}


# --- figures --------------------------------------------------------------------------------

@dataclass
class Figures:
    calls: int
    refused: int           # 429s: rate limited or queue full
    rate_limited: int
    queue_full: int
    other_failures: int
    runs: int
    landed: int
    never: int
    p50: float | None      # seconds from arrival to the start of the run the event landed in
    p95: float | None
    status_reads: int
    wall: float

    @property
    def calls_per_landed(self) -> float | None:
        return self.calls / self.landed if self.landed else None


def figures(trace: Trace, replay: Replay) -> Figures:
    calls = [c for c in replay.calls if c["site"] is not None]
    horizon = EPOCH + trace.end + DRAIN
    starts: dict[int, list[float]] = {}
    for process in replay.processes:
        if process["started_at"] is not None and process["started_at"] <= horizon:
            starts.setdefault(process["site"], []).append(process["started_at"])
    waits = []
    for t, site in trace.events:
        later = [s for s in starts.get(site, []) if s >= EPOCH + t]
        if later:
            waits.append(min(later) - (EPOCH + t))
    return Figures(
        calls=len(calls), refused=sum(c["status"] == 429 for c in calls),
        rate_limited=sum(c["answer"] == "rate_limited" for c in calls),
        queue_full=sum(c["answer"] == "queue_full" for c in calls),
        other_failures=sum(c["status"] not in (200, 429) for c in calls),
        runs=sum(len(v) for v in starts.values()), landed=len(waits), never=len(trace.events) - len(waits),
        p50=statistics.median(waits) if waits else None, p95=percentile(waits, 0.95),
        status_reads=replay.status_reads, wall=replay.wall)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def num(value, fmt: str = ".0f") -> str:
    return "-" if value is None else format(value, fmt)


def ratio(a, b) -> str:
    if a is None or b is None:
        return "-"
    if b == 0:
        return "-" if a == 0 else "inf"
    return f"{a / b:.2f}"


def print_trace(trace: Trace, results: dict[str, Figures], notes: list[str]) -> None:
    print(f"\n== {trace.name}: {len(trace.events)} events, {trace.description}; "
          f"replayed {(trace.end + DRAIN) / 3600:.1f} h virtual")
    head = (f"{'strategy':<10} {'calls':>5} {'429s':>5} {'(rate/queue)':>12} {'runs':>5} {'landed':>6} "
            f"{'never':>5} {'p50 s':>6} {'p95 s':>6} {'calls/landed':>12} {'status GETs':>11} {'wall s':>6}")
    print(head)
    print("-" * len(head))
    for name, f in results.items():
        split = f"{f.rate_limited}/{f.queue_full}"
        print(f"{name:<10} {f.calls:>5} {f.refused:>5} {split:>12} {f.runs:>5} {f.landed:>6} {f.never:>5} "
              f"{num(f.p50):>6} {num(f.p95):>6} {num(f.calls_per_landed, '.3f'):>12} {f.status_reads:>11} "
              f"{f.wall:>6.1f}")
        if f.other_failures:
            print(f"{'':<10} {f.other_failures} call(s) answered neither 200 nor 429")
    for note in notes:
        print(f"  {note}")


def print_ratios(all_results: dict[str, dict[str, Figures]]) -> None:
    print("\n== the bridge next to each alternative (bridge ÷ alternative; 429s and never-landed as bridge:alt)")
    head = (f"{'trace':<9} {'vs':<10} {'calls/landed':>20} {'÷':>6} {'429s':>9} {'never landed':>13} "
            f"{'p50 s':>11} {'÷':>6}")
    print(head)
    print("-" * len(head))
    for trace, results in all_results.items():
        b = results["bridge"]
        for name, f in results.items():
            if name == "bridge":
                continue
            cpl = f"{num(b.calls_per_landed, '.3f')} vs {num(f.calls_per_landed, '.3f')}"
            print(f"{trace:<9} {name:<10} {cpl:>20} {ratio(b.calls_per_landed, f.calls_per_landed):>6} "
                  f"{f'{b.refused}:{f.refused}':>9} {f'{b.never}:{f.never}':>13} "
                  f"{f'{num(b.p50)} vs {num(f.p50)}':>11} {ratio(b.p50, f.p50):>6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--traces", default=",".join(TRACES), help=f"comma-separated subset of {','.join(TRACES)}")
    parser.add_argument("--run-seconds", type=float, default=RUN_SECONDS, help="simulated run duration")
    parser.add_argument("--tick", type=float, default=0.0,
                        help="also wake the dispatcher every TICK virtual seconds (slower; 0: only when due)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)     # no access log line per simulated call
    began = time.monotonic()
    print(f"simulator: rate limit {RATE_LIMIT:.0f} s, runs {args.run_seconds:.0f} s; seed {args.seed}; "
          f"fixed-30s waits {FIXED_DELAY:.0f} s; drain {DRAIN / 3600:.0f} h after the last event")
    all_results: dict[str, dict[str, Figures]] = {}
    for name in args.traces.split(","):
        trace = TRACES[name](random.Random(f"{args.seed}:{name}"))
        results, notes = {}, []
        for strategy, run in STRATEGIES.items():
            clock = Clock()
            sim = Simulator(clock, args.run_seconds)
            tmp = Path(tempfile.mkdtemp(prefix="bridge-bench-replay-"))
            try:
                replay = run(trace, sim, clock, tmp, args)
            finally:
                sim.close()
                shutil.rmtree(tmp, ignore_errors=True)
            results[strategy] = figures(trace, replay)
            notes += replay.notes
        print_trace(trace, results, notes)
        all_results[name] = results
    print_ratios(all_results)
    print(f"\nwall time {time.monotonic() - began:.1f} s")


if __name__ == "__main__":
    main()
