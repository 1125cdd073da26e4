"""Demo: a fortnight of logins and security events, with planted cases for every account-security rule.

Planted: customers locked by failed-login bursts (account takeover) and by a credential-stuffing IP,
logins from another country and from new devices, password changes, staff restrictions (one expiring),
suspicious IPs and devices at each level, and a locked customer whose unlock waits for approval.
"""

import random
from datetime import datetime, timedelta

from accounts import geoip, locks, restrictions, security, suspicious
from accounts.models import Customer, SecurityEvent, User
from backoffice import audit, demo

ACTOR = audit.Actor.system("load_demo")
# Demo-only geolocation: private 10.<n>.0.0/16 blocks stand for countries, so country anomalies show.
DEMO_COUNTRIES = ("DE", "FR", "GB", "SG", "BR", "TR", "US", "NG", "JP", "AE")
ACTIVE_CUSTOMERS = 400


@demo.section("account_security")
def build_account_security(rng: random.Random, now: datetime, options: demo.DemoOptions) -> str:
    if SecurityEvent.objects.exists():
        return "already there (security events exist)"
    geoip.replace_ranges(
        ranges=geoip.parse_rows(f"10.{n}.0.0/16,{c}" for n, c in enumerate(DEMO_COUNTRIES)),
        source="demo",
        actor=ACTOR,
        now=now,
    )
    customers = list(Customer.objects.order_by("pk")[:ACTIVE_CUSTOMERS])
    if len(customers) < 20:
        return "skipped (needs at least 20 customers)"
    events = _history(rng, customers, now)
    for start in range(0, len(events), 2000):
        security.ingest_security_events(events=events[start : start + 2000], actor=ACTOR, now=now)
    planted = _plant_cases(rng, customers, now)
    return f"{len(events)} security events for {len(customers)} customers; planted: {', '.join(planted)}"


def _history(rng: random.Random, customers: list[Customer], now: datetime) -> list[security.EventIn]:
    events = []
    start = now - timedelta(days=14)
    for customer in customers:
        home = DEMO_COUNTRIES.index(customer.country) if customer.country in DEMO_COUNTRIES else rng.randrange(10)
        ip, device = f"10.{home}.{rng.randrange(256)}.{rng.randrange(1, 255)}", f"dev-{customer.pk}-a"
        for day in sorted(rng.sample(range(14), k=rng.randint(2, 8))):
            at = start + timedelta(days=day, seconds=rng.randrange(86400))
            events.append(_event(customer, "login", ip, device, at))
        if rng.random() < 0.08:  # travelling, or somebody else
            away = f"10.{(home + 3) % 10}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            events.append(
                _event(customer, "login", away, f"dev-{customer.pk}-b", now - timedelta(hours=rng.randint(1, 48)))
            )
        if rng.random() < 0.05:
            events.append(_event(customer, "password_change", ip, device, now - timedelta(hours=rng.randint(1, 20))))
    return sorted(events, key=lambda e: e.at)


_serial = iter(range(1, 10**9))


def _event(
    customer: Customer | None, type_: str, ip: str, device: str, at: datetime, cookie: str = ""
) -> security.EventIn:
    return security.EventIn(
        event_id=f"demo-{at.timestamp():.6f}-{next(_serial)}",
        type=type_,
        ip=ip,
        device_id=device,
        at=at,
        customer_id=customer.external_id if customer else None,
        cookie_id=cookie,
    )


def _plant_cases(rng: random.Random, customers: list[Customer], now: datetime) -> list[str]:
    takeover = customers[5:7]
    for n, customer in enumerate(takeover):
        burst = [
            _event(customer, "login_failed", f"10.9.66.{n + 1}", "dev-x", now - timedelta(minutes=30 - i))
            for i in range(6)
        ]
        security.ingest_security_events(events=burst, actor=ACTOR, now=now)
    stuffing = [
        _event(c, "login_failed", "10.7.13.37", f"bot-{i}", now - timedelta(minutes=10, seconds=-i))
        for i, c in enumerate(customers[20:31])
    ]
    security.ingest_security_events(events=stuffing, actor=ACTOR, now=now)
    bots = [
        _event(None, "registration_attempt", "10.3.3.3", f"hw-{i}", now - timedelta(minutes=5), cookie=f"ck-{i % 7}")
        for i in range(105)
    ]
    security.ingest_security_events(events=bots, actor=ACTOR, now=now)
    _restrictions(customers, now)
    _suspicious(now)
    _pending_unlock(customers[12], now)
    return [
        "2 takeover locks",
        "1 credential-stuffing lock",
        "a registration flood",
        "staff restrictions",
        "suspicious list",
        "a pending unlock",
    ]


def _restrictions(customers: list[Customer], now: datetime) -> None:
    officer = _officer()
    restrictions.add_restriction(
        customer=customers[40],
        code="restricted_open",
        rule="staff",
        actor=officer,
        now=now,
        reason="unusual order pattern while reviewed",
        until=now + timedelta(hours=6),
    )
    restrictions.add_restriction(
        customer=customers[41],
        code="trading_banned",
        rule="staff",
        actor=officer,
        now=now,
        reason="court order pending confirmation",
    )
    account = customers[42].accounts.first()
    if account is not None:
        restrictions.add_restriction(
            customer=customers[42],
            account=account,
            code="restricted_open_close",
            rule="staff",
            actor=officer,
            now=now,
            reason="disputed deposit",
            until=now + timedelta(days=2),
        )


def _suspicious(now: datetime) -> None:
    officer = _officer()
    suspicious.mark_suspicious(
        kind="IP",
        value="10.7.13.37",
        status="BANNED",
        actor=officer,
        now=now,
        reason="credential stuffing against 11 customers",
        expires_at=now + timedelta(days=30),
    )
    suspicious.mark_suspicious(
        kind="IP", value="10.3.3.3", status="LIMITED", actor=officer, now=now, reason="registration flood"
    )
    suspicious.mark_suspicious(
        kind="DEVICE", value="dev-x", status="FLAGGED", actor=officer, now=now, reason="seen in two takeover attempts"
    )


def _pending_unlock(customer: Customer, now: datetime) -> None:
    officer = _officer()
    lock = locks.lock_customer(
        customer=customer,
        rule="staff",
        actor=officer,
        now=now,
        reason="customer reported a phishing e-mail and lost their phone",
    )
    for kind in locks.required_verifications(customer, now=now):
        lock = locks.record_unlock_verification(
            lock=lock, kind=kind, actor=officer, now=now, note="confirmed by video call"
        )
    locks.request_unlock(lock=lock, actor=officer, reason="identity confirmed on a video call", now=now)


def _officer() -> audit.Actor:
    user = User.objects.filter(username="risk").first()
    return audit.Actor.staff(user) if user else ACTOR
