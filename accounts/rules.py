"""Pure decisions for account security and restrictions: no ORM, no clock, no Redis.

Security rules are functions (facts, limits) -> Verdict | None; a function's name is the rule code that
is stored with what it causes. `decide_security_event` runs them all and merges their verdicts.
"""

from dataclasses import dataclass, field
from datetime import datetime

NOTIFY = "notify_sms_email"
VERIFY_DEVICE = "require_device_verification"
VERIFY_FACE = "require_face_verification"
LOCK = "lock_account"
THROTTLE = "throttle"
ACTION_ORDER = (LOCK, THROTTLE, VERIFY_FACE, VERIFY_DEVICE, NOTIFY)


# ---- restrictions ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Effect:
    trade: bool = True
    open: bool = True
    close: bool = True
    withdraw: bool = True


# What each reason code of the contract takes away. Codes not listed here only matter for single
# decisions (a withdrawal, an order) and never appear as standing restrictions.
EFFECTS: dict[str, Effect] = {
    "account_locked": Effect(trade=False, open=False, close=False, withdraw=False),
    "trading_banned": Effect(trade=False, open=False, close=False),
    "restricted_open": Effect(open=False),
    "restricted_open_close": Effect(open=False, close=False),
    "sanctions_hit": Effect(trade=False, open=False, close=False, withdraw=False),
    "below_maintenance_margin": Effect(withdraw=False),
    "symbol_halted": Effect(open=False, close=False),
}
# Codes a person may impose by hand (locks and sanctions have their own workflows).
STAFF_CODES = ("restricted_open", "restricted_open_close", "trading_banned")


@dataclass(frozen=True)
class StandingRestriction:
    code: str
    rule: str
    until: datetime | None
    symbol: str = ""


def restriction_state(restrictions: list[StandingRestriction], *, must_change_password: bool = False) -> dict:
    """What an account may do, given the restrictions in force; symbol-scoped ones are listed but only
    limit their symbol (pre-trade checks apply them)."""
    effects = [EFFECTS[r.code] for r in restrictions if not r.symbol and r.code in EFFECTS]
    can_trade = all(e.trade for e in effects)
    can_open = can_trade and all(e.open for e in effects)
    can_close = can_trade and all(e.close for e in effects)
    return {
        "can_trade": can_trade and (can_open or can_close),
        "can_open": can_open,
        "can_close": can_close,
        "can_withdraw": all(e.withdraw for e in effects),
        "reduce_only": can_close and not can_open,
        "reasons": [_reason(r) for r in sorted(restrictions, key=lambda r: (r.code, r.rule, r.symbol))],
        "must_change_password": must_change_password,
    }


def _reason(r: StandingRestriction) -> dict:
    reason = {"code": r.code, "rule": r.rule}
    if r.until is not None:
        reason["until"] = r.until.isoformat()
    if r.symbol:
        reason["symbol"] = r.symbol
    return reason


# ---- security events ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SecurityLimits:
    failed_logins_per_customer: int
    failed_login_customers_per_ip: int
    registration_cap_per_ip: int
    registration_cap_per_cookie: int
    account_checks_per_second: int
    cookie_block_seconds: int


@dataclass(frozen=True)
class EventFacts:
    """Everything the rules know about one event, gathered by the service before deciding."""

    type: str
    customer_locked: bool = False
    ip_status: str = ""  # "", FLAGGED, LIMITED, BANNED
    device_status: str = ""
    ban_seconds_left: int = 0
    has_login_history: bool = False
    ip_seen_in_window: bool = True
    ip_country: str = ""
    usual_country: str = ""
    device_known: bool = True
    failed_logins_for_customer: int = 0
    failed_customers_for_ip: int = 0
    registrations_for_ip: int = 0
    registrations_for_device: int = 0
    registrations_for_cookie: int = 0
    seconds_to_window_end: int = 0
    account_checks_this_second: int = 0
    cookie_blocked_seconds_left: int = 0
    counters_unavailable: bool = False


@dataclass(frozen=True)
class Verdict:
    actions: tuple[str, ...]
    retry_after: int | None = None
    lock: bool = False
    block_cookie: bool = False


@dataclass(frozen=True)
class Decision:
    actions: list[str]
    retry_after: int | None
    lock_rules: list[str] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)
    block_cookie: bool = False


LOGIN_TYPES = ("login", "password_change")
ANONYMOUS_TYPES = ("registration_attempt", "account_check")


def banned_source(f: EventFacts, limits: SecurityLimits) -> Verdict | None:
    if "BANNED" in (f.ip_status, f.device_status):
        return Verdict((THROTTLE,), retry_after=max(f.ban_seconds_left, 1))
    return None


def locked_customer(f: EventFacts, limits: SecurityLimits) -> Verdict | None:
    if f.customer_locked and f.type not in ANONYMOUS_TYPES:
        return Verdict((LOCK,))
    return None


def ip_anomaly(f: EventFacts, limits: SecurityLimits) -> Verdict | None:
    if f.type not in LOGIN_TYPES or not f.has_login_history:
        return None
    other_country = bool(f.ip_country and f.usual_country and f.ip_country != f.usual_country)
    if not f.ip_seen_in_window or other_country:
        return Verdict((NOTIFY,))
    return None


def new_device(f: EventFacts, limits: SecurityLimits) -> Verdict | None:
    if f.type in ("login", "device_added") and (not f.device_known or f.device_status == "LIMITED"):
        return Verdict((VERIFY_DEVICE, NOTIFY))
    if f.type == "login" and f.ip_status == "LIMITED":
        return Verdict((VERIFY_DEVICE,))
    return None


def password_change_verification(f: EventFacts, limits: SecurityLimits) -> Verdict | None:
    """Every password change is confirmed by e-mail and SMS; from an unusual IP or device also by face."""
    if f.type != "password_change":
        return None
    unusual = not f.ip_seen_in_window or not f.device_known or "LIMITED" in (f.ip_status, f.device_status)
    return Verdict((NOTIFY, VERIFY_FACE) if unusual else (NOTIFY,))


def account_takeover(f: EventFacts, limits: SecurityLimits) -> Verdict | None:
    if f.type == "login_failed" and f.failed_logins_for_customer >= limits.failed_logins_per_customer:
        return Verdict((LOCK,), lock=True)
    return None


def credential_stuffing(f: EventFacts, limits: SecurityLimits) -> Verdict | None:
    if f.type == "login_failed" and f.failed_customers_for_ip >= limits.failed_login_customers_per_ip:
        return Verdict((LOCK,), lock=True)
    return None


def registration_cap(f: EventFacts, limits: SecurityLimits) -> Verdict | None:
    if f.type != "registration_attempt":
        return None
    over = (
        f.registrations_for_ip > limits.registration_cap_per_ip
        or f.registrations_for_device > limits.registration_cap_per_ip
        or f.registrations_for_cookie > limits.registration_cap_per_cookie
    )
    return Verdict((THROTTLE,), retry_after=max(f.seconds_to_window_end, 1)) if over else None


def account_check_rate(f: EventFacts, limits: SecurityLimits) -> Verdict | None:
    if f.type != "account_check":
        return None
    if f.cookie_blocked_seconds_left > 0:
        return Verdict((THROTTLE,), retry_after=f.cookie_blocked_seconds_left)
    if f.account_checks_this_second > limits.account_checks_per_second:
        return Verdict((THROTTLE,), retry_after=limits.cookie_block_seconds, block_cookie=True)
    return None


def counters_down(f: EventFacts, limits: SecurityLimits) -> Verdict | None:
    """Without the rate counters, anonymous traffic is throttled rather than waved through."""
    if f.counters_unavailable and f.type in ANONYMOUS_TYPES:
        return Verdict((THROTTLE,), retry_after=limits.cookie_block_seconds)
    return None


RULES = (
    banned_source,
    locked_customer,
    ip_anomaly,
    new_device,
    password_change_verification,
    account_takeover,
    credential_stuffing,
    registration_cap,
    account_check_rate,
    counters_down,
)


# A refused source or a locked customer ends the matter: nothing else is asked of the engine.
EXCLUSIVE = (banned_source, locked_customer)


def decide_security_event(facts: EventFacts, limits: SecurityLimits) -> Decision:
    """The actions the engine must take for one event, in a stable order, and what else follows."""
    verdicts = [(rule.__name__, v) for rule in RULES if (v := rule(facts, limits)) is not None]
    exclusive = [(name, v) for name, v in verdicts if name in {r.__name__ for r in EXCLUSIVE}]
    verdicts = exclusive[:1] or verdicts
    actions = {a for _, v in verdicts for a in v.actions}
    retry = [v.retry_after for _, v in verdicts if v.retry_after is not None]
    return Decision(
        actions=[a for a in ACTION_ORDER if a in actions],
        retry_after=max(retry) if THROTTLE in actions and retry else None,
        lock_rules=[name for name, v in verdicts if v.lock],
        fired=[name for name, _ in verdicts],
        block_cookie=any(v.block_cookie for _, v in verdicts),
    )
