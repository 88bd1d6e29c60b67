"""Tables of the store (SQLAlchemy Core). Times are Unix seconds as floats, the scheduler's unit."""
from sqlalchemy import (Boolean, Column, Float, ForeignKey, Index, Integer, LargeBinary, MetaData, String,
                        Table, Text, BigInteger)

metadata = MetaData()

events = Table(
    "events", metadata,
    Column("id", String(40), primary_key=True),
    Column("source", String(200), nullable=False),
    Column("event_type", String(200)),
    Column("delivery_id", String(200)),
    Column("received_at", Float, nullable=False),
    Column("headers", Text, nullable=False),          # JSON, secret-bearing headers removed
    Column("query", Text, nullable=False),            # JSON, secret-bearing parameters removed
    Column("body", LargeBinary, nullable=False),
    Column("matched_rules", Text, nullable=False),    # JSON list of rule names
    Column("rejections", Text, nullable=False),       # JSON list of {rule, reason}
)
Index("events_delivery", events.c.source, events.c.delivery_id)

# Delivery ids seen, for dropping redeliveries; pruned after the retention time.
deliveries = Table(
    "deliveries", metadata,
    Column("source", String(200), primary_key=True),
    Column("delivery_id", String(200), primary_key=True),
    Column("event_id", String(40), nullable=False),
    Column("received_at", Float, nullable=False),
)
Index("deliveries_received", deliveries.c.received_at)

sites = Table(
    "sites", metadata,
    Column("site_id", BigInteger, primary_key=True, autoincrement=False),
    Column("last_call_at", Float),
    Column("next_allowed_at", Float),
    Column("claimed_by", String(100)),
    Column("claim_expires_at", Float),
)

intents = Table(
    "intents", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site_id", BigInteger, nullable=False),
    Column("action", String(20), nullable=False),
    Column("target_id", BigInteger),
    # pending, in_flight, fired, covered, failed, cancelled
    Column("status", String(20), nullable=False),
    Column("first_event_at", Float, nullable=False),
    Column("last_event_at", Float, nullable=False),
    Column("quiet", Float, nullable=False),
    Column("max_wait", Float, nullable=False),
    Column("not_before", Float),
    Column("attempts", Integer, nullable=False, default=0),
    Column("unknown_outcome", Boolean, nullable=False, default=False),
    Column("job_server_retried", Boolean, nullable=False, default=False),
    Column("call_id", Integer),
    Column("process_id", String(200)),
    Column("detail", Text, nullable=False, default=""),
    Column("updated_at", Float, nullable=False),
)
Index("intents_site_status", intents.c.site_id, intents.c.status)

intent_events = Table(
    "intent_events", metadata,
    Column("intent_id", Integer, ForeignKey("intents.id"), primary_key=True),
    Column("event_id", String(40), ForeignKey("events.id"), primary_key=True),
    Column("rule", Text, nullable=False),
)
Index("intent_events_event", intent_events.c.event_id)

calls = Table(
    "calls", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site_id", BigInteger, nullable=False),
    Column("action", String(20), nullable=False),
    Column("target_id", BigInteger),
    Column("called_at", Float, nullable=False),
    Column("answered_at", Float),
    Column("outcome", String(40)),                   # the platform answer class, e.g. Accepted
    Column("message", Text),
    Column("process_id", String(200)),
)

processes = Table(
    "processes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("process_id", String(200)),
    Column("site_id", BigInteger, nullable=False),
    Column("action", String(20), nullable=False),
    Column("target_id", BigInteger),
    Column("called_at", Float, nullable=False),
    Column("status", String(20), nullable=False),    # queued, running, success, failed, unknown
    Column("last_seen_queued_at", Float),
    Column("last_polled_at", Float),
)
Index("processes_site", processes.c.site_id)
