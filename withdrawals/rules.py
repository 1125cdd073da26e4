"""The withdrawal decision: pure rules over a frozen snapshot. No ORM, no clock, no Redis.

Each rule is a function (snapshot) -> Finding | None. A rule whose finding carries a contract reason
code is named after that code; the others (approval tiers, the incident switch, degraded
infrastructure) only decide who must look. `decide` runs them all and keeps the most severe status.
Thresholds: "above" is strictly greater, "within 24 h" is strictly less than 24 h after the change.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

APPROVED, PENDING_REVIEW, HELD, REJECTED, FROZEN = "APPROVED", "PENDING_REVIEW", "HELD", "REJECTED", "FROZEN"
# A finding can only make the outcome stricter; the strictest one decides.
SEVERITY = {APPROVED: 0, PENDING_REVIEW: 1, HELD: 2, REJECTED: 3, FROZEN: 4}


@dataclass(frozen=True)
class LevelLimits:
    """What one KYC level may withdraw, in BTC equivalent."""

    auto_single: Decimal
    auto_daily: Decimal
    daily: Decimal
    monthly: Decimal


@dataclass(frozen=True)
class Limits:
    password_lock: timedelta
    large_threshold_btc: Decimal
    large_hold: timedelta
    dormant_after: timedelta
    dormant_large_btc: Decimal
    travel_rule_threshold_usd: Decimal
    dual_approval_above_btc: Decimal
    level: LevelLimits


@dataclass(frozen=True)
class Snapshot:
    """Everything the rules know about one withdrawal request, gathered before deciding."""

    requested_at: datetime
    value_btc: Decimal
    value_usd: Decimal
    limits: Limits
    password_changed_at: datetime | None = None
    meets_kyc_level: bool = True
    restriction_codes: frozenset[str] = frozenset()
    screening: str = "clear"  # clear | listed | unavailable
    asset_suspended: bool = False
    last_activity_at: datetime | None = None
    has_travel_rule_data: bool = False
    day_total_btc: Decimal = Decimal(0)  # the customer's other withdrawals in the 24 h before
    month_total_btc: Decimal = Decimal(0)  # … and in the 30 days before
    manual_confirmation: bool = False
    infrastructure_ok: bool = True


@dataclass(frozen=True)
class Finding:
    rule: str
    status: str
    reason: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Decision:
    status: str
    reasons: tuple[str, ...]
    findings: tuple[Finding, ...]
    hold_until: datetime | None
    required_approvals: int


# ---- rules with a contract reason code ------------------------------------------------------------------
def password_changed_24h(s: Snapshot) -> Finding | None:
    changed = s.password_changed_at
    if changed is not None and changed <= s.requested_at < changed + s.limits.password_lock:
        return Finding("password_changed_24h", REJECTED, "password_changed_24h", f"password changed {changed:%F %T}")
    return None


def account_locked(s: Snapshot) -> Finding | None:
    return _standing(s, "account_locked", REJECTED)


def sanctions_hit(s: Snapshot) -> Finding | None:
    return _standing(s, "sanctions_hit", FROZEN)


def below_maintenance_margin(s: Snapshot) -> Finding | None:
    return _standing(s, "below_maintenance_margin", REJECTED)


def _standing(s: Snapshot, code: str, status: str) -> Finding | None:
    if code in s.restriction_codes:
        return Finding(code, status, code, "a standing restriction")
    return None


def kyc_level_insufficient(s: Snapshot) -> Finding | None:
    if not s.meets_kyc_level:
        return Finding("kyc_level_insufficient", REJECTED, "kyc_level_insufficient", "below the level for withdrawals")
    level = s.limits.level
    if s.day_total_btc + s.value_btc > level.daily:
        return Finding("daily_limit", REJECTED, "kyc_level_insufficient", f"over the 24 h limit of {level.daily} BTC")
    if s.month_total_btc + s.value_btc > level.monthly:
        return Finding(
            "monthly_limit", REJECTED, "kyc_level_insufficient", f"over the 30-day limit of {level.monthly} BTC"
        )
    return None


def high_risk_address(s: Snapshot) -> Finding | None:
    if s.screening == "listed":
        return Finding("high_risk_address", FROZEN, "high_risk_address", "destination on a sanctions/high-risk list")
    return None


def asset_suspended(s: Snapshot) -> Finding | None:
    if s.asset_suspended:
        return Finding("asset_suspended", HELD, "asset_suspended", "withdrawals of this asset are suspended")
    return None


def large_withdrawal_hold(s: Snapshot) -> Finding | None:
    if s.value_btc > s.limits.large_threshold_btc:
        return Finding(
            "large_withdrawal_hold",
            HELD,
            "large_withdrawal_hold",
            f"{s.value_btc:f} BTC above {s.limits.large_threshold_btc} BTC",
        )
    return None


def dormant_account_review(s: Snapshot) -> Finding | None:
    idle = s.last_activity_at is None or s.requested_at - s.last_activity_at >= s.limits.dormant_after
    if idle and s.value_btc > s.limits.dormant_large_btc:
        return Finding(
            "dormant_account_review",
            PENDING_REVIEW,
            "dormant_account_review",
            f"no activity since {s.last_activity_at:%F}" if s.last_activity_at else "no activity at all",
        )
    return None


def travel_rule_missing(s: Snapshot) -> Finding | None:
    if s.value_usd >= s.limits.travel_rule_threshold_usd and not s.has_travel_rule_data:
        return Finding(
            "travel_rule_missing",
            PENDING_REVIEW,
            "travel_rule_missing",
            f"{s.value_usd:.2f} USD needs originator and beneficiary data",
        )
    return None


# ---- rules that only decide who must look ----------------------------------------------------------------
def approval_tier(s: Snapshot) -> Finding | None:
    if required_approvals(s):
        return Finding("approval_tier", PENDING_REVIEW, None, f"{required_approvals(s)} approval(s) needed")
    return None


def manual_confirmation(s: Snapshot) -> Finding | None:
    if s.manual_confirmation:
        return Finding("manual_confirmation", PENDING_REVIEW, None, "withdrawals are confirmed by hand (incident)")
    return None


def screening_unavailable(s: Snapshot) -> Finding | None:
    if s.screening == "unavailable":
        return Finding("screening_unavailable", PENDING_REVIEW, None, "the address could not be screened")
    return None


def infrastructure_degraded(s: Snapshot) -> Finding | None:
    # Fail closed: without Redis or a live worker nothing is approved automatically.
    if not s.infrastructure_ok:
        return Finding("infrastructure_degraded", PENDING_REVIEW, None, "Redis or the worker is unavailable")
    return None


RULES = (
    password_changed_24h,
    account_locked,
    sanctions_hit,
    below_maintenance_margin,
    kyc_level_insufficient,
    high_risk_address,
    asset_suspended,
    large_withdrawal_hold,
    dormant_account_review,
    travel_rule_missing,
    approval_tier,
    manual_confirmation,
    screening_unavailable,
    infrastructure_degraded,
)


def required_approvals(s: Snapshot) -> int:
    """0 up to the level's automatic limit (alone and over 24 h), 2 above the large tier, else 1."""
    if s.value_btc > s.limits.dual_approval_above_btc:
        return 2
    level = s.limits.level
    within_auto = s.value_btc <= level.auto_single and s.day_total_btc + s.value_btc <= level.auto_daily
    return 0 if within_auto else 1


def decide(s: Snapshot) -> Decision:
    """Run every rule; the strictest finding decides, and every contract reason found is given."""
    findings = tuple(f for rule in RULES if (f := rule(s)) is not None)
    status = max((f.status for f in findings), key=SEVERITY.__getitem__, default=APPROVED)
    reasons = tuple(dict.fromkeys(f.reason for f in findings if f.reason))
    held_large = status == HELD and any(f.rule == "large_withdrawal_hold" for f in findings)
    approvals = required_approvals(s)
    return Decision(
        status=status,
        reasons=reasons,
        findings=findings,
        hold_until=s.requested_at + s.limits.large_hold if held_large else None,
        # Whatever a person reviews needs at least one approver.
        required_approvals=approvals if status == APPROVED else max(1, approvals),
    )
