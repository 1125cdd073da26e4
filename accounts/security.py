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

import orjson
import redis
from django.db import connection, transaction

from accounts import counters, geoip, locks, rules
from accounts.models import Customer, SuspiciousEntry
from backoffice import audit
from backoffice.errors import DomainError, InvalidInput
from backoffice.parameters import param
from backoffice.prepared import Prepared
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
        parts = (
            self.event_id,
            self.type,
            self.ip,
            self.device_id,
            self.at.astimezone(UTC).isoformat(),
            self.customer_id or "",
            self.cookie_id,
        )
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass
class _CustomerView:
    """What is known about one customer while a batch is decided (updated event by event)."""

    customer_id: int
    external_id: str
    locked: bool
    ips: dict[str, "_KnownIp"]
    devices: set[str]
    lock_now: list[str] = field(default_factory=list)


@dataclass
class _KnownIp:
    country: str
    first_seen_at: datetime
    last_seen_at: datetime
    logins: int


@dataclass(frozen=True)
class _Stored:
    fingerprint: str
    actions: list[str]
    retry_after: int | None


@dataclass(frozen=True)
class _Suspicious:
    status: str
    expires_at: datetime | None


def ingest_security_events(*, events: list[EventIn], actor: audit.Actor, now: datetime) -> tuple[list[dict], int, int]:
    """Decide and store a batch; returns (results in input order, accepted, duplicates)."""
    stored, views, entries, countries = _read_state(events, now=now)
    _refuse_conflicts(events, stored)
    new = [e for e in events if e.event_id not in stored]
    _refuse_unknown_customers(events, views)
    limits = _limits(now)
    decided = {e.event_id: _decide(e, views, entries, countries, limits) for e in new}
    _store(new, decided, views, countries, actor=actor, now=now)
    results = [
        _result(
            e.event_id,
            *(
                decided[e.event_id]
                if e.event_id in decided
                else (stored[e.event_id].actions, stored[e.event_id].retry_after)
            ),
        )
        for e in events
    ]
    return results, len(new), len(events) - len(new)


def _result(event_id: str, actions: list[str], retry_after: int | None) -> dict:
    result = {"event_id": event_id, "actions": list(actions)}
    if retry_after is not None:
        result["retry_after"] = retry_after
    return result


def _refuse_conflicts(events: list[EventIn], stored: dict[str, _Stored]) -> None:
    conflicts = [
        i for i, e in enumerate(events) if e.event_id in stored and stored[e.event_id].fingerprint != e.fingerprint
    ]
    if conflicts:
        raise EventConflict(
            f"{len(conflicts)} event(s) were already received with different content; nothing was stored.",
            details=[
                {"index": i, "field": "event_id", "message": "already received with different content"}
                for i in conflicts
            ],
        )


def _refuse_unknown_customers(events: list[EventIn], views: dict[str, _CustomerView]) -> None:
    unknown = [i for i, e in enumerate(events) if e.customer_id and e.customer_id not in views]
    if unknown:
        raise InvalidInput(
            "Events for unknown customers; nothing was stored.",
            details=[{"index": i, "field": "customer_id", "message": "unknown customer"} for i in unknown],
        )


# Everything the decisions need, in one round trip: this endpoint answers every login of the exchange.
# The last arm is accounts.geoip's range lookup for the IPs of logins, as numbers (geoip.ip_number).
# Prepared once per connection: planning this statement costs about as much as running it.
_READ_STATE_SQL = """
SELECT 'event', json_build_object('id', event_id, 'fingerprint', fingerprint, 'actions', actions,
                                  'retry_after', retry_after)
  FROM accounts_securityevent WHERE event_id = ANY(%(event_ids)s::text[])
UNION ALL
SELECT 'customer', json_build_object(
    'id', c.id, 'external_id', c.external_id,
    'locked', EXISTS (SELECT 1 FROM accounts_customerlock l WHERE l.customer_id = c.id AND l.unlocked_at IS NULL),
    'ips', (SELECT coalesce(json_agg(json_build_object('ip', host(k.ip), 'country', k.country,
                                     'first', k.first_seen_at, 'last', k.last_seen_at, 'logins', k.logins)), '[]')
            FROM accounts_knownip k WHERE k.customer_id = c.id),
    'devices', (SELECT coalesce(json_agg(d.device_id), '[]') FROM accounts_knowndevice d WHERE d.customer_id = c.id))
  FROM accounts_customer c WHERE c.external_id = ANY(%(customer_ids)s::text[])
UNION ALL
SELECT 'suspicious', json_build_object('kind', kind, 'value', value, 'status', status, 'expires_at', expires_at)
  FROM accounts_suspiciousentry
 WHERE removed_at IS NULL AND (expires_at IS NULL OR expires_at > %(now)s)
   AND ((kind = 'IP' AND value = ANY(%(ips)s::text[])) OR (kind = 'DEVICE' AND value = ANY(%(devices)s::text[])))
UNION ALL
SELECT 'country', json_build_object('ip', q.ip, 'country', r.country)
  FROM unnest(%(login_ips)s::text[], %(login_ip_numbers)s::numeric[]) AS q(ip, n)
  JOIN LATERAL (SELECT g.last, g.country FROM accounts_ipcountryrange g WHERE g.first <= q.n
                 ORDER BY g.first DESC LIMIT 1) r ON r.last >= q.n
"""
_READ_STATE = Prepared(
    "accounts_security_read_state",
    _READ_STATE_SQL,
    {
        "event_ids": "text[]",
        "now": "timestamptz",
        "customer_ids": "text[]",
        "ips": "text[]",
        "devices": "text[]",
        "login_ips": "text[]",
        "login_ip_numbers": "numeric[]",
    },
)


def _read_state(events: list[EventIn], *, now: datetime):
    login_ips = sorted({e.ip for e in events if e.customer_id and e.type in rules.LOGIN_TYPES})
    params = {
        "event_ids": [e.event_id for e in events],
        "now": now,
        "customer_ids": sorted({e.customer_id for e in events if e.customer_id}),
        "ips": sorted({e.ip for e in events}),
        "devices": sorted({e.device_id for e in events}),
        "login_ips": login_ips,
        "login_ip_numbers": [geoip.ip_number(ip) for ip in login_ips],
    }
    stored, views, entries = {}, {}, {}
    countries = dict.fromkeys(login_ips, "")  # IPs in no range are of unknown country
    with connection.cursor() as cursor:
        _READ_STATE.execute(cursor, params)
        for kind, row in cursor.fetchall():
            if kind == "event":
                stored[row["id"]] = _Stored(row["fingerprint"], row["actions"], row["retry_after"])
            elif kind == "customer":
                views[row["external_id"]] = _CustomerView(
                    row["id"],
                    row["external_id"],
                    row["locked"],
                    {
                        r["ip"]: _KnownIp(r["country"], _time(r["first"]), _time(r["last"]), r["logins"])
                        for r in row["ips"]
                    },
                    set(row["devices"]),
                )
            elif kind == "suspicious":
                entries[(row["kind"], row["value"])] = _Suspicious(
                    row["status"], row["expires_at"] and _time(row["expires_at"])
                )
            else:
                countries[row["ip"]] = row["country"]
    return stored, views, entries, countries


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _limits(now: datetime) -> rules.SecurityLimits:
    return rules.SecurityLimits(
        failed_logins_per_customer=param("security.failed_logins_per_customer", at=now),
        failed_login_customers_per_ip=param("security.failed_login_customers_per_ip", at=now),
        registration_cap_per_ip=param("security.registration_cap_per_ip_per_day", at=now),
        registration_cap_per_cookie=param("security.registration_cap_per_cookie_per_day", at=now),
        account_checks_per_second=param("security.account_checks_per_second_per_cookie", at=now),
        cookie_block_seconds=param("security.cookie_block_seconds", at=now),
    )


def _decide(event: EventIn, views, entries, countries, limits) -> tuple[list[str], int | None]:
    view = views.get(event.customer_id) if event.customer_id else None
    facts = _facts(event, view, entries, countries)
    decision = rules.decide_security_event(facts, limits)
    if decision.block_cookie and event.cookie_id:
        _quietly(counters.block_cookie, cookie_id=event.cookie_id, at=event.at, seconds=limits.cookie_block_seconds)
    if view is not None:
        _remember(event, view, decision)
    return decision.actions, decision.retry_after


def _facts(event: EventIn, view: _CustomerView | None, entries, countries: dict[str, str]) -> rules.EventFacts:
    ip_entry = entries.get((SuspiciousEntry.Kind.IP, event.ip))
    device_entry = entries.get((SuspiciousEntry.Kind.DEVICE, event.device_id))
    base = {
        "type": event.type,
        "ip_status": ip_entry.status if ip_entry else "",
        "device_status": device_entry.status if device_entry else "",
        "ban_seconds_left": _ban_left(event.at, ip_entry, device_entry),
    }
    try:
        return rules.EventFacts(**base, **_customer_facts(event, view, countries), **_counter_facts(event, view))
    except (redis.ConnectionError, redis.TimeoutError):
        logger.warning("security events: Redis unavailable; deciding without rate counters")
        return rules.EventFacts(**base, **_customer_facts(event, view, countries), counters_unavailable=True)


def _ban_left(at: datetime, *entries) -> int:
    banned = [e for e in entries if e is not None and e.status == SuspiciousEntry.Status.BANNED]
    if not banned:
        return 0
    if any(e.expires_at is None for e in banned):
        return PERMANENT_BAN_RETRY_SECONDS
    return max(int((e.expires_at - at).total_seconds()) for e in banned)


def _customer_facts(event: EventIn, view: _CustomerView | None, countries: dict[str, str]) -> dict:
    if view is None:
        return {}
    window_start = event.at - timedelta(days=param("security.unusual_ip_window_days", at=event.at))
    recent = [k for k in view.ips.values() if k.last_seen_at >= window_start]
    usual = Counter()
    for known in recent:
        if known.country:
            usual[known.country] += known.logins
    seen = view.ips.get(event.ip)
    return {
        "customer_locked": view.locked,
        "has_login_history": bool(view.ips),
        "ip_seen_in_window": seen is not None and seen.last_seen_at >= window_start,
        "ip_country": countries[event.ip] if event.type in rules.LOGIN_TYPES else "",
        "usual_country": usual.most_common(1)[0][0] if usual else "",
        "device_known": event.device_id in view.devices,
    }


def _counter_facts(event: EventIn, view: _CustomerView | None) -> dict:
    if event.type == "login_failed" and view is not None:
        window = timedelta(minutes=param("security.failed_login_window_minutes", at=event.at))
        by_customer, by_ip = counters.failed_login(
            customer_id=view.customer_id, ip=event.ip, event_id=event.event_id, at=event.at, window=window
        )
        return {"failed_logins_for_customer": by_customer, "failed_customers_for_ip": by_ip}
    if event.type == "registration_attempt":
        ip_n, device_n, cookie_n, left = counters.registration(
            ip=event.ip, device_id=event.device_id, cookie_id=event.cookie_id, at=event.at
        )
        return {
            "registrations_for_ip": ip_n,
            "registrations_for_device": device_n,
            "registrations_for_cookie": cookie_n,
            "seconds_to_window_end": left,
        }
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
        known = view.ips.get(event.ip) or _KnownIp("", event.at, event.at, 0)
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


# One statement stores the events and what they teach about known IPs and devices. Sent in autocommit
# with SET LOCAL, the two run as one implicit transaction in a single round trip.
_WRITE_SQL = """
WITH new_events AS (
    INSERT INTO accounts_securityevent (event_id, customer_id, type, ip, device_id, cookie_id, at, received_at,
                                        actions, retry_after, fingerprint)
    SELECT x.event_id, x.customer_id, x.type, x.ip::inet, x.device_id, x.cookie_id, x.at, %(now)s,
           x.actions, x.retry_after, x.fingerprint
      FROM jsonb_to_recordset(%(events)s::jsonb) AS x(event_id text, customer_id bigint, type text, ip text,
           device_id text, cookie_id text, at timestamptz, actions jsonb, retry_after int, fingerprint text)
    ON CONFLICT (event_id) DO NOTHING RETURNING 1
), ips AS (
    INSERT INTO accounts_knownip AS t (customer_id, ip, country, first_seen_at, last_seen_at, logins)
    SELECT x.customer_id, x.ip::inet, x.country, x.first, x.last, x.logins
      FROM jsonb_to_recordset(%(ips)s::jsonb) AS x(customer_id bigint, ip text, country text, first timestamptz,
           last timestamptz, logins int)
    ON CONFLICT (customer_id, ip) DO UPDATE SET
        first_seen_at = LEAST(t.first_seen_at, EXCLUDED.first_seen_at),
        last_seen_at = GREATEST(t.last_seen_at, EXCLUDED.last_seen_at),
        logins = t.logins + EXCLUDED.logins
    RETURNING 1
), devices AS (
    INSERT INTO accounts_knowndevice AS t (customer_id, device_id, first_seen_at, last_seen_at)
    SELECT x.customer_id, x.device_id, x.first, x.last
      FROM jsonb_to_recordset(%(devices)s::jsonb) AS x(customer_id bigint, device_id text, first timestamptz,
           last timestamptz)
    ON CONFLICT (customer_id, device_id) DO UPDATE SET
        first_seen_at = LEAST(t.first_seen_at, EXCLUDED.first_seen_at),
        last_seen_at = GREATEST(t.last_seen_at, EXCLUDED.last_seen_at)
    RETURNING 1
)
SELECT (SELECT count(*) FROM new_events), (SELECT count(*) FROM ips), (SELECT count(*) FROM devices)
"""
_WRITE = Prepared(
    "accounts_security_write", _WRITE_SQL, {"now": "timestamptz", "events": "text", "ips": "text", "devices": "text"}
)
# Only observations (events, known IPs and devices): commit without waiting for the disk flush. A
# database crash may lose the last moments of them; locks and password changes, which are decisions,
# always commit durably in their own transaction.
_ASYNC_COMMIT = "SET LOCAL synchronous_commit TO OFF;"


def _store(
    events: list[EventIn],
    decided: dict,
    views: dict[str, _CustomerView],
    countries: dict[str, str],
    *,
    actor: audit.Actor,
    now: datetime,
) -> None:
    params = {"now": now, **_rows(events, decided, views, countries)}
    decisions = any(v.lock_now for v in views.values()) or any(e.type == "password_change" for e in events)
    if not decisions:
        with connection.cursor() as cursor:
            _WRITE.execute(cursor, params, before=_ASYNC_COMMIT)
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            _WRITE.execute(cursor, params)
        _record_password_changes(events, views, actor=actor, now=now)
        for view in views.values():
            for rule in view.lock_now:
                _lock(Customer.objects.get(pk=view.customer_id), rule, actor=actor, now=now)


def _rows(events: list[EventIn], decided: dict, views: dict[str, _CustomerView], countries: dict[str, str]) -> dict:
    ids = {ext: v.customer_id for ext, v in views.items()}
    event_rows, ips, devices = [], {}, {}
    for e in events:
        customer = ids.get(e.customer_id)
        actions, retry = decided[e.event_id]
        event_rows.append(
            {
                "event_id": e.event_id,
                "customer_id": customer,
                "type": e.type,
                "ip": e.ip,
                "device_id": e.device_id,
                "cookie_id": e.cookie_id,
                "at": e.at.isoformat(),
                "actions": actions,
                "retry_after": retry,
                "fingerprint": e.fingerprint,
            }
        )
        if customer is None:
            continue
        if e.type in rules.LOGIN_TYPES:
            first, last, n = ips.get((customer, e.ip), (e.at, e.at, 0))
            ips[(customer, e.ip)] = (min(first, e.at), max(last, e.at), n + 1)
        if e.type in ("login", "password_change", "device_added"):
            first, last = devices.get((customer, e.device_id), (e.at, e.at))
            devices[(customer, e.device_id)] = (min(first, e.at), max(last, e.at))
    return {
        "events": orjson.dumps(event_rows).decode(),
        "ips": orjson.dumps(
            [
                {
                    "customer_id": c,
                    "ip": ip,
                    "country": countries[ip],
                    "first": a.isoformat(),
                    "last": b.isoformat(),
                    "logins": n,
                }
                for (c, ip), (a, b, n) in ips.items()
            ]
        ).decode(),
        "devices": orjson.dumps(
            [
                {"customer_id": c, "device_id": d, "first": a.isoformat(), "last": b.isoformat()}
                for (c, d), (a, b) in devices.items()
            ]
        ).decode(),
    }


def _record_password_changes(events, views: dict[str, _CustomerView], *, actor: audit.Actor, now: datetime) -> None:
    latest: dict[str, datetime] = {}
    for e in events:
        if e.type == "password_change":
            latest[e.customer_id] = max(latest.get(e.customer_id, e.at), e.at)
    for external_id, at in latest.items():
        customer = Customer.objects.select_for_update(no_key=True).get(pk=views[external_id].customer_id)
        if customer.password_changed_at and customer.password_changed_at >= at:
            continue
        before = {
            "password_changed_at": customer.password_changed_at,
            "must_change_password": customer.must_change_password,
        }
        customer.password_changed_at, customer.must_change_password = at, False
        customer.save(update_fields=["password_changed_at", "must_change_password"])
        audit.record(
            actor=actor,
            action="customer.password_change",
            target=customer,
            now=now,
            before=before,
            after={"password_changed_at": at, "must_change_password": False},
        )


def _lock(customer: Customer, rule: str, *, actor: audit.Actor, now: datetime) -> None:
    reason = {
        "account_takeover": "repeated failed logins against this customer (suspected account takeover)",
        "credential_stuffing": "one IP failing against many customers (suspected credential stuffing)",
    }.get(rule, rule)
    lock = locks.lock_customer(customer=customer, rule=rule, reason=reason, actor=actor, now=now)
    trading_risk.open_alert(
        rule=rule,
        severity="MAJOR",
        customer=customer,
        summary=f"Customer locked: {reason}",
        dedup_key=f"{rule}:lock:{lock.pk}",
        actor=actor,
        now=now,
        details={"lock": lock.pk},
    )
