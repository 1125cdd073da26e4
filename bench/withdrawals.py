"""Withdrawal decisions: the full decision path (validation, pricing, screening, limits, rules, audit entry)
called in-process, one request after another, for the per-decision latency. A mix of small approved,
reviewed, held and travel-rule withdrawals over many customers with some history.
"""

import time
from datetime import timedelta
from decimal import Decimal

from bench.harness import Context, Result, measured, percentile, scenario

NAME = "withdrawal_decisions"
CUSTOMERS = 500
ADDRESS = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
AMOUNTS = ["0.01", "0.015", "3", "0.4", "1200", "0.019"]  # approved, approved, review, review, held, approved


@scenario(NAME, "withdrawal decisions in-process, sequentially, for the p99 decision latency")
def withdrawal_decisions(ctx: Context) -> list[Result]:
    total = 300 if ctx.quick else 3000
    accounts, now = _setup(ctx.run_tag)
    latencies, statuses = _drive(accounts, now, total=total, tag=ctx.run_tag)
    return [
        measured(NAME, "decisions", total, "requests"),
        measured(NAME, "approved automatically", statuses.get("APPROVED", 0), "requests"),
        measured(NAME, "decision p50", 1000 * percentile(latencies, 50), "ms"),
        measured(NAME, "decision p99", 1000 * percentile(latencies, 99), "ms", at_most=100),
    ]


def _setup(run_tag: str):
    from django.utils import timezone

    from accounts.models import Account, Customer
    from backoffice import health
    from backoffice.audit import Actor
    from trading_risk import services as trading_services

    now = timezone.now()
    customers = Customer.objects.bulk_create(
        [
            Customer(
                external_id=f"wd-{run_tag}-{n}",
                type="INDIVIDUAL",
                name=f"Person {n}",
                country="DE",
                email=f"w{n}@example.com",
                phone="+49 30 1234567",
                kyc_level=3,
                created_at=now - timedelta(days=30),
                updated_at=now,
            )
            for n in range(CUSTOMERS)
        ]
    )
    accounts = Account.objects.bulk_create(
        [
            Account(
                external_id=f"wda-{run_tag}-{c.pk}",
                customer=c,
                kind="SPOT",
                created_at=now - timedelta(days=30),
                updated_at=now,
            )
            for c in customers
        ]
    )
    prices = [(0, trading_services.AssetPriceIn(asset="BTC", usd=Decimal(50000), at=now - timedelta(days=1)))]
    trading_services.record_prices(asset_prices=prices, instrument_prices=[], actor=Actor.system("bench"), now=now)
    health.record_heartbeat(now=now)
    return accounts, now


def _drive(accounts, now, *, total: int, tag: str) -> tuple[list[float], dict[str, int]]:
    from backoffice.audit import Actor
    from withdrawals import services

    actor, latencies, statuses = Actor.system("bench"), [], {}
    for n in range(total):
        request = services.WithdrawalRequest(
            request_id=f"{tag}-{n}",
            account_id=accounts[n % len(accounts)].external_id,
            asset="BTC",
            network="BTC",
            amount=Decimal(AMOUNTS[n % len(AMOUNTS)]),
            address=ADDRESS,
            requested_at=now,
        )
        started = time.perf_counter()
        withdrawal, _ = services.request_withdrawal(request=request, actor=actor, now=now)
        latencies.append(time.perf_counter() - started)
        statuses[withdrawal.status] = statuses.get(withdrawal.status, 0) + 1
    return latencies, statuses
