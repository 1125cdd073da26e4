"""Security events from the exchange: decide at once what the engine must do, and remember what was seen.

Per request: one read of what is already known (events, customers, locks, IPs, devices, suspicious
entries), the rate counters in Redis, the pure rules of accounts.rules, then one transaction that stores
the events and their consequences. Events of one batch are decided in order, each seeing the ones
before it.
"""

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import redis
from django.db import connection, transaction
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Exists, OuterRef
from django.db.models.functions import JSONObject
from psycopg2.extras import execute_values

from accounts import counters, geoip, locks, rules, suspicious
from accounts.models import Customer, CustomerLock, KnownDevice, KnownIp, SecurityEvent, SuspiciousEntry
from backoffice import audit
from backoffice.errors import DomainError, InvalidInput
from backoffice.parameters import param
from trading_risk import services as trading_risk

logger = logging.getLogger(__name__)
PERMANENT_BAN_RETRY_SECONDS = 86400  # what "retry after" says for a ban without an end: ask again tomorrow


class EventConflict(DomainError):
    """An event with this ID was already received with different content."""

    code = "idempotency_conflict"


@dataclass(frozen=True)
class EventIn:
    event_id: str
    type: str
    ip: str
    device_id: str
    at: datetime
    customer_id: str | None = None
    cookie_id: str = ""

    @property
    def fingerprint(self) -> str:
        parts = (self.event_id, self.type, self.ip, self.device_id, self.at.astimezone(UTC).isoformat(),
                 self.customer_id or "", self.cookie_id)
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass
class _CustomerView:
    """What is known about one customer while a batch is decided (updated event by event)."""

    customer: Customer
    locked: bool
    ips: dict[str, KnownIp]
    devices: set[str]
    lock_now: list[str] = field(default_factory=list)


def ingest_security_events(*, events: list[EventIn], actor: audit.Actor, now: datetime) -> tuple[list[dict], int, int]:
    """Decide and store a batch; returns (results in input order, accepted, duplicates)."""
    stored = {e.event_id: e for e in SecurityEvent.objects.filter(event_id__in=[e.event_id for e in events])}
    _refuse_conflicts(events, stored)
    new = [e for e in events if e.event_id not in stored]
    views = _customer_views(new)
    entries = suspicious.statuses(ips={e.ip for e in new}, devices={e.device_id for e in new}, now=now)
    limits = _limits(now)
    decided = {e.event_id: _decide(e, views, entries, limits) for e in new}
    _store(new, decided, views, actor=actor, now=now)
    results = [_result(e.event_id, *(decided[e.event_id] if e.event_id in decided else
                                     (stored[e.event_id].actions, stored[e.event_id].retry_after)))
               for e in events]
    return results, len(new), len(events) - len(new)


def _result(event_id: str, actions: list[str], retry_after: int | None) -> dict:
    result = {"event_id": event_id, "actions": list(actions)}
    if retry_after is not None:
        result["retry_after"] = retry_after
    return result


def _refuse_conflicts(events: list[EventIn], stored: dict[str, SecurityEvent]) -> None:
    conflicts = [i for i, e in enumerate(events) if e.event_id in stored and stored[e.event_id].fingerprint != e.fingerprint]
    if conflicts:
        raise EventConflict(
            f"{len(conflicts)} event(s) were already received with different content; nothing was stored.",
            details=[{"index": i, "field": "event_id", "message": "already received with different content"}
                     for i in conflicts])


def _customer_views(events: list[EventIn]) -> dict[str, _CustomerView]:
    """The customers of the batch with their lock flag, known IPs and devices, in one query."""
    ids = {e.customer_id for e in events if e.customer_id}
    known_ips = KnownIp.objects.filter(customer=OuterRef("pk")).values(
        json=JSONObject(ip="ip", country="country", first="first_seen_at", last="last_seen_at", logins="logins"))
    customers = {
        c.external_id: c
        for c in Customer.objects.filter(external_id__in=ids).annotate(
            locked=Exists(CustomerLock.objects.filter(customer=OuterRef("pk"), unlocked_at__isnull=True)),
            ip_rows=ArraySubquery(known_ips),
            device_ids=ArraySubquery(KnownDevice.objects.filter(customer=OuterRef("pk")).values("device_id")),
        )
    }
    unknown = [i for i, e in enumerate(events) if e.customer_id and e.customer_id not in customers]
    if unknown:
        raise InvalidInput("Events for unknown customers; nothing was stored.",
                           details=[{"index": i, "field": "customer_id", "message": "unknown customer"} for i in unknown])
    return {ext: _CustomerView(c, c.locked, {r["ip"]: _known_ip(c, r) for r in c.ip_rows}, set(c.device_ids))
            for ext, c in customers.items()}


def _known_ip(customer: Customer, row: dict) -> KnownIp:
    return KnownIp(customer=customer, ip=row["ip"], country=row["country"], logins=row["logins"],
                   first_seen_at=datetime.fromisoformat(row["first"]), last_seen_at=datetime.fromisoformat(row["last"]))


def _limits(now: datetime) -> rules.SecurityLimits:
    return rules.SecurityLimits(
        failed_logins_per_customer=param("security.failed_logins_per_customer", at=now),
        failed_login_customers_per_ip=param("security.failed_login_customers_per_ip", at=now),
        registration_cap_per_ip=param("security.registration_cap_per_ip_per_day", at=now),
        registration_cap_per_cookie=param("security.registration_cap_per_cookie_per_day", at=now),
        account_checks_per_second=param("security.account_checks_per_second_per_cookie", at=now),
        cookie_block_seconds=param("security.cookie_block_seconds", at=now),
    )


def _decide(event: EventIn, views, entries, limits) -> tuple[list[str], int | None]:
    view = views.get(event.customer_id) if event.customer_id else None
    facts = _facts(event, view, entries, limits)
    decision = rules.decide_security_event(facts, limits)
    if decision.block_cookie and event.cookie_id:
        _quietly(counters.block_cookie, cookie_id=event.cookie_id, at=event.at, seconds=limits.cookie_block_seconds)
    if view is not None:
        _remember(event, view, decision)
    return decision.actions, decision.retry_after


def _facts(event: EventIn, view: _CustomerView | None, entries, limits) -> rules.EventFacts:
    ip_entry = entries.get((SuspiciousEntry.Kind.IP, event.ip))
    device_entry = entries.get((SuspiciousEntry.Kind.DEVICE, event.device_id))
    base = {"type": event.type, "ip_status": ip_entry.status if ip_entry else "",
            "device_status": device_entry.status if device_entry else "",
            "ban_seconds_left": _ban_left(event.at, ip_entry, device_entry)}
    try:
        return rules.EventFacts(**base, **_customer_facts(event, view), **_counter_facts(event, view))
    except (redis.ConnectionError, redis.TimeoutError):
        logger.warning("security events: Redis unavailable; deciding without rate counters")
        return rules.EventFacts(**base, **_customer_facts(event, view), counters_unavailable=True)


def _ban_left(at: datetime, *entries) -> int:
    banned = [e for e in entries if e is not None and e.status == SuspiciousEntry.Status.BANNED]
    if not banned:
        return 0
    if any(e.expires_at is None for e in banned):
        return PERMANENT_BAN_RETRY_SECONDS
    return max(int((e.expires_at - at).total_seconds()) for e in banned)


def _customer_facts(event: EventIn, view: _CustomerView | None) -> dict:
    if view is None:
        return {}
    window_start = event.at - timedelta(days=param("security.unusual_ip_window_days", at=event.at))
    recent = [k for k in view.ips.values() if k.last_seen_at >= window_start]
    countries = Counter()
    for known in recent:
        if known.country:
            countries[known.country] += known.logins
    seen = view.ips.get(event.ip)
    return {
        "customer_locked": view.locked,
        "has_login_history": bool(view.ips),
        "ip_seen_in_window": seen is not None and seen.last_seen_at >= window_start,
        "ip_country": _country(event) if event.type in rules.LOGIN_TYPES else "",
        "usual_country": countries.most_common(1)[0][0] if countries else "",
        "device_known": event.device_id in view.devices,
    }


def _country(event: EventIn) -> str:
    return geoip.country_of(event.ip)


def _counter_facts(event: EventIn, view: _CustomerView | None) -> dict:
    if event.type == "login_failed" and view is not None:
        window = timedelta(minutes=param("security.failed_login_window_minutes", at=event.at))
        by_customer, by_ip = counters.failed_login(customer_id=view.customer.pk, ip=event.ip, event_id=event.event_id,
                                                   at=event.at, window=window)
        return {"failed_logins_for_customer": by_customer, "failed_customers_for_ip": by_ip}
    if event.type == "registration_attempt":
        ip_n, device_n, cookie_n, left = counters.registration(ip=event.ip, device_id=event.device_id,
                                                               cookie_id=event.cookie_id, at=event.at)
        return {"registrations_for_ip": ip_n, "registrations_for_device": device_n,
                "registrations_for_cookie": cookie_n, "seconds_to_window_end": left}
    if event.type == "account_check":
        count, blocked_ms = counters.account_check(cookie_id=event.cookie_id, at=event.at)
        return {"account_checks_this_second": count, "cookie_blocked_seconds_left": -(-blocked_ms // 1000)}
    return {}


def _remember(event: EventIn, view: _CustomerView, decision: rules.Decision) -> None:
    """Let later events of the same batch see what this one changed."""
    if decision.lock_rules and not view.locked:
        view.locked = True
        view.lock_now.append(decision.lock_rules[0])
    if event.type in rules.LOGIN_TYPES:
        known = view.ips.get(event.ip) or KnownIp(customer=view.customer, ip=event.ip, first_seen_at=event.at,
                                                   last_seen_at=event.at, logins=0)
        known.last_seen_at = max(known.last_seen_at, event.at)
        known.logins += 1
        view.ips[event.ip] = known
    if event.type in ("login", "password_change", "device_added"):
        view.devices.add(event.device_id)


def _quietly(func, **kwargs) -> None:
    try:
        func(**kwargs)
    except (redis.ConnectionError, redis.TimeoutError):
        logger.warning("security events: Redis unavailable; %s skipped", func.__name__)


@transaction.atomic
def _store(events: list[EventIn], decided: dict, views: dict[str, _CustomerView], *, actor: audit.Actor,
           now: datetime) -> None:
    customers = {ext: v.customer for ext, v in views.items()}
    if not any(v.lock_now for v in views.values()) and not any(e.type == "password_change" for e in events):
        # Only observations in this batch (events, known IPs and devices): commit without waiting for the
        # disk flush. A database crash may lose the last moments of them; locks and password changes,
        # which are decisions, always commit durably.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
    SecurityEvent.objects.bulk_create(
        [SecurityEvent(event_id=e.event_id, customer=customers.get(e.customer_id), type=e.type, ip=e.ip,
                       device_id=e.device_id, cookie_id=e.cookie_id, at=e.at, received_at=now,
                       actions=decided[e.event_id][0], retry_after=decided[e.event_id][1], fingerprint=e.fingerprint)
         for e in events],
        ignore_conflicts=True,
    )
    _upsert_known(events, customers)
    _record_password_changes(events, customers, actor=actor, now=now)
    for view in views.values():
        for rule in view.lock_now:
            _lock(view.customer, rule, actor=actor, now=now)


def _upsert_known(events: list[EventIn], customers: dict[str, Customer]) -> None:
    ips, devices = {}, {}
    for e in events:
        customer = customers.get(e.customer_id)
        if customer is None:
            continue
        if e.type in rules.LOGIN_TYPES:
            first, last, n = ips.get((customer.pk, e.ip), (e.at, e.at, 0))
            ips[(customer.pk, e.ip)] = (min(first, e.at), max(last, e.at), n + 1)
        if e.type in ("login", "password_change", "device_added"):
            first, last = devices.get((customer.pk, e.device_id), (e.at, e.at))
            devices[(customer.pk, e.device_id)] = (min(first, e.at), max(last, e.at))
    with connection.cursor() as cursor:
        if ips:
            execute_values(cursor.cursor, f"""
                INSERT INTO {KnownIp._meta.db_table} AS t (customer_id, ip, country, first_seen_at, last_seen_at, logins)
                VALUES %s ON CONFLICT (customer_id, ip) DO UPDATE SET
                    first_seen_at = LEAST(t.first_seen_at, EXCLUDED.first_seen_at),
                    last_seen_at = GREATEST(t.last_seen_at, EXCLUDED.last_seen_at),
                    logins = t.logins + EXCLUDED.logins""",
                [(c, ip, geoip.country_of(ip), a, b, n) for (c, ip), (a, b, n) in ips.items()])
        if devices:
            execute_values(cursor.cursor, f"""
                INSERT INTO {KnownDevice._meta.db_table} AS t (customer_id, device_id, first_seen_at, last_seen_at)
                VALUES %s ON CONFLICT (customer_id, device_id) DO UPDATE SET
                    first_seen_at = LEAST(t.first_seen_at, EXCLUDED.first_seen_at),
                    last_seen_at = GREATEST(t.last_seen_at, EXCLUDED.last_seen_at)""",
                [(c, d, a, b) for (c, d), (a, b) in devices.items()])


def _record_password_changes(events, customers, *, actor: audit.Actor, now: datetime) -> None:
    latest: dict[str, datetime] = {}
    for e in events:
        if e.type == "password_change":
            latest[e.customer_id] = max(latest.get(e.customer_id, e.at), e.at)
    for external_id, at in latest.items():
        customer = Customer.objects.select_for_update(no_key=True).get(pk=customers[external_id].pk)
        if customer.password_changed_at and customer.password_changed_at >= at:
            continue
        before = {"password_changed_at": customer.password_changed_at, "must_change_password": customer.must_change_password}
        customer.password_changed_at, customer.must_change_password = at, False
        customer.save(update_fields=["password_changed_at", "must_change_password"])
        audit.record(actor=actor, action="customer.password_change", target=customer, now=now, before=before,
                     after={"password_changed_at": at, "must_change_password": False})


def _lock(customer: Customer, rule: str, *, actor: audit.Actor, now: datetime) -> None:
    reason = {"account_takeover": "repeated failed logins against this customer (suspected account takeover)",
              "credential_stuffing": "one IP failing against many customers (suspected credential stuffing)"}.get(rule, rule)
    lock = locks.lock_customer(customer=customer, rule=rule, reason=reason, actor=actor, now=now)
    trading_risk.open_alert(rule=rule, severity="MAJOR", customer=customer, summary=f"Customer locked: {reason}",
                            dedup_key=f"{rule}:lock:{lock.pk}", actor=actor, now=now, details={"lock": lock.pk})
