"""Risk-limit tables: versions per instrument, the defaults for instruments without one, and the
maker-checker action that sets a new version.

A table is never edited: a change adds version n+1 with its `effective_from`, applied when a second risk
officer approves the request, and records that request. An instrument without a table in force uses the
step model of the risk parameters (`margin.base_maintenance_rate`, `margin.base_initial_rate`,
`margin.step_rate_increment`, `margin.default_base_risk_limit`, `margin.default_risk_limit_step`, each
settable per symbol). Spot instruments have no risk limits.
"""

from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import Max

from backoffice import approvals, audit, parameters
from backoffice.errors import InvalidInput
from trading_risk import margin
from trading_risk.models import Instrument, RiskLimitBracket, RiskLimitTable

ACTION = "risk_limit.set"
REQUEST = "backoffice.request_change"
APPROVE = "backoffice.approve_parameter_change"
STEP_FIELDS = ("base_limit", "step", "base_maintenance_rate", "base_initial_rate", "step_increment")


# ---- reading ------------------------------------------------------------------------------------------------
def table_in_force(instrument_id: int, *, at: datetime) -> RiskLimitTable | None:
    """The latest version of the instrument's table effective at `at`, with its brackets."""
    return (
        RiskLimitTable.objects.filter(instrument_id=instrument_id, effective_from__lte=at)
        .order_by("-effective_from", "-version")
        .prefetch_related("brackets")
        .first()
    )


def tables_in_force(instrument_ids, *, at: datetime) -> dict[int, RiskLimitTable]:
    """instrument id → its table in force at `at`, for those that have one."""
    rows = (
        RiskLimitTable.objects.filter(instrument_id__in=list(instrument_ids), effective_from__lte=at)
        .order_by("instrument_id", "-effective_from", "-version")
        .distinct("instrument_id")
    )
    return {t.instrument_id: t for t in rows.prefetch_related("brackets")}


def limits_of(table: RiskLimitTable) -> margin.RiskLimits:
    """A stored table as the pure module's RiskLimits."""
    common = {"settlement": table.settlement, "contract_size": table.contract_size}
    if table.model == RiskLimitTable.Model.STEP:
        return margin.RiskLimits(
            **common,
            base_limit=table.base_limit,
            step=table.step,
            base_maintenance=table.base_maintenance_rate,
            base_initial=table.base_initial_rate,
            increment=table.step_increment,
        )
    tiers = tuple(
        margin.Tier(b.floor, b.cap, b.maintenance_rate, b.initial_rate, b.maintenance_amount)
        for b in sorted(table.brackets.all(), key=lambda b: b.floor)
    )
    return margin.RiskLimits(**common, tiers=tiers)


def default_limits(symbol: str, *, at: datetime) -> margin.RiskLimits:
    """The step model of the risk parameters (per symbol where set), linear, contract size 1."""
    return margin.RiskLimits(
        base_limit=parameters.param("margin.default_base_risk_limit", scope=symbol, at=at),
        step=parameters.param("margin.default_risk_limit_step", scope=symbol, at=at),
        base_maintenance=parameters.param("margin.base_maintenance_rate", scope=symbol, at=at),
        base_initial=parameters.param("margin.base_initial_rate", scope=symbol, at=at),
        increment=parameters.param("margin.step_rate_increment", scope=symbol, at=at),
    )


def limits_by_instrument(
    instruments: list[Instrument], *, at: datetime
) -> dict[int, tuple[RiskLimitTable | None, margin.RiskLimits]]:
    """instrument id → (table in force or None, its RiskLimits) for these instruments at `at`."""
    tables = tables_in_force([i.pk for i in instruments], at=at)
    return {
        i.pk: (tables[i.pk], limits_of(tables[i.pk])) if i.pk in tables else (None, default_limits(i.symbol, at=at))
        for i in instruments
    }


# ---- the maker-checker action ------------------------------------------------------------------------------------
def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}.", details=[{"field": field, "message": message}])


def _number(payload: dict, field: str, *, positive: bool = True, below_one: bool = False) -> str:
    try:
        value = Decimal(str(payload.get(field)).strip())
    except InvalidOperation:
        raise _bad(field, "must be a number") from None
    if not value.is_finite() or value < 0 or (positive and value == 0):
        raise _bad(field, "must be greater than zero" if positive else "must not be negative")
    if below_one and value >= 1:
        raise _bad(field, "must be a rate below 1")
    # What the columns hold: rates numeric(12,8), amounts numeric(38,18); nothing may be rounded on the way in.
    places = 8 if below_one else 18
    if value != 0 and value.normalize().as_tuple().exponent < -places:
        raise _bad(field, f"at most {places} decimal places")
    if value.adjusted() >= 38 - 18:
        raise _bad(field, "too large")
    return f"{value.normalize():f}"


def _validate(payload: dict) -> dict:
    symbol = str(payload.get("symbol") or "").strip().upper()
    instrument = Instrument.objects.filter(symbol=symbol).first()
    if instrument is None:
        raise _bad("symbol", "unknown instrument")
    if instrument.kind == Instrument.Kind.SPOT:
        raise _bad("symbol", "spot instruments have no risk limits")
    model = str(payload.get("model") or "")
    if model not in RiskLimitTable.Model.values:
        raise _bad("model", "choose STEP or BRACKET")
    settlement = str(payload.get("settlement") or RiskLimitTable.Settlement.LINEAR)
    if settlement not in RiskLimitTable.Settlement.values:
        raise _bad("settlement", "choose LINEAR or INVERSE")
    clean = {
        "symbol": symbol,
        "model": model,
        "settlement": settlement,
        "contract_size": _number(payload, "contract_size") if payload.get("contract_size") else "1",
        "effective_from": _effective_from(payload.get("effective_from")),
    }
    return clean | (_validate_step(payload) if model == RiskLimitTable.Model.STEP else _validate_brackets(payload))


def _effective_from(value) -> datetime | None:
    if not value:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise _bad("effective_from", "not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise _bad("effective_from", "needs a time zone")
    return value


def _validate_step(payload: dict) -> dict:
    clean = {
        "base_limit": _number(payload, "base_limit"),
        "step": _number(payload, "step"),
        "base_maintenance_rate": _number(payload, "base_maintenance_rate", below_one=True),
        "base_initial_rate": _number(payload, "base_initial_rate", below_one=True),
        "step_increment": _number(payload, "step_increment", positive=False, below_one=True),
    }
    if Decimal(clean["base_initial_rate"]) < Decimal(clean["base_maintenance_rate"]):
        raise _bad("base_initial_rate", "must not be below the maintenance rate")
    return clean


def _validate_brackets(payload: dict) -> dict:
    raw = payload.get("brackets")
    if not isinstance(raw, list) or not raw:
        raise _bad("brackets", "give at least one bracket")
    brackets, previous = [], None
    for i, item in enumerate(raw):
        item = item if isinstance(item, dict) else {}
        b = {
            "floor": _number(item, "floor", positive=False),
            "cap": _number(item, "cap"),
            "maintenance_rate": _number(item, "maintenance_rate", below_one=True),
            "initial_rate": _number(item, "initial_rate", below_one=True),
        }
        expected = Decimal(0) if previous is None else Decimal(previous["cap"])
        if Decimal(b["floor"]) != expected:
            raise _bad(f"brackets[{i}].floor", f"must be {expected} (brackets are contiguous from 0)")
        if Decimal(b["cap"]) <= Decimal(b["floor"]):
            raise _bad(f"brackets[{i}].cap", "must be above the floor")
        if Decimal(b["initial_rate"]) < Decimal(b["maintenance_rate"]):
            raise _bad(f"brackets[{i}].initial_rate", "must not be below the maintenance rate")
        if previous and Decimal(b["maintenance_rate"]) < Decimal(previous["maintenance_rate"]):
            raise _bad(f"brackets[{i}].maintenance_rate", "must not fall in a larger bracket")
        brackets.append(b)
        previous = b
    return {"brackets": brackets}


def _describe(payload: dict) -> str:
    if payload["model"] == RiskLimitTable.Model.STEP:
        body = (
            f"base {payload['base_limit']} step {payload['step']}, MM {payload['base_maintenance_rate']} "
            f"IM {payload['base_initial_rate']} +{payload['step_increment']}/step"
        )
    else:
        body = f"{len(payload['brackets'])} brackets"
    return f"Risk limits of {payload['symbol']} ({payload['settlement'].lower()}): {body}"


def _apply(*, payload: dict, change_request, actor: audit.Actor, now: datetime) -> dict:
    table = create_table(payload=payload, change_request=change_request, actor=actor, now=now)
    return {"risk_limit_table_id": table.pk, "version": table.version, "effective_from": table.effective_from}


@transaction.atomic
def create_table(*, payload: dict, actor: audit.Actor, now: datetime, change_request=None) -> RiskLimitTable:
    """Add the next version of an instrument's table from a validated payload (the approval's apply step;
    the demo uses it directly). Positions of the instrument are re-priced once it is in force."""
    instrument = Instrument.objects.select_for_update(no_key=True).get(symbol=payload["symbol"])
    version = (RiskLimitTable.objects.filter(instrument=instrument).aggregate(v=Max("version"))["v"] or 0) + 1
    requested = payload.get("effective_from")
    requested = datetime.fromisoformat(requested) if isinstance(requested, str) else requested
    effective_from = max(requested or now, now)  # a new version never rewrites the past
    step = payload["model"] == RiskLimitTable.Model.STEP
    table = RiskLimitTable.objects.create(
        instrument=instrument,
        version=version,
        model=payload["model"],
        settlement=payload["settlement"],
        contract_size=Decimal(payload.get("contract_size") or 1),
        effective_from=effective_from,
        created_at=now,
        change_request=change_request,
        **({f: Decimal(payload[f]) for f in STEP_FIELDS} if step else {}),
    )
    if not step:
        _create_brackets(table, payload["brackets"])
    audit.record(
        actor=actor,
        action=ACTION,
        target=table,
        now=now,
        after={**payload, "version": version, "effective_from": effective_from},
        reason=change_request.reason if change_request else "",
    )
    _reprice_when_in_force(instrument.pk, effective_from)
    return table


def _create_brackets(table: RiskLimitTable, brackets: list[dict]) -> None:
    tiers = margin.tiers_with_amounts(
        [
            margin.Tier(
                Decimal(b["floor"]), Decimal(b["cap"]), Decimal(b["maintenance_rate"]), Decimal(b["initial_rate"])
            )
            for b in brackets
        ]
    )
    RiskLimitBracket.objects.bulk_create(
        RiskLimitBracket(
            table=table,
            floor=t.floor,
            cap=t.cap,
            maintenance_rate=t.maintenance_rate,
            initial_rate=t.initial_rate,
            maintenance_amount=t.maintenance_amount,
        )
        for t in tiers
    )


def _reprice_when_in_force(instrument_id: int, effective_from: datetime) -> None:
    from trading_risk import tasks

    transaction.on_commit(
        lambda: tasks.reprice_positions.apply_async(kwargs={"instrument_id": instrument_id}, eta=effective_from)
    )


def change_action() -> approvals.ChangeAction:
    """The maker-checker action that sets a new version of an instrument's risk limits."""
    return approvals.ChangeAction(
        code=ACTION,
        label="Set an instrument's risk limits",
        request_permission=REQUEST,
        approve_permission=APPROVE,
        validate=_validate,
        apply=_apply,
        describe=_describe,
    )
