"""Liquidations reported by the engine, the insurance fund ledger they write, and auto-deleveraging.

A liquidation fill better than the bankruptcy price pays the surplus into the fund of the contract's
settlement asset; a worse one draws the shortfall. The fund is never drawn below its floor (risk parameter
`insurance_fund.floor`): the fund covers the loss on as much of the quantity as it can afford, and the rest
of the quantity is deleveraged at the bankruptcy price against the opposite side's ADL queue, walked from
the top (risk-mechanics §2.3). Manual top-ups and withdrawals go through maker-checker.

Lock order: the insurance fund rows by primary key, then the operations log's chain lock (audit.record).
"""

import functools
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from django.db import transaction

from accounts.models import Account
from backoffice import approvals, audit, parameters
from backoffice.errors import DomainError, InvalidInput
from trading_risk import liquidation_selectors as selectors
from trading_risk import margin
from trading_risk.models import (
    AdlAllocation,
    AdlEvent,
    Instrument,
    InsuranceFund,
    InsuranceFundEntry,
    Liquidation,
    RiskLimitTable,
)

PLACES = Decimal("1e-18")
Kind = InsuranceFundEntry.Kind


class LiquidationConflict(DomainError):
    """Liquidations were already received with a different payload."""

    code = "idempotency_conflict"


class FundTooSmall(DomainError):
    """The withdrawal would take the insurance fund below its floor."""

    code = "insurance_fund_too_small"


@dataclass(frozen=True)
class LiquidationIn:
    liquidation_id: str
    account_id: str
    symbol: str
    side: str  # LONG or SHORT: the liquidated position's side
    qty: Decimal
    bankruptcy_price: Decimal
    fill_price: Decimal
    at: datetime


def _exact(function):
    """Run with enough decimal precision that NUMERIC(38, 18) amounts add and multiply without rounding."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with localcontext(prec=80):
            return function(*args, **kwargs)

    return wrapper


# ---- liquidations in ---------------------------------------------------------------------------------
@_exact
@transaction.atomic
def record_liquidations(*, items: list[LiquidationIn], actor: audit.Actor, now: datetime) -> tuple[list[dict], int]:
    """Store a batch of liquidation fills and their fund entries; returns (results in input order, accepted).

    All or nothing: an unknown account or symbol is a 400, a known ID with another payload a 409.
    """
    accounts, instruments = _resolve(items)
    settlements = {s: selectors.settlement(i, at=now) for s, i in instruments.items()}
    funds = _lock_funds({s.asset for s in settlements.values()}, actor=actor, now=now)
    stored = {
        liq.liquidation_id: liq
        for liq in Liquidation.objects.filter(liquidation_id__in=[i.liquidation_id for i in items])
    }
    _refuse_conflicts(items, stored, accounts, instruments)
    new = [i for i in items if i.liquidation_id not in stored]
    _refuse_out_of_range(items, new, settlements)
    for item in new:
        stored[item.liquidation_id] = _liquidate(
            item,
            account=accounts[item.account_id],
            instrument=instruments[item.symbol],
            settlement=settlements[item.symbol],
            fund=funds[settlements[item.symbol].asset],
            actor=actor,
            now=now,
        )
    if new:
        for fund in funds.values():
            fund.save(update_fields=["balance", "updated_at"])
        _audit_batch(new, stored, actor=actor, now=now)
    return [stored[i.liquidation_id].result for i in items], len(new)


def _resolve(items: list[LiquidationIn]) -> tuple[dict[str, Account], dict[str, Instrument]]:
    accounts = Account.objects.in_bulk({i.account_id for i in items}, field_name="external_id")
    instruments = Instrument.objects.in_bulk({i.symbol for i in items}, field_name="symbol")
    errors = [
        {"index": n, "field": field, "message": f"unknown {what}"}
        for n, item in enumerate(items)
        for field, what, known in (("account_id", "account", accounts), ("symbol", "instrument", instruments))
        if getattr(item, field) not in known
    ]
    if errors:
        raise InvalidInput(
            f"{len({e['index'] for e in errors})} item(s) are invalid; nothing was stored.", details=errors
        )
    return accounts, instruments


def _refuse_conflicts(items, stored, accounts, instruments) -> None:
    conflicts = [
        n
        for n, item in enumerate(items)
        if item.liquidation_id in stored
        and _payload(stored[item.liquidation_id]) != _payload_in(item, accounts, instruments)
    ]
    if conflicts:
        raise LiquidationConflict(
            f"{len(conflicts)} liquidation(s) were already received with a different payload; nothing was stored.",
            details=[
                {"index": n, "field": "liquidation_id", "message": "already received with a different payload"}
                for n in conflicts
            ],
        )


_LIMIT = Decimal("1e20")  # what NUMERIC(38, 18) holds


def _refuse_out_of_range(items, new, settlements) -> None:
    fresh = {i.liquidation_id for i in new}
    errors = [
        {"index": n, "field": "fill_price", "message": "the notional or fund change this implies is too large to store"}
        for n, item in enumerate(items)
        if item.liquidation_id in fresh
        and max(abs(_raw_change(item, settlements[item.symbol])), item.qty * item.fill_price) >= _LIMIT
    ]
    if errors:
        raise InvalidInput("The amounts are out of range; nothing was stored.", details=errors)


def _payload(liq: Liquidation) -> tuple:
    return (liq.account_id, liq.instrument_id, liq.side, liq.qty, liq.bankruptcy_price, liq.fill_price, liq.at)


def _payload_in(item: LiquidationIn, accounts, instruments) -> tuple:
    return (
        accounts[item.account_id].pk,
        instruments[item.symbol].pk,
        item.side,
        item.qty,
        item.bankruptcy_price,
        item.fill_price,
        item.at,
    )


def _lock_funds(assets: set[str], *, actor: audit.Actor, now: datetime) -> dict[str, InsuranceFund]:
    for asset in sorted(assets - set(InsuranceFund.objects.filter(asset__in=assets).values_list("asset", flat=True))):
        open_fund(asset=asset, actor=actor, now=now)
    locked = InsuranceFund.objects.select_for_update(no_key=True).filter(asset__in=assets).order_by("pk")
    return {fund.asset: fund for fund in locked}


def open_fund(*, asset: str, actor: audit.Actor, now: datetime) -> InsuranceFund:
    """The insurance fund of `asset`, opened empty if there is none yet."""
    fund, created = InsuranceFund.objects.get_or_create(asset=asset, defaults={"opened_at": now, "updated_at": now})
    if created:
        audit.record(actor=actor, action="insurance_fund.open", target=fund, now=now, after={"asset": asset})
    return fund


def fund_change(item: LiquidationIn, settlement: selectors.Settlement) -> Decimal:
    """What the fill pays into (+) or draws from (−) the fund, in the fund's asset, to 18 places."""
    return _raw_change(item, settlement).quantize(PLACES)


def _raw_change(item: LiquidationIn, settlement: selectors.Settlement) -> Decimal:
    side = selectors.SIDE_SIGN[item.side]
    if settlement.kind == RiskLimitTable.Settlement.INVERSE:
        change = margin.insurance_fund_change_inverse(
            side=side,
            contracts=item.qty,
            contract_size=settlement.contract_size,
            fill=item.fill_price,
            bankruptcy=item.bankruptcy_price,
        )
    else:
        change = margin.insurance_fund_change_linear(
            side=side, qty=item.qty, fill=item.fill_price, bankruptcy=item.bankruptcy_price
        )
    return change


def _liquidate(item, *, account, instrument, settlement, fund, actor, now) -> Liquidation:
    change = fund_change(item, settlement)
    split = margin.ShortfallSplit(Decimal(0), Decimal(0), Decimal(0))
    if change < 0:
        floor = parameters.param("insurance_fund.floor", scope=fund.asset, at=now)
        split = margin.split_shortfall(shortfall=-change, available=fund.balance - floor, qty=item.qty)
    paid = change if change >= 0 else -split.fund_pays
    plan = _plan_deleveraging(item, instrument, account, split.adl_qty) if split.adl_qty else None
    liquidation = Liquidation.objects.create(
        liquidation_id=item.liquidation_id,
        account=account,
        instrument=instrument,
        side=item.side,
        qty=item.qty,
        bankruptcy_price=item.bankruptcy_price,
        fill_price=item.fill_price,
        at=item.at,
        received_at=now,
        fund=fund,
        settlement=settlement.kind,
        contract_size=settlement.contract_size,
        fund_change=change,
        fund_paid=paid,
        adl_qty=split.adl_qty,
        result=_result(item, fund, paid, plan),
    )
    event = None
    if plan is not None:
        event = _record_adl(
            liquidation, plan, split, balance_at_trigger=fund.balance, settlement=settlement, actor=actor, now=now
        )
    if paid != 0 or event is not None:
        _post(fund, liquidation, paid, now=now, adl_event=event)
    return liquidation


def _post(fund, liquidation, amount, *, now, adl_event=None) -> InsuranceFundEntry:
    kind = Kind.LIQUIDATION_SURPLUS if amount > 0 else Kind.LIQUIDATION_SHORTFALL
    if adl_event is not None:
        kind = Kind.ADL
    fund.balance += amount
    fund.updated_at = now
    return InsuranceFundEntry.objects.create(
        fund=fund,
        kind=kind,
        amount=amount,
        balance_after=fund.balance,
        liquidation=liquidation,
        adl_event=adl_event,
        at=liquidation.at,
        created_at=now,
    )


# ---- auto-deleveraging -------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeleveragingPlan:
    side: str  # the side deleveraged
    qty: Decimal
    price: Decimal
    mark: Decimal | None
    ranking: list[selectors.Ranked]
    allocations: list[tuple[selectors.Ranked, Decimal]]
    unallocated: Decimal


def _plan_deleveraging(item: LiquidationIn, instrument, account, qty: Decimal) -> DeleveragingPlan:
    """Rank the opposite side at the latest mark and walk it from the top for `qty` (nothing written)."""
    mark = selectors.latest_marks(symbols=[instrument.symbol]).get(instrument.pk)
    mark_price = mark.price if mark else None
    side = selectors.OPPOSITE[item.side]
    ranking = selectors.adl_ranking(
        instrument_id=instrument.pk, side=side, mark=mark_price or item.bankruptcy_price, exclude_account_id=account.pk
    )
    queue = [margin.QueuePosition(str(n), r.position.qty, r.score) for n, r in enumerate(ranking)]
    walked, unallocated = margin.adl_allocation(queue, qty)
    allocations = [(ranking[int(p.key)], taken) for p, taken in walked]
    return DeleveragingPlan(side, qty, item.bankruptcy_price, mark_price, ranking, allocations, unallocated)


def _record_adl(liquidation, plan: DeleveragingPlan, split, *, balance_at_trigger, settlement, actor, now) -> AdlEvent:
    event = AdlEvent.objects.create(
        liquidation=liquidation,
        instrument=liquidation.instrument,
        side=plan.side,
        qty=plan.qty,
        price=plan.price,
        mark_price=plan.mark,
        fund_balance_at_trigger=balance_at_trigger,
        uncovered=split.uncovered.quantize(PLACES),
        unallocated_qty=plan.unallocated,
        ranking=selectors.ranking_snapshot(plan.ranking),
        at=liquidation.at,
    )
    AdlAllocation.objects.bulk_create(
        AdlAllocation(
            event=event,
            position=r.position,
            account=r.position.account,
            rank=r.rank,
            score=r.score,
            position_qty=r.position.qty,
            qty=qty,
            entry_price=r.position.entry_price,
            realised_pnl=realised_pnl(r.position, qty=qty, price=plan.price, settlement=settlement),
        )
        for r, qty in plan.allocations
    )
    audit.record(
        actor=actor,
        action="adl.trigger",
        target=event,
        now=now,
        after={
            "liquidation_id": liquidation.liquidation_id,
            "symbol": liquidation.instrument.symbol,
            "side": plan.side,
            "qty": plan.qty,
            "price": plan.price,
            "fund_balance_at_trigger": balance_at_trigger,
            "uncovered": event.uncovered,
            "allocations": [{"account_id": r.position.account.external_id, "qty": q} for r, q in plan.allocations],
            "unallocated_qty": plan.unallocated,
        },
    )
    return event


def realised_pnl(position, *, qty: Decimal, price: Decimal, settlement) -> Decimal:
    """What closing `qty` of a counterparty's position at the ADL price realises, in the settlement asset."""
    side = selectors.SIDE_SIGN[position.side]
    if settlement.kind == RiskLimitTable.Settlement.INVERSE:
        pnl = side * qty * settlement.contract_size * (1 / position.entry_price - 1 / price)
    else:
        pnl = side * qty * (price - position.entry_price)
    return pnl.quantize(PLACES)


def _result(item: LiquidationIn, fund: InsuranceFund, paid: Decimal, plan: DeleveragingPlan | None) -> dict:
    result = {
        "liquidation_id": item.liquidation_id,
        "insurance_fund": {"asset": fund.asset, "change": str(paid), "balance_after": str(fund.balance + paid)},
        "adl": None,
    }
    if plan is not None:
        result["adl"] = {
            "side": plan.side.lower(),
            "qty": str(plan.qty),
            "price": str(plan.price),
            "allocations": [
                {"account_id": r.position.account.external_id, "qty": str(qty)} for r, qty in plan.allocations
            ],
            "unallocated_qty": str(plan.unallocated),
        }
    return result


def _audit_batch(new: list[LiquidationIn], stored: dict[str, Liquidation], *, actor, now) -> None:
    totals: dict[str, Decimal] = {}
    for item in new:
        liq = stored[item.liquidation_id]
        totals[liq.fund.asset] = totals.get(liq.fund.asset, Decimal(0)) + liq.fund_paid
    audit.record(
        actor=actor,
        action="liquidations.ingest",
        target=("trading_risk.liquidation_batch", now.isoformat()),
        now=now,
        after={
            "accepted": len(new),
            "liquidation_ids": [i.liquidation_id for i in new],
            "fund_changes": totals,
            "deleveraged": [i.liquidation_id for i in new if stored[i.liquidation_id].adl_qty > 0],
        },
    )


# ---- manual top-ups and withdrawals (maker-checker) --------------------------------------------------
ADJUST_ACTION = "insurance_fund.adjust"
MANUAL_KINDS = (Kind.TOP_UP, Kind.WITHDRAWAL)


@_exact
def _validate_adjustment(payload: dict) -> dict:
    asset = str(payload.get("asset") or "").strip().upper()
    kind = str(payload.get("kind") or "")
    errors = []
    if not asset.isalnum() or len(asset) > 16:
        errors.append({"field": "asset", "message": "an upper-case asset code"})
    if kind not in MANUAL_KINDS:
        errors.append({"field": "kind", "message": "TOP_UP or WITHDRAWAL"})
    try:
        amount = Decimal(str(payload.get("amount"))).quantize(PLACES)
    except ArithmeticError:
        amount = None
    if amount is None or not amount.is_finite() or amount <= 0:
        errors.append({"field": "amount", "message": "a positive number"})
    if errors:
        raise InvalidInput("The adjustment is invalid.", details=errors)
    if kind == Kind.WITHDRAWAL:
        _check_withdrawable(asset, amount, balance=_balance(asset))
    return {"asset": asset, "kind": kind, "amount": amount}


def _balance(asset: str) -> Decimal:
    return InsuranceFund.objects.filter(asset=asset).values_list("balance", flat=True).first() or Decimal(0)


def _check_withdrawable(asset: str, amount: Decimal, *, balance: Decimal) -> None:
    floor = parameters.param("insurance_fund.floor", scope=asset)
    if balance - amount < floor:
        raise FundTooSmall(f"The {asset} fund holds {balance}; withdrawing {amount} would leave it below {floor}.")


def _describe_adjustment(payload: dict) -> str:
    label = "Top up" if payload["kind"] == Kind.TOP_UP else "Withdraw from"
    return f"{label} the {payload['asset']} insurance fund: {payload['amount']}"


@_exact
def _apply_adjustment(*, payload: dict, change_request, actor: audit.Actor, now: datetime) -> dict:
    if payload["kind"] == Kind.TOP_UP:
        open_fund(asset=payload["asset"], actor=actor, now=now)
    fund = InsuranceFund.objects.select_for_update(no_key=True).filter(asset=payload["asset"]).first()
    amount = Decimal(payload["amount"])
    if payload["kind"] == Kind.WITHDRAWAL:
        _check_withdrawable(payload["asset"], amount, balance=fund.balance if fund else Decimal(0))
        amount = -amount
    before = fund.balance
    fund.balance += amount
    fund.updated_at = now
    fund.save(update_fields=["balance", "updated_at"])
    entry = InsuranceFundEntry.objects.create(
        fund=fund,
        kind=payload["kind"],
        amount=amount,
        balance_after=fund.balance,
        change_request=change_request,
        at=now,
        created_at=now,
        note=change_request.reason[:300],
    )
    audit.record(
        actor=actor,
        action="insurance_fund.adjust",
        target=entry,
        now=now,
        before={"asset": fund.asset, "balance": before},
        after={"asset": fund.asset, "balance": fund.balance, "kind": entry.kind, "amount": amount},
        reason=change_request.reason,
    )
    return {"entry_id": entry.pk, "balance_after": fund.balance}


def adjustment_action() -> approvals.ChangeAction:
    """The maker-checker action for a manual top-up or withdrawal of an insurance fund."""
    return approvals.ChangeAction(
        code=ADJUST_ACTION,
        label="Top up or withdraw from an insurance fund",
        request_permission="backoffice.request_change",
        approve_permission="trading_risk.approve_insurance_fund",
        validate=_validate_adjustment,
        apply=_apply_adjustment,
        describe=_describe_adjustment,
        approvals_needed=lambda payload: parameters.param("insurance_fund.manual_change_approvals"),
    )


def request_adjustment(*, asset: str, kind: str, amount: Decimal, reason: str, actor: audit.Actor, now: datetime):
    """Ask for a manual top-up or withdrawal; it applies when another person approves it."""
    return approvals.request_change(
        action=ADJUST_ACTION,
        payload={"asset": asset, "kind": kind, "amount": str(amount)},
        actor=actor,
        reason=reason,
        now=now,
    )
