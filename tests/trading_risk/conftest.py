import json
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.factories import NOW, SYSTEM
from trading_risk import ingest, pretrade, services
from trading_risk.models import AssetPrice, Instrument


@pytest.fixture(autouse=True)
def _fresh_reference_caches():
    """Accounts and instruments are cached per process; each test sees its own."""
    ingest.clear_caches()
    pretrade.listings.loaded_at = float("-inf")
    yield
    ingest.clear_caches()
    pretrade.listings.loaded_at = float("-inf")


def make_instrument(symbol="ETHUSDT", *, base="ETH", quote="USDT", kind="SPOT", listed_at=NOW - timedelta(days=30)):
    instrument, _ = services.upsert_instrument(
        symbol=symbol,
        data=services.InstrumentData(kind=kind, base=base, quote=quote, listed_at=listed_at, expires_at=None),
        actor=SYSTEM,
        now=NOW,
    )
    return instrument


def set_price(asset, usd, at=NOW - timedelta(days=2)):
    AssetPrice.objects.create(asset=asset, usd=Decimal(usd), at=at, received_at=at)


@pytest.fixture
def market(db):
    """ETHUSDT and BTCUSDT listed a month ago; ETH at 1/25 BTC (4,000 vs 100,000 USD)."""
    make_instrument("ETHUSDT", base="ETH")
    make_instrument("BTCUSDT", base="BTC")
    set_price("BTC", "100000")
    set_price("ETH", "4000")
    return Instrument.objects.all()


def post(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


def trade(n, buyer, seller, *, symbol="ETHUSDT", qty="1", price="4000", at=NOW, **extra):
    return {
        "trade_id": f"T{n}",
        "symbol": symbol,
        "price": price,
        "qty": qty,
        "buy_account_id": buyer,
        "sell_account_id": seller,
        "buy_order_id": f"B{n}",
        "sell_order_id": f"S{n}",
        "aggressor": "buy",
        "executed_at": at.isoformat(),
        **extra,
    }


def order_event(n, account, *, symbol="ETHUSDT", type_="placed", at=NOW, **extra):
    return {
        "event_id": f"E{n}",
        "order_id": f"O{n // 2}",
        "account_id": account,
        "symbol": symbol,
        "type": type_,
        "side": "buy",
        "price": "4000",
        "qty": "1",
        "at": at.isoformat(),
        **extra,
    }
