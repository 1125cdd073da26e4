"""Reads with business meaning: the decision snapshot, limits, the review queue, wallets."""

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Max, Q, Sum

from accounts import restrictions
from accounts.models import Account, Customer, SecurityEvent
from accounts.rules import EFFECTS
from backoffice import health
from backoffice.parameters import param
from withdrawals import rules
from withdrawals.models import (
    AssetNetwork,
    ManualConfirmation,
    RegistrationAuthority,
    Wallet,
    WalletBalance,
    Withdrawal,
)

logger = logging.getLogger(__name__)
# Statuses whose amount may still leave (or has left): they count against the limits.
COUNTED = (Withdrawal.Status.APPROVED, Withdrawal.Status.SENT, Withdrawal.Status.PENDING_REVIEW, Withdrawal.Status.HELD)
QUEUE = (Withdrawal.Status.HELD, Withdrawal.Status.PENDING_REVIEW, Withdrawal.Status.FROZEN)


def limits(*, kyc_level: int, at: datetime) -> rules.Limits:
    """The withdrawal thresholds in force at `at`, with the customer's KYC level limits."""
    return rules.Limits(
        password_lock=timedelta(hours=param("withdrawal.password_change_lock_hours", at=at)),
        large_threshold_btc=param("withdrawal.large_threshold_btc", at=at),
        large_hold=timedelta(hours=param("withdrawal.large_hold_hours", at=at)),
        dormant_after=timedelta(days=param("withdrawal.dormant_after_days", at=at)),
        dormant_large_btc=param("withdrawal.dormant_large_btc", at=at),
        travel_rule_threshold_usd=param("withdrawal.travel_rule_threshold_usd", at=at),
        dual_approval_above_btc=param("withdrawal.dual_approval_above_btc", at=at),
        level=level_limits(kyc_level, at=at),
    )


def level_limits(kyc_level: int, *, at: datetime) -> rules.LevelLimits:
    if kyc_level < 1:  # unverified customers have no allowance at all
        return rules.LevelLimits(Decimal(0), Decimal(0), Decimal(0), Decimal(0))
    level = min(kyc_level, 3)
    return rules.LevelLimits(
        *(
            param(f"withdrawal.level{level}_{kind}_btc", at=at)
            for kind in ("auto_single", "auto_daily", "daily", "monthly")
        )
    )


def totals_btc(customer_id: int, *, before: datetime) -> tuple[Decimal, Decimal]:
    """The customer's withdrawals that count against limits in the 24 h and the 30 days before `before`."""
    recent = Withdrawal.objects.filter(
        customer_id=customer_id,
        status__in=COUNTED,
        requested_at__lte=before,
        requested_at__gt=before - timedelta(days=30),
    )
    sums = recent.aggregate(
        day=Sum("value_btc", filter=Q(requested_at__gt=before - timedelta(hours=24))), month=Sum("value_btc")
    )
    return sums["day"] or Decimal(0), sums["month"] or Decimal(0)


def last_activity_at(account: Account, *, before: datetime) -> datetime | None:
    """The customer's latest login or withdrawal before `before`, else when the account was opened."""
    login = SecurityEvent.objects.filter(
        customer_id=account.customer_id, type=SecurityEvent.Type.LOGIN, at__lt=before
    ).aggregate(at=Max("at"))["at"]
    withdrawal = Withdrawal.objects.filter(customer_id=account.customer_id, requested_at__lt=before).aggregate(
        at=Max("requested_at")
    )["at"]
    return max((t for t in (login, withdrawal, account.created_at) if t is not None), default=None)


def blocking_restriction_codes(account: Account, *, now: datetime) -> frozenset[str]:
    """Codes of the restrictions in force that take away withdrawing (locks, sanctions, margin)."""
    state = restrictions.account_state(account, now=now)
    return frozenset(
        r["code"]
        for r in state["reasons"]
        if r["code"] in EFFECTS and not EFFECTS[r["code"]].withdraw and not r.get("symbol")
    )


def manual_confirmation_on() -> bool:
    return ManualConfirmation.objects.filter(ended_at__isnull=True).exists()


def infrastructure_ok(*, now: datetime) -> bool:
    """Redis answers and a worker sent a heartbeat lately; otherwise decisions fail closed."""
    try:
        beat = cache.get(health.HEARTBEAT_KEY)
    except Exception:
        logger.warning("withdrawals: Redis unavailable, deciding without automatic approval")
        return False
    return beat is not None and now - datetime.fromisoformat(beat) < health.HEARTBEAT_STALE_AFTER


def asset_network(asset: str, network: str) -> AssetNetwork | None:
    return AssetNetwork.objects.filter(asset=asset, network=network).first()


def registration_authorities() -> frozenset[str] | None:
    """The codes of the loaded GLEIF Registration Authorities List, or None while none is loaded."""
    codes = frozenset(RegistrationAuthority.objects.values_list("code", flat=True))
    return codes or None


# ---- the review page ------------------------------------------------------------------------------------
def review_queue():
    """Withdrawals a person must act on, oldest first."""
    return (
        Withdrawal.objects.filter(status__in=QUEUE)
        .select_related("customer", "account", "asset_network")
        .order_by("requested_at")
    )


def previous_withdrawals(withdrawal: Withdrawal, *, limit: int = 20) -> list[Withdrawal]:
    return list(
        Withdrawal.objects.filter(customer_id=withdrawal.customer_id)
        .exclude(pk=withdrawal.pk)
        .select_related("asset_network")
        .order_by("-requested_at")[:limit]
    )


def risk_picture(withdrawal: Withdrawal, *, now: datetime) -> dict:
    """The customer's standing for a reviewer: KYC, restrictions, limits used, open alerts."""
    customer: Customer = withdrawal.customer
    day, month = totals_btc(customer.pk, before=now)
    from trading_risk.models import Alert

    return {
        "kyc_level": customer.kyc_level,
        "password_changed_at": customer.password_changed_at,
        "restrictions": restrictions.account_state(withdrawal.account, now=now)["reasons"],
        "limits": level_limits(customer.kyc_level, at=now),
        "day_total_btc": day,
        "month_total_btc": month,
        "open_alerts": list(
            Alert.objects.filter(customer=customer, status=Alert.Status.OPEN)
            .order_by("-opened_at")
            .values("pk", "rule", "summary", "opened_at")[:10]
        ),
        "last_activity_at": last_activity_at(withdrawal.account, before=withdrawal.requested_at),
    }


# ---- wallets ------------------------------------------------------------------------------------------
def latest_balances() -> list[tuple[Wallet, WalletBalance | None]]:
    wallets = list(Wallet.objects.filter(active=True).select_related("asset_network").order_by("asset_network", "tier"))
    latest = {
        b.wallet_id: b
        for b in WalletBalance.objects.filter(wallet__in=wallets).order_by("wallet_id", "-at").distinct("wallet_id")
    }
    return [(w, latest.get(w.pk)) for w in wallets]


def balance_history(
    wallet: Wallet, *, since: datetime
) -> list[tuple[datetime, Decimal, Decimal | None, Decimal | None]]:
    """(at, balance, target, maximum) since `since`: each balance with the band in force when it was recorded."""
    return list(
        wallet.balances.filter(at__gte=since)
        .order_by("at")
        .values_list("at", "balance", "target_balance", "max_balance")
    )


def wallet_changes(wallet: Wallet, *, limit: int = 20):
    """The operations-log entries about a wallet (registration, band, activation), newest first."""
    from backoffice.models import OperationsLogEntry

    return OperationsLogEntry.objects.filter(target_type="withdrawals.wallet", target_id=str(wallet.pk)).order_by(
        "-at"
    )[:limit]
