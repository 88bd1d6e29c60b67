"""The Productsup Platform API client: one call out, one classified answer back.

Every call returns a value instead of raising, so the dispatcher can decide what to do with a
plain ``match``/``isinstance`` on the answer. The answers form a small hierarchy of frozen
dataclasses; each carries ``message`` (the platform's own words, or ``""``)::

    Outcome                 base class, never returned itself
    ├── Accepted            200 success true: a new process, ``process_id`` (opaque str or None)
    ├── RateLimited         429 "Too many attempts.": ``retry_at`` (Unix time or None)
    ├── QueueFull           429 "...already in the current queue": the site's queue slot is taken
    ├── Locked              500 "...lock is already acquired": another call for the site in flight
    ├── JobServerError      500 "...job server": platform infrastructure fault
    ├── Rejected            400/401/403/404, any other 4xx, or 200 success false: ``status``;
    │                       permanent, retrying the same call will not help
    └── Unknown             timeout, connection error, other 5xx, unreadable answer: the call
                            may or may not have gone through

``PlatformClient.status`` answers a ``Status`` value (a ``str``) or one of ``Unknown``,
``Rejected`` and ``RateLimited`` when no status could be read.

The auth token is sent as a per-request header only; it never reaches a log line, an exception,
a repr or an outcome message (messages are scrubbed in case the platform echoes it back).
"""
from __future__ import annotations

import enum
import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

import requests

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5   # seconds to open the TCP/TLS connection
READ_TIMEOUT = 30     # seconds to wait for the answer once the request is sent

ACTIONS = frozenset({"import", "export", "channel", "export-all", "all"})
ACTIONS_WITH_ID = frozenset({"export", "channel"})

MESSAGE_SLICE = 200   # how much of a non-JSON body becomes the outcome message
RETRY_AFTER_HEADER = "X-Ratelimit-Retry-After"
QUEUE_FULL_TEXT = "already in the current queue"
LOCKED_TEXT = "lock is already acquired"
JOB_SERVER_TEXT = "job server"
REDACTED = "[redacted]"
MIN_REDACTED_LENGTH = 4  # shorter pieces would mangle ordinary words in messages


# --- outcomes -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """Base of every classified answer; ``message`` is keyword-only so subclasses stay positional."""
    message: str = field(default="", kw_only=True)


@dataclass(frozen=True)
class Accepted(Outcome):
    """The platform queued a real run; the id is opaque and may be missing on old deployments."""
    process_id: str | None = None


@dataclass(frozen=True)
class RateLimited(Outcome):
    """One process call per site per window; ``retry_at`` is a Unix timestamp, not a delay."""
    retry_at: float | None = None


@dataclass(frozen=True)
class QueueFull(Outcome):
    """One process runs and one waits already; a further call cannot be queued."""


@dataclass(frozen=True)
class Locked(Outcome):
    """Another call for the same site is being handled right now; retry in seconds."""


@dataclass(frozen=True)
class JobServerError(Outcome):
    """The platform could not reach its job server; worth one retry, then give up loudly."""


@dataclass(frozen=True)
class Rejected(Outcome):
    """A permanent refusal (bad token, no rights, no site, bad request, success false)."""
    status: int = 0


@dataclass(frozen=True)
class Unknown(Outcome):
    """We cannot tell whether the call went through: no answer, or one we cannot read."""


class Status(enum.StrEnum):
    """A process status as the platform reports it; members compare equal to plain strings."""
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


# --- reading answers ------------------------------------------------------------------------

def _json_object(response: requests.Response) -> dict[str, Any] | None:
    """The body as a dict, or None: platforms and proxies send HTML, lists and junk too."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _message(response: requests.Response, body: dict[str, Any] | None) -> str:
    """The platform's own words, so a human reading the outcome sees what the platform said."""
    if body is not None:
        for key in ("message", "error"):
            if body.get(key) not in (None, ""):
                return str(body[key])[:MESSAGE_SLICE]
        return ""
    return (response.text or "").strip()[:MESSAGE_SLICE]


def _retry_at(response: requests.Response) -> float | None:
    """Parse the Retry-After header; the platform sends an absolute Unix time, not seconds."""
    raw = response.headers.get(RETRY_AFTER_HEADER)  # requests' headers are case-insensitive
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _process_id(body: dict[str, Any]) -> str | None:
    """Newer deployments say ``process_id``, older ones ``pid``, some nothing at all."""
    for key in ("process_id", "pid"):
        if body.get(key) not in (None, ""):
            return str(body[key])
    return None


def _classify_ok(response: requests.Response, body: dict[str, Any] | None, message: str) -> Outcome:
    """A 2xx is only a success if the body says so; an unreadable one proves nothing."""
    if body is None:
        return Unknown(message=message)
    if body.get("success") is False:
        return Rejected(response.status_code, message=message)
    if body.get("success") is True or _process_id(body) is not None:
        return Accepted(_process_id(body), message=message)
    return Unknown(message=message)


def _classify_429(response: requests.Response, message: str) -> Outcome:
    """Both the rate limit and the full queue answer 429; only the message tells them apart."""
    if QUEUE_FULL_TEXT in message.lower():
        return QueueFull(message=message)
    return RateLimited(_retry_at(response), message=message)


def _classify_5xx(response: requests.Response, message: str) -> Outcome:
    """Two 500s are known, deliberate answers; every other 5xx leaves the outcome open."""
    lowered = message.lower()
    if response.status_code == 500 and LOCKED_TEXT in lowered:
        return Locked(message=message)
    if response.status_code == 500 and JOB_SERVER_TEXT in lowered:
        return JobServerError(message=message)
    return Unknown(message=message)


def classify(response: requests.Response) -> Outcome:
    """Map one trigger answer onto the outcome table of DESIGN.md section 1."""
    body = _json_object(response)
    message = _message(response, body)
    code = response.status_code
    if 200 <= code < 300:
        return _classify_ok(response, body, message)
    if code == 429:
        return _classify_429(response, message)
    if 400 <= code < 500:
        return Rejected(code, message=message)
    if code >= 500:
        return _classify_5xx(response, message)
    return Unknown(message=message)


def _classify_status(response: requests.Response) -> str | Outcome:
    """A status answer is either a known status word or an outcome saying why there is none."""
    body = _json_object(response)
    message = _message(response, body)
    if response.status_code == 200 and body is not None and body.get("success") is not False:
        try:
            return Status(str(body.get("status", "")).lower())
        except ValueError:
            return Unknown(message=message or "unreadable status answer")
    outcome = classify(response)
    return outcome if isinstance(outcome, (Rejected, RateLimited)) else Unknown(message=message)


def _positive_int(value: Any, name: str) -> int:
    """Site and target ids end up in URLs and bodies: reject anything but a positive integer."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive integer, got {value!r}") from None
    if number <= 0 or (isinstance(value, float) and value != number):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return number


def trigger_body(action: str, target_id: int | None = None) -> dict[str, Any]:
    """Validate before sending: a wrong action would cost a rate-limit window for nothing."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; expected one of {sorted(ACTIONS)}")
    if action in ACTIONS_WITH_ID:
        if target_id is None:
            raise ValueError(f"action {action!r} needs an id")
        return {"action": action, "id": _positive_int(target_id, "id")}
    return {"action": action}


# --- the client -----------------------------------------------------------------------------

class PlatformClient:
    """Calls the Platform API with timeouts and turns every answer into an ``Outcome``."""

    def __init__(self, base_url: str, auth_token: str, session: requests.Session | None = None,
                 timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT)):
        self.base_url = base_url.rstrip("/")
        self._token = auth_token
        self.session = session if session is not None else requests.Session()
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"PlatformClient(base_url={self.base_url!r}, auth_token={REDACTED!r})"

    def trigger(self, site_id: int, action: str, target_id: int | None = None) -> Outcome:
        """Ask for one process run; never raises for anything the network or platform does."""
        site = _positive_int(site_id, "site_id")
        body = trigger_body(action, target_id)
        url = f"{self.base_url}/platform/v2/process/{site}"
        outcome = self._send("POST", url, json=body)
        if isinstance(outcome, requests.Response):
            outcome = self._scrubbed(classify(outcome))
        log.info("productsup trigger site=%s action=%s id=%s outcome=%s",
                 site, action, body.get("id"), type(outcome).__name__)
        return outcome

    def status(self, site_id: int, process_id: str) -> str | Outcome:
        """Read a process status; an unknown id answers "queued" forever, so callers need a deadline."""
        site = _positive_int(site_id, "site_id")
        url = f"{self.base_url}/platform/v2/sites/{site}/status/{quote(str(process_id), safe='')}"
        answer = self._send("GET", url)
        if isinstance(answer, requests.Response):
            answer = _classify_status(answer)
            answer = self._scrubbed(answer) if isinstance(answer, Outcome) else answer
        shown = answer if isinstance(answer, str) else type(answer).__name__
        log.info("productsup status site=%s process=%s outcome=%s", site, process_id, shown)
        return answer

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response | Unknown:
        """One HTTP exchange; transport failures become ``Unknown`` since the call may have landed."""
        headers = {"X-Auth-Token": self._token, "Accept": "application/json"}
        try:
            return self.session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
        except requests.Timeout as exc:
            return Unknown(message=self._redact(f"timeout: {type(exc).__name__}"))
        except requests.RequestException as exc:
            return Unknown(message=self._redact(f"{type(exc).__name__}: {exc}")[:MESSAGE_SLICE])

    def _redact(self, text: str) -> str:
        """Remove the token (whole, and its secret half) in case anything echoes it back."""
        secret = self._token.partition(":")[2]
        for piece in (self._token, secret):
            if len(piece) >= MIN_REDACTED_LENGTH:
                text = text.replace(piece, REDACTED)
        return text

    def _scrubbed(self, outcome: Outcome) -> Outcome:
        """Outcomes get stored and shown to users, so their messages must be token-free too."""
        clean = self._redact(outcome.message)
        if clean == outcome.message:
            return outcome
        return replace(outcome, message=clean)
