"""The exchange's wallets: registration, balances and flows in, hot-wallet band alerts, the daily flow review
and cold-wallet checks. Every change is audited in its own transaction.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction

from backoffice import audit
from backoffice.errors import DomainError, InvalidInput
from backoffice.parameters import param
from withdrawals import addresses
from withdrawals.models import (
    AssetNetwork,
    ColdWalletCheck,
    FlowReview,
    Wallet,
    WalletAlert,
    WalletBalance,
    WalletFlow,
    Withdrawal,
)

PERMISSION = "withdrawals.manage_wallet"


class AlreadySignedOff(DomainError):
    """This flow review has been signed off already."""

    code = "already_signed_off"


class FlowConflict(DomainError):
    """This flow_id was sent before with different content."""

    code = "conflict"


def _require(actor: audit.Actor) -> None:
    if actor.user is None or not actor.user.has_perm(PERMISSION):
        from withdrawals.services import NotAllowed

        raise NotAllowed(f"You need the permission {PERMISSION!r} for this.")


@transaction.atomic
def register_wallet(
    *,
    name: str,
    asset_network: AssetNetwork,
    tier: str,
    address: str,
    target_balance: Decimal,
    max_balance: Decimal,
    actor: audit.Actor,
    now: datetime,
) -> Wallet:
    """Register one of the exchange's wallets with its target and maximum balance."""
    _require(actor)
    try:
        address = addresses.validate(asset_network.network, address)
    except addresses.InvalidAddress as exc:
        raise InvalidInput(f"Not a valid address: {exc}", details=[{"field": "address", "message": str(exc)}]) from None
    if not 0 <= target_balance <= max_balance:
        raise InvalidInput("Need 0 ≤ target ≤ maximum.", details=[{"field": "max_balance", "message": "below target"}])
    wallet = Wallet.objects.create(
        name=name,
        asset_network=asset_network,
        tier=tier,
        address=address,
        target_balance=target_balance,
        max_balance=max_balance,
    )
    audit.record(
        actor=actor,
        action="wallet.register",
        target=wallet,
        now=now,
        after=audit.snapshot(wallet, ("name", "tier", "address", "target_balance", "max_balance")),
    )
    return wallet


def _reason_required(reason: str) -> None:
    if not reason.strip():
        raise InvalidInput("Give a reason for the change.", details=[{"field": "reason", "message": "required"}])


def _locked(wallet: Wallet) -> Wallet:
    return Wallet.objects.select_for_update(no_key=True).select_related("asset_network").get(pk=wallet.pk)


@transaction.atomic
def change_band(
    *,
    wallet: Wallet,
    target_balance: Decimal,
    max_balance: Decimal,
    reason: str,
    actor: audit.Actor,
    now: datetime,
) -> Wallet:
    """Set a wallet's target and maximum balance (as registering it does), then judge its latest balance again."""
    _require(actor)
    _reason_required(reason)
    if not 0 <= target_balance <= max_balance:
        raise InvalidInput("Need 0 ≤ target ≤ maximum.", details=[{"field": "max_balance", "message": "below target"}])
    wallet = _locked(wallet)
    if (wallet.target_balance, wallet.max_balance) == (target_balance, max_balance):
        raise InvalidInput("This is the current band.", details=[{"field": "target_balance", "message": "unchanged"}])
    fields = ("target_balance", "max_balance")
    before = audit.snapshot(wallet, fields)
    wallet.target_balance, wallet.max_balance = target_balance, max_balance
    wallet.save(update_fields=list(fields))
    wallet.refresh_from_db(fields=fields)  # as stored, so before and after read alike
    audit.record(
        actor=actor,
        action="wallet.band",
        target=wallet,
        now=now,
        reason=reason,
        before=before,
        after=audit.snapshot(wallet, fields),
    )
    latest = wallet.balances.order_by("-at").first()
    if latest is not None:
        latest.wallet = wallet
        check_band(latest, actor=actor, now=now)
    return wallet


@transaction.atomic
def set_active(*, wallet: Wallet, active: bool, reason: str, actor: audit.Actor, now: datetime) -> Wallet:
    """Deactivate a wallet (no longer monitored: its open alerts close) or bring it back."""
    _require(actor)
    _reason_required(reason)
    wallet = _locked(wallet)
    if wallet.active == active:
        state = "active" if active else "inactive"
        raise InvalidInput(f"The wallet is already {state}.", details=[{"field": "active", "message": state}])
    wallet.active = active
    wallet.save(update_fields=["active"])
    audit.record(
        actor=actor,
        action="wallet.activate" if active else "wallet.deactivate",
        target=wallet,
        now=now,
        reason=reason,
        before={"active": not active},
        after={"active": active},
    )
    if not active:
        for alert in wallet.alerts.filter(closed_at__isnull=True):
            alert.closed_at = now
            alert.save(update_fields=["closed_at"])
            audit.record(
                actor=actor, action="wallet.alert_close", target=alert, now=now, reason=reason, after={"active": False}
            )
    else:
        latest = wallet.balances.order_by("-at").first()
        if latest is not None:
            latest.wallet = wallet
            check_band(latest, actor=actor, now=now)
    return wallet


@dataclass(frozen=True)
class BalanceIn:
    wallet: str
    balance: Decimal
    at: datetime


@dataclass(frozen=True)
class FlowIn:
    flow_id: str
    wallet: str
    direction: str
    amount: Decimal
    at: datetime
    tx_hash: str = ""
    request_id: str = ""


def wallets_by_name(names: set[str]) -> dict[str, Wallet]:
    found = {w.name: w for w in Wallet.objects.filter(name__in=names)}
    missing = sorted(names - set(found))
    if missing:
        raise InvalidInput(
            "Unknown wallet(s).", details=[{"field": "wallet", "message": f"unknown wallet {n!r}"} for n in missing]
        )
    return found


@transaction.atomic
def record_balances(*, items: list[BalanceIn], actor: audit.Actor, now: datetime) -> tuple[int, int]:
    """Store balance snapshots (idempotent on wallet and time) and alert on hot wallets outside their band."""
    wallets = wallets_by_name({i.wallet for i in items})
    created = 0
    for item in items:
        wallet = wallets[item.wallet]
        balance, new = WalletBalance.objects.get_or_create(
            wallet=wallet,
            at=item.at,
            defaults={
                "balance": item.balance,
                "target_balance": wallet.target_balance,
                "max_balance": wallet.max_balance,
            },
        )
        created += new
        if new:
            check_band(balance, actor=actor, now=now)
    return created, len(items) - created


def check_band(balance: WalletBalance, *, actor: audit.Actor, now: datetime) -> WalletAlert | None:
    """Open an alert (once per wallet, kind and day) when an active hot wallet is below target or above maximum."""
    wallet = balance.wallet
    if wallet.tier != Wallet.Tier.HOT or not wallet.active:
        return None
    if balance.balance < wallet.target_balance:
        kind = WalletAlert.Kind.BELOW_TARGET
    elif balance.balance > wallet.max_balance:
        kind = WalletAlert.Kind.ABOVE_MAX
    else:
        _close_alerts(wallet, balance, actor=actor, now=now)
        return None
    alert, created = WalletAlert.objects.get_or_create(
        dedup_key=f"{wallet.pk}:{kind}:{balance.at.date()}",
        defaults={"wallet": wallet, "kind": kind, "balance": balance.balance, "opened_at": now},
    )
    if created:
        audit.record(
            actor=actor,
            action="wallet.alert",
            target=alert,
            now=now,
            after={
                "wallet": wallet.name,
                "kind": kind,
                "balance": balance.balance,
                "target": wallet.target_balance,
                "max": wallet.max_balance,
            },
        )
    return alert


def _close_alerts(wallet: Wallet, balance: WalletBalance, *, actor: audit.Actor, now: datetime) -> None:
    # Back inside the band: the open alerts are resolved by this balance (only a newer one may close them).
    for alert in wallet.alerts.filter(closed_at__isnull=True, opened_at__lte=now):
        if WalletAlert.objects.filter(pk=alert.pk, closed_at__isnull=True).update(closed_at=now):
            audit.record(
                actor=actor,
                action="wallet.alert_close",
                target=alert,
                now=now,
                after={"balance": balance.balance, "at": balance.at},
            )


@transaction.atomic
def record_flows(*, items: list[FlowIn], actor: audit.Actor, now: datetime) -> tuple[int, int]:
    """Store wallet flows, idempotent on flow_id (the same id with other content is a conflict)."""
    wallets = wallets_by_name({i.wallet for i in items})
    created = 0
    for item in items:
        values = {
            "wallet": wallets[item.wallet],
            "direction": item.direction,
            "amount": item.amount,
            "tx_hash": item.tx_hash,
            "request_id": item.request_id,
            "at": item.at,
        }
        flow, new = WalletFlow.objects.get_or_create(flow_id=item.flow_id, defaults=values)
        if not new and any(getattr(flow, k) != v for k, v in values.items()):
            raise FlowConflict(f"flow_id {item.flow_id!r} was sent before with different content.")
        created += new
    return created, len(items) - created


# ---- the daily hot-wallet flow review -------------------------------------------------------------------------
def build_flow_review(*, day: date, now: datetime) -> FlowReview:
    """Compare the day's hot-wallet outflows with the withdrawals paid that day; rebuilt until signed off."""
    start = datetime.combine(day, time(), tzinfo=UTC)
    end = start + timedelta(days=1)
    late_after = timedelta(hours=param("withdrawal.flow_timeliness_hours", at=now))
    paid = dict(
        Withdrawal.objects.filter(status=Withdrawal.Status.SENT, sent_at__gte=start, sent_at__lt=end).values_list(
            "request_id", "sent_at"
        )
    )
    flows = list(
        WalletFlow.objects.filter(
            wallet__tier=Wallet.Tier.HOT, direction=WalletFlow.Direction.OUT, at__gte=start, at__lt=end + late_after
        )
    )
    by_request = {f.request_id: f for f in flows if f.request_id}
    known = set(Withdrawal.objects.filter(request_id__in=list(by_request)).values_list("request_id", flat=True))
    findings = {
        "missing": sorted(r for r in paid if r not in by_request),
        "late": sorted(r for r, sent in paid.items() if r in by_request and by_request[r].at > sent + late_after),
        "unexpected": sorted(
            f.flow_id for f in flows if f.at < end and f.request_id not in paid and f.request_id not in known
        ),
    }
    # Approved before the day ended but still not paid: the payout pipeline is behind.
    findings["unpaid"] = sorted(
        Withdrawal.objects.filter(status=Withdrawal.Status.APPROVED, requested_at__lt=end).values_list(
            "request_id", flat=True
        )
    )
    return _store_review(day, now, len(paid), sum(1 for f in flows if f.at < end), findings)


@transaction.atomic
def _store_review(day, now, paid, flows_out, findings) -> FlowReview:
    review = FlowReview.objects.select_for_update(no_key=True).filter(day=day).first()
    if review is not None and review.signed_off_at:
        return review  # a signed review is a record; it is never rebuilt
    values = {"built_at": now, "withdrawals_paid": paid, "flows_out": flows_out, "findings": findings}
    review, _ = FlowReview.objects.update_or_create(day=day, defaults=values)
    audit.record(
        actor=audit.Actor.system("flow_review"), action="wallet.flow_review", target=review, now=now, after=values
    )
    return review


@transaction.atomic
def sign_off_flow_review(*, review: FlowReview, note: str, actor: audit.Actor, now: datetime) -> FlowReview:
    """A person confirms the day's flows were complete and timely, or explains what was not."""
    _require(actor)
    review = FlowReview.objects.select_for_update(no_key=True).get(pk=review.pk)
    if review.signed_off_at:
        raise AlreadySignedOff()
    if not review.is_clean and not note.strip():
        raise InvalidInput(
            "Explain the findings before signing off.", details=[{"field": "note", "message": "required"}]
        )
    review.signed_off_by, review.signed_off_at, review.note = actor.user, now, note
    review.save(update_fields=["signed_off_by", "signed_off_at", "note"])
    audit.record(
        actor=actor,
        action="wallet.flow_review_sign_off",
        target=review,
        now=now,
        reason=note,
        after={"day": review.day, "findings": review.findings},
    )
    return review


@transaction.atomic
def record_cold_check(
    *,
    wallet: Wallet,
    observed_balance: Decimal,
    expected_balance: Decimal,
    note: str,
    actor: audit.Actor,
    now: datetime,
) -> ColdWalletCheck:
    """Record a check of a cold wallet; a mismatch needs a note."""
    _require(actor)
    if wallet.tier != Wallet.Tier.COLD:
        raise InvalidInput(
            "Only cold wallets are checked this way.", details=[{"field": "wallet", "message": "not cold"}]
        )
    if observed_balance != expected_balance and not note.strip():
        raise InvalidInput("Explain the difference.", details=[{"field": "note", "message": "required"}])
    check = ColdWalletCheck.objects.create(
        wallet=wallet,
        checked_at=now,
        checked_by=actor.user,
        observed_balance=observed_balance,
        expected_balance=expected_balance,
        note=note,
    )
    audit.record(
        actor=actor,
        action="wallet.cold_check",
        target=check,
        now=now,
        reason=note,
        after={"wallet": wallet.name, "observed": observed_balance, "expected": expected_balance},
    )
    return check
