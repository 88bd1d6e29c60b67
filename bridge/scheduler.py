"""The pure core of scheduling (DESIGN section 3): when does a pending intent become a call?

Nothing here sleeps, reads a clock or touches I/O. `decide` takes the time, one site's stored state
and the processes the bridge started, and returns decisions; `after_call` takes the answer of a
call and returns what to record. The dispatcher acts on both; tests run them in virtual time.
"""
from __future__ import annotations

from dataclasses import dataclass

from bridge import platform as answers

# Seconds to wait after answers that tell us nothing about the rate window.
LOCK_RETRY = 5.0
JOB_SERVER_RETRY = 30.0
# An unknown outcome is retried this many times before the intent is given up loudly.
MAX_UNKNOWN_ATTEMPTS = 10

ACTION_ORDER = ("all", "import", "export-all", "export", "channel")


@dataclass(frozen=True)
class PendingIntent:
    id: int
    action: str
    target_id: int | None
    first_event_at: float
    last_event_at: float
    quiet: float
    max_wait: float
    not_before: float | None = None
    attempts: int = 0
    unknown_outcome: bool = False
    job_server_retried: bool = False

    @property
    def due_at(self) -> float:
        return min(self.last_event_at + self.quiet, self.first_event_at + self.max_wait)


@dataclass(frozen=True)
class Process:
    process_id: str | None
    action: str
    target_id: int | None
    status: str                      # queued, running, success, failed, unknown
    last_seen_queued_at: float | None


@dataclass(frozen=True)
class SiteState:
    last_call_at: float | None = None
    next_allowed_at: float | None = None
    in_flight: bool = False


@dataclass(frozen=True)
class Cover:
    intent_ids: tuple[int, ...]
    process_id: str | None


@dataclass(frozen=True)
class Call:
    action: str
    target_id: int | None
    intent_ids: tuple[int, ...]


@dataclass(frozen=True)
class Wait:
    until: float | None              # None: nothing pending


Decision = Cover | Call | Wait


def includes(outer_action: str, outer_id: int | None, action: str, target_id: int | None) -> bool:
    """Does a run of `outer` do everything a run of `action`/`target_id` would?"""
    if outer_action == "all":
        return True
    if outer_action == "export-all":
        return action in ("export-all", "export", "channel")
    return outer_action == action and outer_id == target_id


def covering_process(intent: PendingIntent, processes: list[Process]) -> Process | None:
    """A process of ours whose run will include all of this intent's data (DESIGN section 3)."""
    for process in processes:
        seen = process.last_seen_queued_at
        if seen is not None and intent.last_event_at <= seen and \
                includes(process.action, process.target_id, intent.action, intent.target_id):
            return process
    return None


def coalesce(intents: list[PendingIntent]) -> list[tuple[str, int | None, list[PendingIntent]]]:
    """Group a site's intents into the fewest calls the coalescing rules allow."""
    actions = {intent.action for intent in intents}
    if "all" in actions or {"import", "export-all"} <= actions:
        return [("all", None, list(intents))]
    groups: dict[tuple[str, int | None], list[PendingIntent]] = {}
    for intent in intents:
        key = ("export-all", None) if "export-all" in actions and intent.action in ("export", "channel") \
            else (intent.action, intent.target_id)
        groups.setdefault(key, []).append(intent)
    return [(action, target, members) for (action, target), members in groups.items()]


def group_due_at(members: list[PendingIntent]) -> float:
    """Quiet runs from the group's last event, but never past the earliest member's max_wait."""
    quiet_end = max(m.last_event_at + m.quiet for m in members)
    hard_end = min(m.first_event_at + m.max_wait for m in members)
    not_before = max((m.not_before for m in members if m.not_before is not None), default=0.0)
    return max(min(quiet_end, hard_end), not_before)


def earliest_call_at(site: SiteState, min_interval: float) -> float:
    earliest = 0.0
    if site.last_call_at is not None:
        earliest = site.last_call_at + min_interval
    if site.next_allowed_at is not None:
        earliest = max(earliest, site.next_allowed_at)
    return earliest


def decide(now: float, site: SiteState, pending: list[PendingIntent], processes: list[Process],
           min_interval: float) -> list[Decision]:
    """Covers for intents already in a queued run of ours, then one Call or one Wait."""
    decisions: list[Decision] = []
    uncovered = []
    for intent in pending:
        process = covering_process(intent, processes)
        if process is None:
            uncovered.append(intent)
        else:
            decisions.append(Cover((intent.id,), process.process_id))
    if not uncovered or site.in_flight:
        return decisions + [Wait(None)]
    floor = earliest_call_at(site, min_interval)
    candidates = sorted(
        ((max(group_due_at(members), floor), ACTION_ORDER.index(action), action, target, members)
         for action, target, members in coalesce(uncovered)),
        key=lambda c: (c[0], c[1], c[3] or 0))
    at, _, action, target, members = candidates[0]
    if at > now:
        return decisions + [Wait(at)]
    return decisions + [Call(action, target, tuple(sorted(m.id for m in members)))]


@dataclass(frozen=True)
class CallResult:
    """What to record after a call: the fate of its intents and the site's rate window."""
    fate: str                        # fired, covered, pending, failed
    detail: str = ""
    process_id: str | None = None
    not_before: float | None = None  # for fate pending
    last_call_at: float | None = None  # a call the platform counted (or may have counted)
    next_allowed_at: float | None = None
    unknown_outcome: bool = False
    job_server_retried: bool = False
    record_process: bool = False


def after_call(called_at: float, now: float, call: Call, outcome: answers.Outcome,
               intents: list[PendingIntent], processes: list[Process], min_interval: float) -> CallResult:
    """Classify a call's answer into the intents' fate (DESIGN section 1's table)."""
    if isinstance(outcome, answers.Accepted):
        return CallResult("fired", process_id=outcome.process_id, last_call_at=called_at, record_process=True)
    if isinstance(outcome, answers.RateLimited):
        return _after_rate_limited(now, outcome, intents, min_interval)
    if isinstance(outcome, answers.QueueFull):
        return _after_queue_full(now, call, outcome, processes, min_interval)
    if isinstance(outcome, answers.Locked):
        return CallResult("pending", outcome.message, not_before=now + LOCK_RETRY)
    if isinstance(outcome, answers.JobServerError):
        if any(i.job_server_retried for i in intents):
            return CallResult("failed", f"platform job server error after one retry: {outcome.message}")
        return CallResult("pending", outcome.message, not_before=now + JOB_SERVER_RETRY, job_server_retried=True)
    if isinstance(outcome, answers.Rejected):
        return CallResult("failed", f"platform refused the call ({outcome.status}): {outcome.message}")
    return _after_unknown(called_at, outcome, intents, min_interval)


def _after_rate_limited(now, outcome, intents, min_interval) -> CallResult:
    if any(i.unknown_outcome for i in intents):
        # Our earlier call, whose answer we never saw, most likely went through and opened this window.
        return CallResult("fired", "earlier call's answer was lost; the platform's rate limit shows it arrived")
    retry_at = outcome.retry_at if outcome.retry_at and outcome.retry_at > now else now + min_interval
    return CallResult("pending", outcome.message, not_before=retry_at, next_allowed_at=retry_at)


def _after_queue_full(now, call, outcome, processes, min_interval) -> CallResult:
    for process in processes:
        if process.status == "queued" and includes(process.action, process.target_id, call.action, call.target_id):
            return CallResult("covered", "the platform's queue holds a run of ours that includes this",
                              process_id=process.process_id)
    return CallResult("pending", outcome.message, not_before=now + min_interval)


def _after_unknown(called_at, outcome, intents, min_interval) -> CallResult:
    if max((i.attempts for i in intents), default=0) + 1 >= MAX_UNKNOWN_ATTEMPTS:
        return CallResult("failed", f"no answer from the platform after {MAX_UNKNOWN_ATTEMPTS} attempts: "
                                    f"{outcome.message}")
    # The call may have counted: keep the rate window as if it did.
    return CallResult("pending", outcome.message or "no answer from the platform",
                      not_before=called_at + min_interval, last_call_at=called_at, unknown_outcome=True)
