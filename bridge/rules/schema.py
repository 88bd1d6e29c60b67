"""The marshmallow schema of the rules file.

Marshmallow walks the whole file and collects every error into one nested dict, whose keys are the
same path the YAML line map uses; the loader turns that dict into `FILE:LINE: PATH: message`.
Fields here compile what they validate (JMESPath, regexes, templates, durations), so a rule that
passes `bridge check` cannot fail to parse later at match time.
"""
from __future__ import annotations

import re
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from bridge.rules.conditions import ConditionError, build_condition
from bridge.rules.crosscheck import cross_problems
from bridge.rules.durations import parse_duration
from bridge.rules.model import ACTIONS, ACTIONS_WITH_ID, Defaults, IntentSpec, Rule
from bridge.rules.templates import MAX_ID, is_template, parse_template
from bridge.sources import SOURCE_TYPES

SOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")   # it becomes the URL /hooks/<name>; fits its column
KNOWN_TYPES = ", ".join(sorted(SOURCE_TYPES))
ACTION_LIST = ", ".join(ACTIONS)


def _messages(expected: str) -> dict[str, str]:
    """Required and null messages that say what the key should hold (marshmallow formats them: escape braces)."""
    expected = expected.replace("{", "{{").replace("}", "}}")
    return {"required": f"missing; expected {expected}", "null": f"is empty (null); expected {expected}"}


class StrictSchema(Schema):
    """Unknown keys are errors that list the keys allowed at that place, typos being the usual cause."""

    class Meta:
        unknown = RAISE

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        allowed = ", ".join(sorted(field.data_key or name for name, field in self.load_fields.items()))
        self.error_messages["unknown"] = f"unknown key; expected one of: {allowed}"
        self.error_messages["type"] = "not a mapping; expected keys and values"


class DurationField(fields.Field):
    """Seconds as a float, so the scheduler never parses text; the message lists the accepted forms."""

    def __init__(self, **kwargs):
        super().__init__(error_messages=_messages("a duration like 30s or 5m"), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> float:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class EventField(fields.Field):
    """One event type or a list of them; kept as a tuple for membership tests."""

    EXPECTED = "an event type such as push, or a list of them"

    def __init__(self, **kwargs):
        super().__init__(error_messages=_messages(self.EXPECTED), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> tuple[str, ...]:
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names:
            raise ValidationError(f"expected {self.EXPECTED}")
        if not all(isinstance(name, str) and name for name in names):
            raise ValidationError(f"every event must be non-empty text; expected {self.EXPECTED}")
        return tuple(names)


class WhenField(fields.Field):
    """A mapping of JMESPath expression to test. An empty `when:` is an error, not "match everything":
    commenting out the last condition must not silently widen a rule to every event."""

    EXPECTED = "conditions such as payload.ref: refs/heads/main (or remove when: to match every event)"

    def __init__(self, **kwargs):
        super().__init__(error_messages=_messages(self.EXPECTED), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> tuple:
        if not isinstance(value, dict) or not value:
            raise ValidationError(f"expected {self.EXPECTED}")
        conditions, errors = [], {}
        for text, spec in value.items():
            try:
                conditions.append(build_condition(text, spec))
            except ConditionError as exc:
                errors[text] = exc.messages
        if errors:
            raise ValidationError(errors)
        return tuple(conditions)


class IdField(fields.Field):
    """A positive integer now, or a template that must render to one per event."""

    def __init__(self, example: str, **kwargs):
        self.example = example
        super().__init__(error_messages=_messages(f"a positive integer or a template like {example}"), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and is_template(value):
            try:
                return parse_template(value)
            except ValueError as exc:
                raise ValidationError(str(exc)) from None
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value < MAX_ID:
            return value
        raise ValidationError(f"{value!r} is not a positive integer below 10^18; expected e.g. 123456 or {self.example}")


class IntentSchema(StrictSchema):
    action = fields.String(required=True, error_messages=_messages(f"one of: {ACTION_LIST}"),
                           validate=validate.OneOf(ACTIONS, error=f"{{input!r}} is not an action; expected one of: {ACTION_LIST}"))
    site = IdField("'{{ payload.site_id }}'", required=True)
    target = IdField("'{{ payload.export_id }}'", data_key="id", load_default=None)

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def id_fits_action(self, data, original_data, **kwargs):
        action = data.get("action")
        if action is None or not isinstance(original_data, dict):
            return
        if action in ACTIONS_WITH_ID and original_data.get("id") is None:
            raise ValidationError(f"missing; action {action} needs the {action} id", field_name="id")
        if action not in ACTIONS_WITH_ID and "id" in original_data:
            raise ValidationError(f"not allowed for action {action}; expected id only with export or channel",
                                  field_name="id")

    @post_load
    def build(self, data, **kwargs) -> IntentSpec:
        return IntentSpec(data["action"], data["site"], data.get("target"))


class ThenField(fields.Field):
    """One intent or a list of them; errors keep the list index so they land on the right line."""

    EXPECTED = "{action: ..., site: ...} or a list of such mappings"

    def __init__(self, **kwargs):
        super().__init__(error_messages=_messages(self.EXPECTED), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> tuple[IntentSpec, ...]:
        if isinstance(value, dict):
            return (IntentSchema().load(value),)
        if not isinstance(value, list) or not value:
            raise ValidationError(f"{'is empty' if value == [] else 'wrong kind of value'}; expected {self.EXPECTED}")
        specs, errors = [], {}
        for index, item in enumerate(value):
            try:
                specs.append(IntentSchema().load(item))
            except ValidationError as exc:
                errors[index] = exc.messages
        if errors:
            raise ValidationError(errors)
        return tuple(specs)


class DebounceSchema(StrictSchema):
    quiet = DurationField()
    max_wait = DurationField()


class DefaultsSchema(StrictSchema):
    debounce = fields.Nested(DebounceSchema, error_messages=_messages("{quiet: 30s, max_wait: 5m}"))
    min_interval = DurationField(validate=validate.Range(
        min=0, min_inclusive=False, error="must be more than 0; the platform allows one call per site per 5m"))
    dedup_retention = DurationField()


class RuleSchema(StrictSchema):
    name = fields.String(required=True, error_messages=_messages("a unique name for the rule"),
                         validate=validate.Length(min=1, error="is empty; expected a unique name for the rule"))
    source = fields.String(required=True, error_messages=_messages("the name of a source under sources:"))
    event = EventField()
    when = WhenField()
    then = ThenField(required=True)
    debounce = fields.Nested(DebounceSchema, error_messages=_messages("{quiet: 30s, max_wait: 5m}"))


class SourcesField(fields.Field):
    """Each source is validated by the schema of its own `type`, then built, so hooks get instances."""

    def __init__(self, **kwargs):
        super().__init__(error_messages=_messages("a mapping of source names to their options"), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> dict:
        if not isinstance(value, dict):
            raise ValidationError("expected a mapping of source names to their options")
        sources, errors = {}, {}
        for name, options in value.items():
            try:
                sources[name] = _build_source(name, options)
            except ValidationError as exc:
                errors[name] = exc.messages
        if errors:
            raise ValidationError(errors)
        return sources


def _build_source(name: Any, options: Any):
    if not isinstance(name, str) or not SOURCE_NAME.fullmatch(name):
        raise ValidationError(f"{name!r} is not a usable source name; expected letters, digits, '_', '.' or '-' "
                              "(it becomes the URL /hooks/<name>)")
    if not isinstance(options, dict):
        raise ValidationError(f"expected a mapping of options with type: one of {KNOWN_TYPES}")
    kind = options.get("type")
    if kind not in SOURCE_TYPES:
        problem = "missing" if kind is None else f"unknown source type {kind!r}"
        raise ValidationError({"type": [f"{problem}; expected one of: {KNOWN_TYPES}"]})
    schema = SOURCE_TYPES[kind].schema()
    try:
        return SOURCE_TYPES[kind](name, schema.load(options))
    except ValidationError as exc:
        raise ValidationError(_explain_unknown(exc.messages, schema)) from None


def _explain_unknown(messages: Any, schema: Schema) -> Any:
    """Source schemas belong to the sources package; add the allowed keys to their unknown-key errors."""
    if not isinstance(messages, dict):
        return messages
    allowed = ", ".join(sorted(field.data_key or name for name, field in schema.load_fields.items()))
    return {key: ([f"unknown key; expected one of: {allowed}"] if value == ["Unknown field."] else value)
            for key, value in messages.items()}


class ConfigSchema(StrictSchema):
    defaults = fields.Nested(DefaultsSchema, load_default=dict, error_messages=_messages("debounce, min_interval and dedup_retention"))
    sources = SourcesField(load_default=dict)
    rules = fields.List(fields.Nested(RuleSchema), load_default=list,
                        error_messages={**_messages("a list of rules"), "invalid": "not a list; expected a list of rules"})

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def cross_references(self, data, original_data, **kwargs):
        """Checks that span sections; they read the original data so one broken rule hides no other error."""
        errors = cross_problems(original_data)
        if errors:
            raise ValidationError(errors)

    @post_load
    def build(self, data, **kwargs) -> dict:
        defaults = build_defaults(data["defaults"])
        rules = [build_rule(spec, defaults) for spec in data["rules"]]
        return {"defaults": defaults, "sources": data["sources"], "rules": rules}


def build_defaults(section: dict) -> Defaults:
    base = Defaults()
    debounce = section.get("debounce") or {}
    return Defaults(debounce.get("quiet", base.quiet), debounce.get("max_wait", base.max_wait),
                    section.get("min_interval", base.min_interval),
                    section.get("dedup_retention", base.dedup_retention))


def build_rule(spec: dict, defaults: Defaults) -> Rule:
    debounce = spec.get("debounce") or {}
    return Rule(spec["name"], spec["source"], spec.get("event"), spec.get("when", ()), spec["then"],
                debounce.get("quiet", defaults.quiet), debounce.get("max_wait", defaults.max_wait))
