"""Risk parameters: every threshold a risk officer may change, versioned, read through one cached accessor.

`param(key, scope=..., at=...)` returns the value in force at `at` (default: now) for a scope (a symbol or
an asset), falling back to the unscoped value. Values are typed by their definition: DECIMAL → Decimal,
INTEGER → int, BOOLEAN → bool, CHOICE → str. Changes go through maker-checker (`risk_parameter.set`).

The whole table is cached per process. A generation number in Redis is re-checked at most every
RISK_PARAMETER_CACHE_SECONDS; a change bumps it on commit, so every process sees it within that time.
"""

import bisect
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from backoffice import approvals, audit
from backoffice.errors import InvalidInput
from backoffice.models import ParameterDefinition, ParameterValue

logger = logging.getLogger(__name__)
_GENERATION_KEY = "risk-parameters:generation"


class UnknownParameter(KeyError):
    pass


@dataclass(frozen=True)
class _Series:
    """The versions of one (key, scope), oldest first."""

    starts: tuple[datetime, ...]
    values: tuple

    def at(self, moment: datetime):
        i = bisect.bisect_right(self.starts, moment)
        return self.values[i - 1] if i else None


class _Cache:
    def __init__(self):
        self.lock = threading.Lock()
        self.series: dict[tuple[str, str], _Series] | None = None
        self.generation = None
        self.checked_at = float("-inf")
        self.uncommitted_change = False

    def clear(self):
        with self.lock:
            self.series = None
            self.checked_at = float("-inf")


_cache = _Cache()


def param(key: str, *, scope: str = "", at: datetime | None = None):
    """The value of risk parameter `key` in force at `at` for `scope` (falling back to the global value)."""
    series = _current_series()
    moment = at or timezone.now()
    for candidate in ((key, scope), (key, "")) if scope else ((key, ""),):
        found = series.get(candidate)
        if found is not None and (value := found.at(moment)) is not None:
            return value
    raise UnknownParameter(f"No value of risk parameter {key!r} is in force at {moment:%Y-%m-%d %H:%M}.")


def clear_cache() -> None:
    """Forget the cached parameters in this process, and any note of an uncommitted change (tests)."""
    _cache.uncommitted_change = False
    _cache.clear()


def _current_series() -> dict[tuple[str, str], _Series]:
    # Inside a transaction that changed a parameter, read straight from the database: the change is
    # visible to this connection only, and must not be cached if the transaction rolls back.
    if _cache.uncommitted_change:
        if connection.in_atomic_block:
            return _load_series()
        _cache.uncommitted_change = False
        _cache.clear()
    now = time.monotonic()
    if _cache.series is not None and now - _cache.checked_at < settings.RISK_PARAMETER_CACHE_SECONDS:
        return _cache.series
    generation = _remote_generation()
    with _cache.lock:
        if _cache.series is None or generation is None or generation != _cache.generation:
            _cache.series = _load_series()
            _cache.generation = generation
        _cache.checked_at = now
        return _cache.series


def _remote_generation():
    try:
        return cache.get(_GENERATION_KEY, 0)
    except Exception:  # Redis down: reload from the database on every check rather than serve stale values
        logger.warning("risk parameters: Redis unavailable, reloading from the database")
        return None


def _bump_generation() -> None:
    try:
        cache.set(_GENERATION_KEY, time.time_ns(), timeout=None)
    except Exception:
        logger.warning("risk parameters: could not publish a change to Redis; other processes see it after restart")


def _load_series() -> dict[tuple[str, str], _Series]:
    kinds = dict(ParameterDefinition.objects.values_list("key", "kind"))
    grouped: dict[tuple[str, str], list[tuple[datetime, object]]] = {}
    rows = ParameterValue.objects.order_by("effective_from").values_list(
        "definition_id", "scope", "value", "effective_from"
    )
    for key, scope, raw, effective_from in rows:
        grouped.setdefault((key, scope), []).append((effective_from, typed(kinds[key], raw)))
    return {k: _Series(tuple(s for s, _ in v), tuple(x for _, x in v)) for k, v in grouped.items()}


def typed(kind: str, raw: str):
    """A stored value as its Python type."""
    if kind == ParameterDefinition.Kind.DECIMAL:
        return Decimal(raw)
    if kind == ParameterDefinition.Kind.INTEGER:
        return int(raw)
    if kind == ParameterDefinition.Kind.BOOLEAN:
        return raw == "true"
    return raw


def validate_value(definition: ParameterDefinition, raw) -> str:
    """The canonical stored text for a proposed value, or InvalidInput saying what is wrong."""
    text = str(raw).strip()
    kind = definition.kind
    if kind == ParameterDefinition.Kind.BOOLEAN:
        if text.lower() not in ("true", "false"):
            raise _bad_value("must be true or false")
        return text.lower()
    if kind == ParameterDefinition.Kind.CHOICE:
        if text not in definition.choices:
            raise _bad_value(f"must be one of {', '.join(definition.choices)}")
        return text
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _bad_value("must be a number") from None
    if not number.is_finite():
        raise _bad_value("must be a finite number")
    if kind == ParameterDefinition.Kind.INTEGER and number != number.to_integral_value():
        raise _bad_value("must be a whole number")
    if definition.min_value is not None and number < definition.min_value:
        raise _bad_value(f"must be at least {definition.min_value.normalize():f}")
    if definition.max_value is not None and number > definition.max_value:
        raise _bad_value(f"must be at most {definition.max_value.normalize():f}")
    return str(int(number)) if kind == ParameterDefinition.Kind.INTEGER else f"{number.normalize():f}"


def _bad_value(message: str) -> InvalidInput:
    return InvalidInput(f"The value {message}.", details=[{"field": "value", "message": message}])


def _validate_change(payload: dict) -> dict:
    try:
        definition = ParameterDefinition.objects.get(pk=payload.get("key"))
    except ParameterDefinition.DoesNotExist:
        raise InvalidInput(
            "There is no such risk parameter.", details=[{"field": "key", "message": "unknown"}]
        ) from None
    scope = str(payload.get("scope") or "").strip().upper()
    if scope and not definition.scoped:
        raise InvalidInput(
            "This parameter cannot be set per symbol or asset.", details=[{"field": "scope", "message": "not scoped"}]
        )
    effective_from = payload.get("effective_from") or None
    if isinstance(effective_from, str):
        try:
            effective_from = datetime.fromisoformat(effective_from)
        except ValueError:
            raise InvalidInput(
                "effective_from must be an ISO 8601 time.", details=[{"field": "effective_from", "message": "invalid"}]
            ) from None
    if effective_from is not None and effective_from.tzinfo is None:
        raise InvalidInput(
            "effective_from needs a time zone.", details=[{"field": "effective_from", "message": "naive"}]
        )
    return {
        "key": definition.key,
        "scope": scope,
        "value": validate_value(definition, payload.get("value")),
        "effective_from": effective_from,
    }


def _describe_change(payload: dict) -> str:
    scope = f" for {payload['scope']}" if payload["scope"] else ""
    when = f" from {payload['effective_from']}" if payload.get("effective_from") else " on approval"
    return f"Set {payload['key']}{scope} to {payload['value']}{when}"


def _apply_change(*, payload: dict, change_request, actor: audit.Actor, now: datetime) -> dict:
    effective_from = datetime.fromisoformat(payload["effective_from"]) if payload.get("effective_from") else now
    effective_from = max(effective_from, now)  # a change never rewrites the past
    previous = current_value(payload["key"], scope=payload["scope"])
    value = ParameterValue.objects.create(
        definition_id=payload["key"],
        scope=payload["scope"],
        value=payload["value"],
        effective_from=effective_from,
        created_at=now,
        change_request=change_request,
    )
    audit.record(
        actor=actor,
        action="risk_parameter.set",
        target=value,
        now=now,
        before={"key": payload["key"], "scope": payload["scope"], "value": previous},
        after={
            "key": payload["key"],
            "scope": payload["scope"],
            "value": value.value,
            "effective_from": effective_from,
        },
        reason=change_request.reason,
    )
    _note_change()
    return {"parameter_value_id": value.pk, "effective_from": effective_from}


def current_value(key: str, *, scope: str = "") -> str | None:
    """The stored text in force now for exactly this (key, scope), or None."""
    row = (
        ParameterValue.objects.filter(definition_id=key, scope=scope, effective_from__lte=timezone.now())
        .order_by("-effective_from")
        .values_list("value", flat=True)
        .first()
    )
    return row


def _note_change() -> None:
    _cache.uncommitted_change = True
    _cache.clear()
    transaction.on_commit(_after_commit)


def _after_commit() -> None:
    _cache.uncommitted_change = False
    _cache.clear()
    _bump_generation()


def change_action() -> "approvals.ChangeAction":
    """The maker-checker action that changes a risk parameter (registered when the app is ready)."""
    return approvals.ChangeAction(
        code="risk_parameter.set",
        label="Change a risk parameter",
        request_permission="backoffice.request_change",
        approve_permission="backoffice.approve_parameter_change",
        validate=_validate_change,
        apply=_apply_change,
        describe=_describe_change,
        approvals_needed=lambda payload: param("maker_checker.parameter_change_approvals"),
    )
