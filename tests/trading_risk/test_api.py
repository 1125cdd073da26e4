import json
from decimal import Decimal

import pytest

from backoffice.models import OperationsLogEntry
from tests.factories import NOW
from trading_risk.models import Instrument, InstrumentPrice
from trading_risk.selectors import Unpriced, btc_equivalent


def put(client, path, body):
    return client.put(path, json.dumps(body), content_type="application/json")


def instrument(**fields):
    return {"kind": "perpetual", "base": "BTC", "quote": "USDT", "listed_at": "2026-01-01T00:00:00Z", **fields}


class TestPutInstrument:
    def test_creates_then_updates_an_instrument_with_an_audit_entry_each(self, engine):
        created = put(engine, "/api/v1/instruments/BTCUSDT-PERP", instrument())
        same = put(engine, "/api/v1/instruments/BTCUSDT-PERP", instrument())
        updated = put(engine, "/api/v1/instruments/BTCUSDT-PERP", instrument(listed_at="2026-02-01T00:00:00Z"))

        assert (created.status_code, same.status_code, updated.status_code) == (201, 200, 200)
        assert created.json()["kind"] == "perpetual"
        assert list(
            OperationsLogEntry.objects.filter(target_type="trading_risk.instrument")
            .values_list("action", flat=True)
            .order_by("id")
        ) == ["instrument.create", "instrument.update"]

    @pytest.mark.parametrize(
        ("path", "body", "field"),
        [
            ("/api/v1/instruments/btcusdt", instrument(), "symbol"),
            ("/api/v1/instruments/BTCUSD-Q", instrument(kind="future"), "expires_at"),
            (
                "/api/v1/instruments/BTCUSD-Q",
                instrument(kind="future", expires_at="2025-01-01T00:00:00Z"),
                "expires_at",
            ),
            ("/api/v1/instruments/BTCUSDT", instrument(kind="spot", expires_at="2027-01-01T00:00:00Z"), "expires_at"),
            ("/api/v1/instruments/BTCBTC", instrument(quote="BTC"), "quote"),
            ("/api/v1/instruments/X", instrument(kind="option"), "kind"),
            ("/api/v1/instruments/X", instrument(tick="0.1"), "tick"),
            ("/api/v1/instruments/X", {"kind": "spot"}, "base"),
        ],
    )
    def test_refuses_bad_instruments_and_stores_nothing(self, engine, path, body, field):
        response = put(engine, path, body)

        assert response.status_code == 400
        assert response.json()["error"]["details"][0]["field"] == field
        assert not Instrument.objects.exists()


class TestInstrumentPrices:
    def test_stores_index_and_mark_prices_for_known_instruments(self, engine):
        put(engine, "/api/v1/instruments/BTCUSDT-PERP", instrument())

        response = engine.post(
            "/api/v1/prices",
            json.dumps(
                [
                    {
                        "symbol": "BTCUSDT-PERP",
                        "index_price": "90000",
                        "mark_price": "90010.5",
                        "at": "2026-03-02T12:00:00Z",
                    }
                ]
            ),
            content_type="application/json",
        )

        assert response.json() == {"accepted": 1, "duplicates": 0}
        assert InstrumentPrice.objects.get().mark_price == Decimal("90010.5")

    def test_refuses_prices_for_an_unknown_instrument(self, engine):
        response = engine.post(
            "/api/v1/prices",
            json.dumps([{"symbol": "NOPE", "index_price": "1", "mark_price": "1", "at": "2026-03-02T12:00:00Z"}]),
            content_type="application/json",
        )

        assert response.status_code == 400
        assert response.json()["error"]["details"] == [{"index": 0, "field": "symbol", "message": "unknown instrument"}]


class TestBtcEquivalent:
    def test_values_an_amount_at_the_latest_prices_at_or_before_the_moment(self, engine):
        engine.post(
            "/api/v1/prices",
            json.dumps(
                [
                    {"asset": "BTC", "usd": "100000", "at": "2026-03-02T11:00:00Z"},
                    {"asset": "ETH", "usd": "4000", "at": "2026-03-02T11:00:00Z"},
                    {"asset": "ETH", "usd": "5000", "at": "2026-03-02T12:30:00Z"},
                ]
            ),
            content_type="application/json",
        )

        assert btc_equivalent("ETH", Decimal("25"), at=NOW) == Decimal("1")
        assert btc_equivalent("BTC", Decimal("3"), at=NOW) == Decimal("3")

    def test_an_amount_without_a_price_is_an_error_not_zero(self, db):
        with pytest.raises(Unpriced, match="ETH"):
            btc_equivalent("ETH", Decimal("1"), at=NOW)
