"""The loaded rules and what matching an event produces.

Matching is a pure function of the document: no clock, no store. The hook handler records the
intents, the scheduler decides when they fire, and `bridge explain` prints the traces.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bridge.rules.conditions import Condition
from bridge.rules.templates import RenderError, Template, positive_id
from bridge.rules.values import show
from bridge.sources import Source

ACTIONS = ("import", "export", "channel", "export-all", "all")
ACTIONS_WITH_ID = ("export", "channel")   # the platform wants the export or channel id for these


@dataclass(frozen=True)
class Defaults:
    """Seconds. Built-in values follow the platform's own limit of one process call per 5 minutes."""

    quiet: float = 30.0
    max_wait: float = 300.0
    min_interval: float = 300.0
    dedup_retention: float = 7 * 86400.0   # how long a delivery id is remembered, to drop redeliveries


@dataclass(frozen=True)
class Intent:
    site_id: int
    action: str
    target_id: int | None
    rule: str
    quiet: float
    max_wait: float


@dataclass(frozen=True)
class Rejection:
    """An intent the rule asked for but the payload could not fill in (e.g. no site id)."""

    rule: str
    reason: str


@dataclass(frozen=True)
class RuleTrace:
    rule: str
    matched: bool
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Match:
    intents: list[Intent]
    rejections: list[Rejection]
    traces: list[RuleTrace]

    @property
    def matched_rules(self) -> list[str]:
        return [trace.rule for trace in self.traces if trace.matched]


@dataclass(frozen=True)
class IntentSpec:
    """One entry of `then:`; site and id are fixed numbers or templates filled in per event."""

    action: str
    site: int | Template
    target: int | Template | None = None

    def render(self, document: Any, rule: Rule) -> Intent:
        site = _render_id(self.site, document, "site")
        target = None if self.target is None else _render_id(self.target, document, "id")
        return Intent(site, self.action, target, rule.name, rule.quiet, rule.max_wait)


def _render_id(spec: int | Template, document: Any, label: str) -> int:
    if not isinstance(spec, Template):
        return spec
    try:
        value = spec.render(document)
    except RenderError as exc:
        raise RenderError(f"{label} could not be rendered from {spec.text}: {exc}") from None
    try:
        return positive_id(value)
    except RenderError as exc:
        raise RenderError(f"{label} rendered to {exc} from {spec.text}; expected a positive integer") from None


@dataclass(frozen=True)
class Rule:
    name: str
    source: str
    events: tuple[str, ...] | None
    conditions: tuple[Condition, ...]
    intents: tuple[IntentSpec, ...]
    quiet: float
    max_wait: float

    def evaluate(self, document: dict) -> tuple[RuleTrace, list[Intent], list[Rejection]]:
        matched, reasons = self.check(document)
        if not matched:
            return RuleTrace(self.name, False, reasons), [], []
        intents, rejections = self.render(document)
        return RuleTrace(self.name, True, reasons), intents, rejections

    def check(self, document: dict) -> tuple[bool, list[str]]:
        """Source first (a foreign source makes every other reason noise), then event and conditions."""
        source = document.get("source")
        if source != self.source:
            return False, [f"source is {show(source)}, not {self.source!r}"]
        held, reasons = self._check_event(document.get("event"))
        for condition in self.conditions:
            condition_held, condition_reasons = condition.evaluate(document)
            held = held and condition_held
            reasons += condition_reasons
        return held, reasons

    def _check_event(self, event: Any) -> tuple[bool, list[str]]:
        if self.events is None:
            return True, []
        held = isinstance(event, str) and event in self.events
        wanted = ", ".join(repr(name) for name in self.events)
        return held, [f"event {show(event)} {'is' if held else 'is not'} one of [{wanted}]"]

    def render(self, document: dict) -> tuple[list[Intent], list[Rejection]]:
        intents, rejections = [], []
        for spec in self.intents:
            try:
                intents.append(spec.render(document, self))
            except RenderError as exc:
                rejections.append(Rejection(self.name, str(exc)))
        return intents, rejections


class Config:
    """A validated rules file: the sources to build hooks from and the rules to match events with."""

    def __init__(self, path: str, defaults: Defaults, sources: dict[str, Source], rules: list[Rule]):
        self.path = path
        self.defaults = defaults
        self.sources = sources
        self.rules = rules

    def __repr__(self) -> str:
        return f"<Config {self.path!r}: {len(self.sources)} sources, {len(self.rules)} rules>"

    def match(self, document: dict) -> Match:
        """Every rule is evaluated, so explain can show all of them; never raises for any payload."""
        if not isinstance(document, dict):
            document = {}
        intents, rejections, traces = [], [], []
        for rule in self.rules:
            trace, rule_intents, rule_rejections = rule.evaluate(document)
            traces.append(trace)
            intents += rule_intents
            rejections += rule_rejections
        return Match(intents, rejections, traces)
