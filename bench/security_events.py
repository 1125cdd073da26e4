"""Security events at a constant rate: one event per request, as the engine sends them when people log in.

The load is open-loop: requests are sent on a fixed schedule whatever the server's speed, and each
latency is measured from the moment the request was due, so a slow server cannot hide its queueing
("coordinated omission"). The mix is mostly logins, with failed logins, registrations and checks.
"""

import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta

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
    # Unmeasured warm-up: every worker thread opens its database connection and fills its caches.
    asyncio.run(_drive(ctx, token, total=RATE, tag=f"{ctx.run_tag}-warm"))
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


def _event(run_tag: str, n: int, at: datetime, tag: str = "") -> dict:
    customer = f"sec-{run_tag}-{n * 7919 % CUSTOMERS}"
    kind = n % 20
    base = {
        "event_id": f"sec-{tag or run_tag}-E{n}",
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


async def _drive(ctx: Context, token: str, *, total: int, tag: str = "") -> tuple[list[float], int]:
    """Send `total` requests at RATE per second over IN_FLIGHT keep-alive connections; latency counts from
    the moment each request was due, so time spent waiting for a free connection is included."""
    start_at = datetime.now(UTC) - timedelta(hours=1)
    host, port = ctx.base_url.removeprefix("http://").split(":")
    requests = [
        _request(host, token, orjson.dumps([_event(ctx.run_tag, n, start_at + timedelta(milliseconds=n), tag)]))
        for n in range(total)
    ]
    queue: asyncio.Queue = asyncio.Queue()
    latencies: list[float] = []
    errors = 0
    began = time.perf_counter()

    async def schedule() -> None:
        for n, request in enumerate(requests):
            await asyncio.sleep(max(0.0, began + n / RATE - time.perf_counter()))
            queue.put_nowait((began + n / RATE, request))
        for _ in range(IN_FLIGHT):
            queue.put_nowait(None)

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        while (item := await queue.get()) is not None:
            due, request = item
            writer.write(request)
            status = await _read_response(reader)
            if status == 200:
                latencies.append(time.perf_counter() - due)
            else:
                errors += 1
                if errors == 1:
                    print(f"security_events: first error answered {status}", file=sys.stderr)
        writer.close()

    await asyncio.gather(schedule(), *(connection() for _ in range(IN_FLIGHT)))
    return latencies, errors


def _request(host: str, token: str, body: bytes) -> bytes:
    head = (
        f"POST /api/v1/security-events/ HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    await reader.readexactly(length)
    return int(lines[0].split()[1])
