"""Security events at a constant rate: one event per request, as the engine sends them when people log in.

The load is open-loop: requests are sent on a fixed schedule whatever the server's speed, and each
latency is measured from the moment the request was due, so a slow server cannot hide its queueing
("coordinated omission"). The mix is mostly logins, with failed logins, registrations and checks.
"""

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import orjson

from bench.harness import Context, Result, measured, percentile, scenario

NAME = "security_events"
RATE = 500  # requests per second
CUSTOMERS = 2000
IN_FLIGHT = 32  # connections the engine keeps open


@scenario(NAME, f"POST /security-events/ one event per request at {RATE}/s for the p99 decision latency")
def security_events(ctx: Context) -> list[Result]:
    seconds = 3 if ctx.quick else 15
    token = _setup(ctx.run_tag)
    started = time.perf_counter()
    latencies, errors = asyncio.run(_drive(ctx, token, total=RATE * seconds))
    achieved = len(latencies) / (time.perf_counter() - started)
    return [
        measured(NAME, "offered rate", RATE, "requests/s"),
        measured(NAME, "answered", achieved, "requests/s", at_least=RATE * 0.98),
        measured(NAME, "errors", errors, "requests", at_most=0),
        measured(NAME, "decision p50", 1000 * percentile(latencies, 50), "ms"),
        measured(NAME, "decision p99", 1000 * percentile(latencies, 99), "ms", at_most=20),
    ]


def _setup(run_tag: str) -> str:
    from django.utils import timezone

    from accounts.models import Account, Customer
    from backoffice import api_clients, audit

    now = timezone.now()
    customers = Customer.objects.bulk_create(
        [
            Customer(
                external_id=f"sec-{run_tag}-{n}",
                type="INDIVIDUAL",
                name=f"Person {n}",
                country="DE",
                email=f"p{n}@example.com",
                phone="+49 30 1234567",
                created_at=now,
                updated_at=now,
            )
            for n in range(CUSTOMERS)
        ]
    )
    Account.objects.bulk_create(
        [
            Account(external_id=f"sec-{run_tag}-A{c.pk}", customer=c, kind="SPOT", created_at=now, updated_at=now)
            for c in customers
        ]
    )
    _, token = api_clients.create_api_client(
        name=f"bench-sec-{run_tag}", scopes=["events"], actor=audit.Actor.system("bench"), now=now
    )
    return token


def _event(run_tag: str, n: int, at: datetime) -> dict:
    customer = f"sec-{run_tag}-{n * 7919 % CUSTOMERS}"
    kind = n % 20
    base = {
        "event_id": f"sec-{run_tag}-E{n}",
        "ip": f"10.{n % 250}.{n // 250 % 250}.{n % 7}",
        "device_id": f"dev-{n % 3000}",
        "at": at.isoformat(),
    }
    if kind < 14:
        return {**base, "type": "login", "customer_id": customer}
    if kind < 17:
        return {**base, "type": "login_failed", "customer_id": customer}
    if kind < 19:
        return {**base, "type": "registration_attempt", "cookie_id": f"ck-{n % 5000}"}
    return {**base, "type": "account_check", "cookie_id": f"ck-{n % 5000}"}


async def _drive(ctx: Context, token: str, *, total: int) -> tuple[list[float], int]:
    start_at = datetime.now(UTC) - timedelta(hours=1)
    bodies = [orjson.dumps([_event(ctx.run_tag, n, start_at + timedelta(milliseconds=n))]) for n in range(total)]
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    in_flight = asyncio.Semaphore(IN_FLIGHT)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    timeout = httpx.Timeout(30, pool=None)  # waiting for a connection is part of the measured latency
    async with httpx.AsyncClient(base_url=ctx.base_url, headers=headers, limits=limits, timeout=timeout) as client:
        began = time.perf_counter()

        async def one(n: int) -> None:
            nonlocal errors
            due = began + n / RATE
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            async with in_flight:
                try:
                    response = await client.post("/api/v1/security-events/", content=bodies[n])
                except httpx.TransportError:
                    errors += 1
                    return
            if response.status_code != 200:
                errors += 1
                return
            latencies.append(time.perf_counter() - due)

        await asyncio.gather(*(one(n) for n in range(total)))
    return latencies, errors
