from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from backoffice import health
from tests import factories
from trading_risk import services as trading_services

# Addresses with valid checksums (BIP-173/350, base58check, EIP-55).
BTC_ADDRESS = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
ETH_ADDRESS = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
TRX_ADDRESS = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
# A week after the accounts are opened: active (not dormant), no recent password change.
REQUESTED_AT = factories.NOW + timedelta(days=7)


@pytest.fixture(autouse=True)
def _live_worker(db):
    """A worker heartbeat, as beat and a worker give in production (decisions fail closed without it)."""
    health.record_heartbeat(now=timezone.now())


@pytest.fixture
def prices(db):
    """BTC at 50,000 USD, ETH at 2,500, USDT at 1, from well before every request."""
    items = [
        (i, trading_services.AssetPriceIn(asset=a, usd=Decimal(u), at=factories.NOW - timedelta(days=60)))
        for i, (a, u) in enumerate([("BTC", "50000"), ("ETH", "2500"), ("USDT", "1"), ("TRX", "0.1")])
    ]
    trading_services.record_prices(asset_prices=items, instrument_prices=[], actor=factories.SYSTEM, now=factories.NOW)


@pytest.fixture
def verified_account(db):
    """A KYC level 2 customer's spot account."""
    return factories.make_account(customer=factories.make_customer(kyc_level=2))


def body(account, **overrides) -> dict:
    data = {
        "request_id": "w-1",
        "account_id": account.external_id,
        "asset": "BTC",
        "amount": "0.1",
        "address": BTC_ADDRESS,
        "network": "BTC",
        "requested_at": REQUESTED_AT.isoformat(),
    }
    return {**data, **overrides}


def make_withdrawal(account, *, amount: str = "3", request_id: str | None = None, **fields):
    """A withdrawal decided through the service (prices and a live worker must be in place)."""
    from withdrawals import services

    request = services.WithdrawalRequest(
        request_id=request_id or f"w-{next(factories._serial)}",
        account_id=account.external_id,
        asset="BTC",
        network="BTC",
        amount=Decimal(amount),
        address=BTC_ADDRESS,
        requested_at=REQUESTED_AT,
        **fields,
    )
    withdrawal, _ = services.request_withdrawal(request=request, actor=factories.SYSTEM, now=REQUESTED_AT)
    return withdrawal
