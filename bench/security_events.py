"""Security events at a constant rate: one event per request, as the engine sends them when people log in.

The load is open-loop (bench.harness.open_loop): requests are sent on a fixed schedule whatever the
server's speed, and each latency is measured from the moment the request was due, so a slow server cannot
hide its queueing ("coordinated omission"). The mix is mostly logins, with failed logins, registrations
and checks.
"""

from datetime import UTC, datetime, timedelta

import orjson

from bench.harness import Context, Result, http_request, measured, open_loop, percentile, scenario

NAME = "security_events"
RATE = 500  # requests per second
CUSTOMERS = 2000
IN_FLIGHT = 32  # connections the engine keeps open
TAKEOVER_EVERY = 200  # one failed login against the attacked customer of each 1,000 events, in every 200


@scenario(NAME, f"POST /security-events/ one event per request at {RATE}/s for the p99 decision latency")
def security_events(ctx: Context) -> list[Result]:
    seconds = 3 if ctx.quick else 15
    token = _setup(ctx.run_tag)
    # Unmeasured warm-up: every worker thread opens its database connection and fills its caches.
    open_loop(
        ctx.base_url, _requests(ctx, token, total=RATE, tag=f"{ctx.run_tag}-warm"), rate=RATE, connections=IN_FLIGHT
    )
    run = open_loop(ctx.base_url, _requests(ctx, token, total=RATE * seconds), rate=RATE, connections=IN_FLIGHT)
    return [
        measured(NAME, "offered rate", RATE, "requests/s"),
        measured(NAME, "answered", len(run.latencies) / run.seconds, "requests/s", at_least=RATE * 0.98),
        measured(NAME, "errors", sum(run.errors.values()), "requests", at_most=0),
        measured(NAME, "decision p50", 1000 * percentile(run.latencies, 50), "ms"),
        measured(NAME, "decision p99", 1000 * percentile(run.latencies, 99), "ms", at_most=20),
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
    """Event n of the mix: 70 % logins, 15 % failed logins, 10 % registrations, 5 % account checks, the
    customer drawn independently of the type (each customer sees ~4 events of a run, of any type) — and
    an account takeover: five failed logins against one customer per 1,000 events, so a lock (with its
    restriction, alert, notifications and operations-log entries) every two seconds."""
    kind = n % 20
    customer = f"sec-{run_tag}-{(n // 20 * 7919 + kind * 389) % CUSTOMERS}"
    base = {
        "event_id": f"sec-{tag or run_tag}-E{n}",
        "ip": f"10.{n % 250}.{n // 250 % 250}.{n % 7}",
        "device_id": f"dev-{n % 3000}",
        "at": at.isoformat(),
    }
    if n % TAKEOVER_EVERY == 7:
        return {**base, "type": "login_failed", "customer_id": f"sec-{run_tag}-{n // 1000 % CUSTOMERS}"}
    if kind < 14:
        return {**base, "type": "login", "customer_id": customer}
    if kind < 17:
        return {**base, "type": "login_failed", "customer_id": customer}
    if kind < 19:
        return {**base, "type": "registration_attempt", "cookie_id": f"ck-{n % 5000}"}
    return {**base, "type": "account_check", "cookie_id": f"ck-{n % 5000}"}


def _requests(ctx: Context, token: str, *, total: int, tag: str = "") -> list[bytes]:
    """The requests of a run, encoded before the clock starts: one event each, a millisecond apart."""
    start_at = datetime.now(UTC) - timedelta(hours=1)
    return [
        http_request(
            ctx.base_url,
            "POST",
            "/api/v1/security-events/",
            token,
            orjson.dumps([_event(ctx.run_tag, n, start_at + timedelta(milliseconds=n), tag)]),
        )
        for n in range(total)
    ]
