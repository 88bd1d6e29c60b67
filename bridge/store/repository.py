"""The one place SQL lives. Methods are named for what the stages do with the store.

Web processes only add (record_event); dispatchers claim a site before calling for it
(claim_site), so that however many processes run, one site has at most one call in flight.
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from bridge import scheduler
from bridge.store import schema as t
from bridge.store.engine import READ_ONLY, make_engine

# Header and query names that may carry credentials are never stored.
SECRET_NAME = re.compile(r"auth|token|secret|signature|password|passwd|cookie|key|sig$|hmac", re.I)

PENDING, IN_FLIGHT = "pending", "in_flight"
RUNNING_POLL_FACTOR = 10
SCHEMA_LOCK = 0x6272696467650001  # PostgreSQL advisory lock key held while creating the tables
FATE_ORDER = ("in_flight", "pending", "failed", "fired", "covered", "cancelled")


@dataclass(frozen=True)
class RecordedIntent:
    intent_id: int
    site_id: int
    action: str
    target_id: int | None
    rule: str
    due_at: float


@dataclass(frozen=True)
class RecordedEvent:
    event_id: str | None
    intents: list[RecordedIntent]
    duplicate_of: str | None = None    # set for a redelivery: the event it repeats


MAX_TEXT = 200


def bounded(text: str | None) -> str | None:
    """Sender-chosen ids and types fit their columns: one that is too long, or is no valid text
    (a lone surrogate from a JSON escape), is replaced by its digest."""
    if text is None:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    if len(text) <= MAX_TEXT:
        return text
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def without_secrets(values: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in values.items() if not SECRET_NAME.search(name)}


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def from_url(cls, url: str) -> "Store":
        return cls(make_engine(url))

    def _reading(self):
        """A connection for lookups only: on SQLite it does not queue behind writers."""
        return self.engine.connect().execution_options(**{READ_ONLY: True})

    def create_schema(self) -> None:
        """Idempotent, and safe when several processes start at once on an empty database."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # SQLite: BEGIN IMMEDIATE already serialises
                conn.execute(select(func.pg_advisory_xact_lock(SCHEMA_LOCK)))
            t.metadata.create_all(conn)

    def dispose(self) -> None:
        self.engine.dispose()

    # ---- ingest ---------------------------------------------------------------------------

    def record_event(self, delivery, raw_body: bytes, match, now: float) -> RecordedEvent:
        return self.record_events([(delivery, raw_body, match)], now)[0]

    def record_events(self, items, now: float) -> list[RecordedEvent]:
        """Store the events of one request (delivery, body, match) and merge their intents into the
        pending ones, all in one transaction: the sender's 2xx covers every event or none.

        A delivery id seen before is a redelivery: it is not routed again, unless the first
        delivery's event came to nothing (failed or rejected), when the sender's retry deserves a go."""
        try:
            return self._record_events(items, now)
        except IntegrityError:
            # The same delivery arrived twice at once and the other copy won the insert.
            return self._record_events(items, now)

    def _record_events(self, items, now: float) -> list[RecordedEvent]:
        with self.engine.begin() as conn:
            return [self._record_one(conn, delivery, body, match, now) for delivery, body, match in items]

    def _record_one(self, conn, delivery, body: bytes, match, now: float) -> RecordedEvent:
        event_id = "evt_" + uuid.uuid4().hex
        delivery_id = bounded(delivery.delivery_id)
        if delivery_id is not None:
            earlier = self._claim_delivery(conn, delivery.source, delivery_id, event_id, now)
            if earlier is not None:
                return RecordedEvent(None, [], duplicate_of=earlier)
        conn.execute(insert(t.events).values(
            id=event_id, source=delivery.source, event_type=bounded(delivery.event_type),
            delivery_id=delivery_id, received_at=now,
            headers=json.dumps(without_secrets(delivery.headers)),
            query=json.dumps(without_secrets(delivery.query)), body=body,
            matched_rules=json.dumps(match.matched_rules),
            rejections=json.dumps([{"rule": r.rule, "reason": r.reason} for r in match.rejections])))
        recorded = [self._add_intent(conn, intent, event_id, now) for intent in match.intents]
        return RecordedEvent(event_id, recorded)

    def _add_intent(self, conn, intent, event_id: str, now: float) -> RecordedIntent:
        intent_id, due_at = self._merge_intent(conn, intent, now)
        self._link(conn, intent_id, event_id, intent.rule)
        return RecordedIntent(intent_id, intent.site_id, intent.action, intent.target_id, intent.rule, due_at)

    def _claim_delivery(self, conn, source: str, delivery_id: str, event_id: str, now: float) -> str | None:
        """Remember this delivery id for the new event; answers the earlier event if it still counts."""
        key = and_(t.deliveries.c.source == source, t.deliveries.c.delivery_id == delivery_id)
        earlier = conn.execute(select(t.deliveries.c.event_id).where(key)).scalar()
        if earlier is None:
            conn.execute(insert(t.deliveries).values(source=source, delivery_id=delivery_id, event_id=event_id,
                                                     received_at=now))
            return None
        if self._fate_in(conn, earlier) not in ("failed", "rejected"):
            return earlier
        conn.execute(update(t.deliveries).where(key).values(event_id=event_id, received_at=now))
        return None

    def _fate_in(self, conn, event_id: str) -> str:
        row = conn.execute(select(t.events.c.matched_rules).where(t.events.c.id == event_id)).first()
        if row is None:
            return "missing"
        statuses = conn.execute(select(t.intents.c.status).join(
            t.intent_events, t.intent_events.c.intent_id == t.intents.c.id).where(
            t.intent_events.c.event_id == event_id)).scalars().all()
        return _fate(json.loads(row[0]), [{"status": status} for status in statuses])

    def prune_deliveries(self, before: float) -> int:
        with self.engine.begin() as conn:
            return conn.execute(delete(t.deliveries).where(t.deliveries.c.received_at < before)).rowcount

    def _merge_intent(self, conn, intent, now: float) -> tuple[int, float]:
        self._ensure_site(conn, intent.site_id)
        # FOR UPDATE (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises): a start_call taking
        # this intent waits for us, or we wait for it and then skip the intent, no longer pending.
        row = conn.execute(select(t.intents).where(and_(
            t.intents.c.site_id == intent.site_id, t.intents.c.action == intent.action,
            _same_target(intent.target_id), t.intents.c.status == PENDING)).with_for_update()).mappings().first()
        if row is None:
            intent_id = conn.execute(insert(t.intents).values(
                site_id=intent.site_id, action=intent.action, target_id=intent.target_id, status=PENDING,
                first_event_at=now, last_event_at=now, quiet=intent.quiet, max_wait=intent.max_wait,
                attempts=0, unknown_outcome=False, job_server_retried=False, detail="",
                updated_at=now)).inserted_primary_key[0]
            return intent_id, min(now + intent.quiet, now + intent.max_wait)
        last_event_at = max(now, row["last_event_at"])
        conn.execute(update(t.intents).where(t.intents.c.id == row["id"]).values(
            last_event_at=last_event_at, updated_at=now))
        return row["id"], min(last_event_at + row["quiet"], row["first_event_at"] + row["max_wait"])

    def _link(self, conn, intent_id: int, event_id: str, rule: str) -> None:
        exists = conn.execute(select(t.intent_events.c.intent_id).where(and_(
            t.intent_events.c.intent_id == intent_id, t.intent_events.c.event_id == event_id))).first()
        if exists is None:
            conn.execute(insert(t.intent_events).values(intent_id=intent_id, event_id=event_id, rule=rule))

    @staticmethod
    def _ensure_site(conn, site_id: int) -> None:
        # ON CONFLICT: on PostgreSQL two transactions can both miss the row and both insert it.
        dialect = {"postgresql": postgresql, "sqlite": sqlite}[conn.dialect.name]
        conn.execute(dialect.insert(t.sites).values(site_id=site_id).on_conflict_do_nothing())

    # ---- scheduling -----------------------------------------------------------------------

    def sites_with_work(self) -> list[int]:
        with self._reading() as conn:
            rows = conn.execute(select(t.intents.c.site_id).where(
                t.intents.c.status.in_((PENDING, IN_FLIGHT))).distinct())
            return sorted(row[0] for row in rows)

    def site_snapshot(self, site_id: int, poll_window_start: float = 0.0):
        """The site's state, its pending intents and the processes that can still cover data."""
        with self._reading() as conn:
            site = conn.execute(select(t.sites).where(t.sites.c.site_id == site_id)).mappings().first()
            pending = conn.execute(select(t.intents).where(and_(
                t.intents.c.site_id == site_id, t.intents.c.status == PENDING))
                .order_by(t.intents.c.id)).mappings().all()
            in_flight = conn.execute(select(t.intents.c.id).where(and_(
                t.intents.c.site_id == site_id, t.intents.c.status == IN_FLIGHT))).first() is not None
            # Any run of ours but a failed one still holds the data it was seen queued with,
            # whatever it is doing now.
            procs = conn.execute(select(t.processes).where(and_(
                t.processes.c.site_id == site_id, t.processes.c.status != "failed",
                t.processes.c.called_at >= poll_window_start))).mappings().all()
        state = scheduler.SiteState(site["last_call_at"] if site else None,
                                    site["next_allowed_at"] if site else None, in_flight)
        return state, [_pending_intent(row) for row in pending], [_process(row) for row in procs]

    def claim_site(self, site_id: int, worker: str, now: float, lease: float) -> bool:
        """Take the site for one call. Only one holder at a time; a dead holder's lease runs out."""
        with self.engine.begin() as conn:
            self._ensure_site(conn, site_id)
            claimed = conn.execute(update(t.sites).where(and_(
                t.sites.c.site_id == site_id,
                or_(t.sites.c.claimed_by.is_(None), t.sites.c.claim_expires_at < now)))
                .values(claimed_by=worker, claim_expires_at=now + lease)).rowcount == 1
            if claimed:
                self._recover_abandoned_calls(conn, site_id, now)
            return claimed

    def recover_abandoned(self, site_id: int, now: float) -> None:
        """In-flight intents on a site nobody holds belong to a process that died mid-call."""
        with self.engine.begin() as conn:
            # FOR UPDATE: nobody may claim the site and start a call between this check and the recovery.
            free = conn.execute(select(t.sites.c.site_id).where(and_(
                t.sites.c.site_id == site_id,
                or_(t.sites.c.claimed_by.is_(None), t.sites.c.claim_expires_at < now))).with_for_update()).first()
            if free is not None:
                self._recover_abandoned_calls(conn, site_id, now)

    def _recover_abandoned_calls(self, conn, site_id: int, now: float) -> None:
        """Intents left in flight by a holder that died: we never saw the answer, so it is unknown."""
        rows = conn.execute(select(t.intents.c.id, t.intents.c.call_id).where(and_(
            t.intents.c.site_id == site_id, t.intents.c.status == IN_FLIGHT))).all()
        for intent_id, call_id in rows:
            called_at = conn.execute(select(t.calls.c.called_at).where(t.calls.c.id == call_id)).scalar()
            conn.execute(update(t.intents).where(t.intents.c.id == intent_id).values(
                status=PENDING, unknown_outcome=True, detail="the call's answer was lost (process died)",
                updated_at=now))
            if called_at is not None:
                conn.execute(update(t.sites).where(t.sites.c.site_id == site_id).values(
                    last_call_at=called_at))
                conn.execute(update(t.calls).where(t.calls.c.id == call_id).values(
                    outcome="Lost", message="the calling process died before recording the answer"))

    def release_site(self, site_id: int, worker: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t.sites).where(and_(t.sites.c.site_id == site_id, t.sites.c.claimed_by == worker))
                         .values(claimed_by=None, claim_expires_at=None))

    def start_call(self, site_id: int, call: scheduler.Call, now: float) -> int:
        """Record the call before sending it, so a crash mid-call is recognisable afterwards."""
        with self.engine.begin() as conn:
            call_id = conn.execute(insert(t.calls).values(
                site_id=site_id, action=call.action, target_id=call.target_id,
                called_at=now)).inserted_primary_key[0]
            conn.execute(update(t.intents).where(and_(
                t.intents.c.id.in_(call.intent_ids), t.intents.c.status == PENDING)).values(
                status=IN_FLIGHT, call_id=call_id, updated_at=now))
            return call_id

    def finish_call(self, site_id: int, call_id: int, call: scheduler.Call, outcome, result, now: float,
                    called_at: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t.calls).where(t.calls.c.id == call_id).values(
                answered_at=now, outcome=type(outcome).__name__, message=outcome.message,
                process_id=result.process_id if result.record_process else None))
            self._apply_result(conn, call, result, now)
            site_values = {}
            if result.last_call_at is not None:
                site_values["last_call_at"] = result.last_call_at
            if result.next_allowed_at is not None:
                site_values["next_allowed_at"] = result.next_allowed_at
            if site_values:
                conn.execute(update(t.sites).where(t.sites.c.site_id == site_id).values(**site_values))
            if result.record_process:
                conn.execute(insert(t.processes).values(
                    process_id=result.process_id, site_id=site_id, action=call.action,
                    target_id=call.target_id, called_at=called_at,
                    status="queued" if result.process_id else "unknown",
                    last_seen_queued_at=called_at))

    def _apply_result(self, conn, call, result, now: float) -> None:
        values: dict[str, Any] = {"status": result.fate, "detail": result.detail, "updated_at": now}
        if result.fate in ("fired", "covered"):
            values["process_id"] = result.process_id
        if result.fate == "pending":
            values.update(not_before=result.not_before, call_id=None)
            if result.unknown_outcome:
                values["unknown_outcome"] = True
            if result.job_server_retried:
                values["job_server_retried"] = True
        stmt = update(t.intents).where(and_(t.intents.c.id.in_(call.intent_ids),
                                            t.intents.c.status == IN_FLIGHT))
        if result.fate == "pending":
            stmt = stmt.values(attempts=t.intents.c.attempts + 1)
        conn.execute(stmt.values(**values))

    def intents_of_call(self, call_id: int) -> list[scheduler.PendingIntent]:
        with self._reading() as conn:
            rows = conn.execute(select(t.intents).where(t.intents.c.call_id == call_id)).mappings().all()
        return [_pending_intent(row) for row in rows]

    def cover(self, intent_ids: Iterable[int], process_id: str | None, now: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t.intents).where(and_(
                t.intents.c.id.in_(list(intent_ids)), t.intents.c.status == PENDING)).values(
                status="covered", process_id=process_id, updated_at=now,
                detail="its data is in a queued run of ours"))

    # ---- status polling -------------------------------------------------------------------

    def processes_to_poll(self, now: float, every: float, since: float, site_id: int | None = None) -> list[dict]:
        """Our processes still queued (not read for `every` seconds) or running (read less often:
        only `queued` sightings prove coverage, a running one's reads only tell users how it ends),
        started after `since`."""
        p = t.processes.c
        stale = or_(p.last_polled_at.is_(None),
                    and_(p.status == "queued", p.last_polled_at <= now - every),
                    and_(p.status == "running", p.last_polled_at <= now - every * RUNNING_POLL_FACTOR))
        stmt = select(t.processes).where(and_(
            p.status.in_(("queued", "running")), p.process_id.is_not(None), p.called_at >= since, stale))
        if site_id is not None:
            stmt = stmt.where(t.processes.c.site_id == site_id)
        with self._reading() as conn:
            return [dict(row) for row in conn.execute(stmt).mappings()]

    def record_status(self, row_id: int, status: str, asked_at: float) -> None:
        values: dict[str, Any] = {"status": status, "last_polled_at": asked_at}
        if status == "queued":
            values["last_seen_queued_at"] = asked_at
        with self.engine.begin() as conn:
            conn.execute(update(t.processes).where(t.processes.c.id == row_id).values(**values))

    # ---- lookups --------------------------------------------------------------------------

    def event(self, event_id: str) -> dict | None:
        with self._reading() as conn:
            row = conn.execute(select(t.events).where(t.events.c.id == event_id)).mappings().first()
            if row is None:
                return None
            linked = conn.execute(select(t.intents, t.intent_events.c.rule).join(
                t.intent_events, t.intent_events.c.intent_id == t.intents.c.id).where(
                t.intent_events.c.event_id == event_id)).mappings().all()
        return _event_view(row, linked)

    def calls(self, site_id: int | None = None) -> list[dict]:
        with self._reading() as conn:
            stmt = select(t.calls).order_by(t.calls.c.id)
            if site_id is not None:
                stmt = stmt.where(t.calls.c.site_id == site_id)
            return [dict(row) for row in conn.execute(stmt).mappings()]

    def count_events(self) -> int:
        with self._reading() as conn:
            return len(conn.execute(select(t.events.c.id)).all())


def _same_target(target_id):
    return t.intents.c.target_id.is_(None) if target_id is None else t.intents.c.target_id == target_id


def _pending_intent(row) -> scheduler.PendingIntent:
    return scheduler.PendingIntent(
        id=row["id"], action=row["action"], target_id=row["target_id"], first_event_at=row["first_event_at"],
        last_event_at=row["last_event_at"], quiet=row["quiet"], max_wait=row["max_wait"],
        not_before=row["not_before"], attempts=row["attempts"], unknown_outcome=bool(row["unknown_outcome"]),
        job_server_retried=bool(row["job_server_retried"]))


def _process(row) -> scheduler.Process:
    return scheduler.Process(row["process_id"], row["action"], row["target_id"], row["status"],
                             row["last_seen_queued_at"])


def _event_view(row, linked) -> dict:
    intents = [{"site": r["site_id"], "action": r["action"], "id": r["target_id"], "rule": r["rule"],
                "status": r["status"], "process_id": r["process_id"], "detail": r["detail"]} for r in linked]
    matched = json.loads(row["matched_rules"])
    rejections = json.loads(row["rejections"])
    return {"event_id": row["id"], "source": row["source"], "event_type": row["event_type"],
            "delivery_id": row["delivery_id"], "received_at": row["received_at"],
            "fate": _fate(matched, intents), "matched_rules": matched, "intents": intents,
            "rejections": rejections}


def _fate(matched: list, intents: list[dict]) -> str:
    """One word for the event: the least settled fate among its intents."""
    if not matched:
        return "ignored"
    if not intents:
        return "rejected"
    statuses = {i["status"] for i in intents}
    for status in FATE_ORDER:
        if status in statuses:
            return "pending" if status == IN_FLIGHT else status
    return "pending"
