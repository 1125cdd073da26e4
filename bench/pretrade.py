"""Pre-trade checks at a steady 500 requests per second over HTTP: latency percentiles.

Requests are sent open-loop (bench.harness.open_loop: on a fixed schedule, whatever the answers' speed)
over keep-alive connections, for a mix of orders: plain, reduce-only, on a freshly listed symbol inside
its price band (so the index price is read), and from restricted accounts. Latency is measured from each
request's scheduled start, so a server falling behind shows up in the figures instead of slowing the
schedule down. The client shares the machine's cores with gunicorn and PostgreSQL, so a closed-loop run
(one request at a time) is reported too: it shows the cost of one check without queueing.

Run alone: `python -m bench.pretrade [--quick]`.
"""

import sys
from datetime import timedelta

import orjson

from bench.harness import Context, Result, http_request, measured, open_loop, percentile, scenario, timed

NAME = "pretrade"
RATE = 500
ACCOUNTS = 1_000
CONNECTIONS = 16  # keep-alive connections the engine keeps open


@scenario(NAME, "POST /pre-trade-checks/ at 500 requests/s: p50/p99 latency, restrictions and price band included")
def pretrade(ctx: Context) -> list[Result]:
    seconds = 5 if ctx.quick else 20
    token = _setup(ctx.run_tag)
    bodies = [_order(ctx.run_tag, n) for n in range(RATE * seconds)]
    requests = [http_request(ctx.base_url, "POST", "/api/v1/pre-trade-checks/", token, body) for body in bodies]
    # Unmeasured warm-up: every worker thread opens its database connection and fills its caches.
    open_loop(ctx.base_url, requests[:RATE], rate=RATE, connections=CONNECTIONS)
    run = open_loop(ctx.base_url, requests, rate=RATE, connections=CONNECTIONS, keep_bodies=True)
    if run.errors:
        raise SystemExit(f"{sum(run.errors.values())} pre-trade checks failed: {run.errors}")
    refused = sum(not orjson.loads(body)["allowed"] for body in run.bodies)
    with ctx.http(token) as http:
        alone = _one_at_a_time(http, bodies[: RATE * 2])
    return [
        measured(NAME, "one at a time p50", 1000 * percentile(alone, 50), "ms"),
        measured(NAME, "one at a time p99", 1000 * percentile(alone, 99), "ms", at_most=20),
        measured(NAME, "one at a time rate", len(alone) / sum(alone), "requests/s"),
        measured(NAME, "rate achieved", len(run.latencies) / run.seconds, "requests/s"),
        measured(NAME, "p50", 1000 * percentile(run.latencies, 50), "ms"),
        measured(NAME, "p99", 1000 * percentile(run.latencies, 99), "ms", at_most=20),
        measured(NAME, "refused share", refused / len(run.latencies), "ratio"),
    ]


def _one_at_a_time(http, bodies: list[bytes]) -> list[float]:
    """Latency with no queueing: the server's own cost per check (plus one client's)."""
    headers = {"Content-Type": "application/json"}
    return [
        timed(lambda b=body: http.post("/api/v1/pre-trade-checks/", content=b, headers=headers))[1] for body in bodies
    ]


def _setup(run_tag: str) -> str:
    from django.utils import timezone

    from accounts import restrictions
    from accounts.models import Account, Customer
    from backoffice import api_clients, audit
    from trading_risk.models import Instrument, InstrumentPrice

    now = timezone.now()
    customers = Customer.objects.bulk_create(
        [
            Customer(
                external_id=f"{run_tag}-PC{n}",
                type="INDIVIDUAL",
                name=f"Bench {n}",
                country="DE",
                email=f"p{n}@example.com",
                phone=f"+49 30 {n}",
                created_at=now,
                updated_at=now,
            )
            for n in range(ACCOUNTS)
        ]
    )
    Account.objects.bulk_create(
        [
            Account(
                external_id=f"{run_tag}-PA{n}", customer=customers[n], kind="FUTURES", created_at=now, updated_at=now
            )
            for n in range(ACCOUNTS)
        ]
    )
    actor = audit.Actor.system("bench")
    for customer in customers[::10]:  # every tenth customer may only reduce
        restrictions.add_restriction(customer=customer, code="restricted_open", rule="bench", actor=actor, now=now)
    for symbol, listed in (
        (f"B{run_tag[-6:].upper()}OLD", now - timedelta(days=30)),
        (f"B{run_tag[-6:].upper()}NEW", now - timedelta(minutes=1)),
    ):
        instrument = Instrument.objects.create(
            symbol=symbol, kind="PERPETUAL", base="BTC", quote="USDT", listed_at=listed, created_at=now, updated_at=now
        )
        InstrumentPrice.objects.create(
            instrument=instrument, at=now, index_price=100_000, mark_price=100_000, received_at=now
        )
    _, token = api_clients.create_api_client(
        name=f"bench-{run_tag}-pretrade", scopes=["decisions"], actor=actor, now=now
    )
    return token


def _order(run_tag: str, n: int) -> bytes:
    symbol = f"B{run_tag[-6:].upper()}{'NEW' if n % 2 else 'OLD'}"
    price = ("99000", "100000", "106000")[n % 3]
    return orjson.dumps(
        {
            "account_id": f"{run_tag}-PA{(n * 7) % ACCOUNTS}",
            "symbol": symbol,
            "side": "buy" if n % 2 else "sell",
            "qty": "0.5",
            "price": price,
            "reduce_only": n % 5 == 0,
        }
    )


if __name__ == "__main__":
    from bench.__main__ import main

    sys.exit(main(["--scenario", NAME, *sys.argv[1:]]))
