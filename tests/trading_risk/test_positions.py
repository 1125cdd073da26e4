from datetime import timedelta
from decimal import Decimal

import pytest

from accounts.models import Account
from tests import factories
from tests.factories import NOW, SYSTEM
from tests.trading_risk.conftest import make_instrument, post
from trading_risk import margin_engine, risk_limits
from trading_risk.models import Balance, Position, SnapshotKey

URL = "/api/v1/positions/"
BALANCES = "/api/v1/balances/"
# Binance BTCUSDT brackets (risk-mechanics.md §1.2): floor, cap, maintenance rate, initial rate.
BINANCE = [
    ("0", "50000", "0.004", "0.008"),
    ("50000", "250000", "0.005", "0.01"),
    ("250000", "1000000", "0.01", "0.02"),
    ("1000000", "10000000", "0.025", "0.05"),
    ("10000000", "20000000", "0.05", "0.1"),
]


@pytest.fixture(autouse=True)
def _fresh_margin_worker():
    margin_engine.reset_worker()
    yield
    margin_engine.reset_worker()


def make_perpetual(symbol="BTCUSDT-PERP", *, base="BTC", quote="USDT"):
    return make_instrument(symbol, base=base, quote=quote, kind="PERPETUAL")


def make_future(symbol="BTCUSDT-0327", *, base="BTC", quote="USDT"):
    from trading_risk import services

    instrument, _ = services.upsert_instrument(
        symbol=symbol,
        data=services.InstrumentData(
            kind="FUTURE",
            base=base,
            quote=quote,
            listed_at=NOW - timedelta(days=30),
            expires_at=NOW + timedelta(days=25),
        ),
        actor=SYSTEM,
        now=NOW,
    )
    return instrument


def bracket_table(symbol="BTCUSDT-PERP", rows=BINANCE, *, settlement="LINEAR", contract_size="1"):
    brackets = [{"floor": f, "cap": c, "maintenance_rate": m, "initial_rate": i} for f, c, m, i in rows]
    payload = {
        "symbol": symbol,
        "model": "BRACKET",
        "settlement": settlement,
        "contract_size": contract_size,
        "brackets": brackets,
    }
    return risk_limits.create_table(payload=risk_limits._validate(payload), actor=SYSTEM, now=NOW - timedelta(days=1))


def step_table(symbol="BTCUSDT-PERP", *, base="200", step="150", mm="0.005", im="0.01", inc="0.005", **extra):
    payload = {
        "symbol": symbol,
        "model": "STEP",
        "base_limit": base,
        "step": step,
        "base_maintenance_rate": mm,
        "base_initial_rate": im,
        "step_increment": inc,
        **extra,
    }
    return risk_limits.create_table(payload=risk_limits._validate(payload), actor=SYSTEM, now=NOW - timedelta(days=1))


def futures_account(customer=None):
    return factories.make_account(customer=customer or factories.make_customer(kyc_level=2), kind=Account.Kind.FUTURES)


def position(account, *, symbol="BTCUSDT-PERP", side="long", qty="1", entry="50000", margin="5000", at=NOW):
    return {
        "account_id": account.external_id,
        "symbol": symbol,
        "side": side,
        "qty": qty,
        "entry_price": entry,
        "margin": margin,
        "at": at.isoformat(),
    }


def balance(account, *, asset="USDT", total="0", available="0", at=NOW):
    return {
        "account_id": account.external_id,
        "asset": asset,
        "total": total,
        "available": available,
        "at": at.isoformat(),
    }


def stored(account, symbol="BTCUSDT-PERP") -> Position:
    return Position.objects.get(account=account, instrument__symbol=symbol)


def near(value, expected, places=2):
    return value is not None and round(value, places) == Decimal(expected)


class TestStoringPositions:
    def test_a_linear_long_gets_the_exact_liquidation_and_bankruptcy_prices_of_its_bracket(self, engine):
        make_perpetual()
        bracket_table()
        account = futures_account()

        response = post(engine, URL, [position(account)])

        assert response.json() == {"accepted": 1, "duplicates": 0}
        p = stored(account)
        assert (p.maintenance_rate, p.initial_rate, p.maintenance_amount) == (Decimal("0.005"), Decimal("0.01"), 50)
        assert near(p.liquidation_price, "45180.72")
        assert near(p.bankruptcy_price, "45000.00")

    def test_a_linear_short_is_liquidated_in_the_bracket_its_liquidation_notional_falls_in(self, engine):
        make_perpetual()
        bracket_table()
        account = futures_account()

        post(engine, URL, [position(account, side="short")])

        p = stored(account)
        assert near(p.liquidation_price, "54776.12")
        assert near(p.bankruptcy_price, "55000.00")

    def test_an_inverse_position_is_priced_in_coin(self, engine):
        make_perpetual("BTCUSD-PERP", quote="USD")
        bracket_table("BTCUSD-PERP", [("0", "1000", "0.004", "0.01")], settlement="INVERSE", contract_size="100")
        account = futures_account()

        post(engine, URL, [position(account, symbol="BTCUSD-PERP", qty="100", margin="0.02")])
        post(
            engine,
            URL,
            [
                position(
                    account, symbol="BTCUSD-PERP", qty="100", margin="0.02", side="short", at=NOW + timedelta(seconds=1)
                )
            ],
        )

        p = stored(account, "BTCUSD-PERP")
        assert near(p.liquidation_price, "55333.33")
        assert near(p.bankruptcy_price, "55555.56")

    def test_an_inverse_long_has_the_worked_liquidation_and_bankruptcy_prices(self, engine):
        make_perpetual("BTCUSD-PERP", quote="USD")
        bracket_table("BTCUSD-PERP", [("0", "1000", "0.004", "0.01")], settlement="INVERSE", contract_size="100")
        account = futures_account()

        post(engine, URL, [position(account, symbol="BTCUSD-PERP", qty="100", margin="0.02")])

        p = stored(account, "BTCUSD-PERP")
        assert near(p.liquidation_price, "45636.36")
        assert near(p.bankruptcy_price, "45454.55")

    @pytest.mark.parametrize(
        ("size", "maintenance", "initial"),
        [
            ("180", "0.005", "0.01"),
            ("200", "0.01", "0.015"),
            ("230", "0.01", "0.015"),
            ("349", "0.01", "0.015"),
            ("350", "0.015", "0.02"),
            ("650", "0.025", "0.03"),
        ],
    )
    def test_a_step_table_puts_the_position_in_the_tier_of_its_size(self, engine, size, maintenance, initial):
        make_perpetual()
        step_table()
        account = futures_account()

        post(engine, URL, [position(account, qty="1", entry=size, margin=size)])

        p = stored(account)
        assert (p.maintenance_rate, p.initial_rate) == (Decimal(maintenance), Decimal(initial))

    def test_an_instrument_without_a_table_uses_the_default_risk_parameters(self, engine):
        make_perpetual()
        account = futures_account()

        post(engine, URL, [position(account)])

        p = stored(account)
        assert (p.maintenance_rate, p.initial_rate, p.risk_limit) == (Decimal("0.005"), Decimal("0.01"), None)
        assert near(p.liquidation_price, "45226.13")  # (5000 − 50000) / (0.005 − 1)

    def test_quantity_zero_closes_the_position(self, engine):
        make_perpetual()
        account = futures_account()
        post(engine, URL, [position(account)])

        post(engine, URL, [position(account, qty="0", margin="0", at=NOW + timedelta(minutes=1))])

        p = stored(account)
        assert (p.qty, p.liquidation_price, p.maintenance_rate) == (0, None, None)


class TestIdempotency:
    def test_the_same_snapshot_again_is_a_duplicate(self, engine):
        make_perpetual()
        account = futures_account()
        post(engine, URL, [position(account)])

        response = post(engine, URL, [position(account, qty="1.000")])

        assert response.json() == {"accepted": 0, "duplicates": 1}
        assert SnapshotKey.objects.count() == 1

    def test_the_same_key_with_another_payload_is_a_conflict_and_stores_nothing(self, engine):
        make_perpetual()
        account = futures_account()
        post(engine, URL, [position(account)])

        response = post(engine, URL, [position(account, at=NOW + timedelta(minutes=1)), position(account, qty="2")])

        assert response.status_code == 409
        assert response.json()["error"]["details"] == [
            {"index": 1, "field": "at", "message": "already received with a different payload"}
        ]
        assert stored(account).at == NOW

    def test_an_older_snapshot_is_accepted_but_does_not_replace_the_newer(self, engine):
        make_perpetual()
        account = futures_account()
        post(engine, URL, [position(account, qty="2")])

        response = post(engine, URL, [position(account, qty="5", at=NOW - timedelta(minutes=1))])

        assert response.json() == {"accepted": 1, "duplicates": 0}
        assert stored(account).qty == 2

    def test_the_newest_of_several_snapshots_in_one_batch_wins(self, engine):
        make_perpetual()
        account = futures_account()

        post(engine, URL, [position(account, qty="3", at=NOW + timedelta(seconds=2)), position(account, qty="1")])

        assert stored(account).qty == 3


class TestValidation:
    def test_unknown_accounts_and_symbols_are_refused_item_by_item(self, engine):
        make_perpetual()
        make_instrument("ETHUSDT", base="ETH")
        account = futures_account()

        response = post(
            engine,
            URL,
            [
                position(account),
                position(account, symbol="NOPE"),
                {**position(account), "account_id": "ghost"},
                position(account, symbol="ETHUSDT"),
            ],
        )

        assert response.status_code == 400
        assert response.json()["error"]["details"] == [
            {"index": 1, "field": "symbol", "message": "unknown instrument"},
            {"index": 2, "field": "account_id", "message": "unknown account"},
            {"index": 3, "field": "symbol", "message": "a spot instrument has no positions"},
        ]
        assert not Position.objects.exists()

    def test_unknown_fields_floats_and_bad_sides_are_refused(self, engine):
        make_perpetual()
        account = futures_account()

        response = post(
            engine,
            URL,
            [{**position(account), "leverage": "10"}, {**position(account), "qty": 1.5}, position(account, side="buy")],
        )

        assert response.status_code == 400
        assert [d["index"] for d in response.json()["error"]["details"]] == [0, 1, 2]

    def test_a_token_without_the_events_scope_is_forbidden(self, db):
        from rest_framework.test import APIClient

        _, token = factories.make_api_client(scopes=("reference",))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

        response = post(client, URL, [])

        assert response.status_code == 403


class TestBalances:
    def test_a_balance_snapshot_is_stored_and_a_newer_one_replaces_it(self, engine):
        account = futures_account()
        post(engine, BALANCES, [balance(account, total="100", available="80")])

        response = post(engine, BALANCES, [balance(account, total="90", available="90", at=NOW + timedelta(seconds=1))])

        assert response.json() == {"accepted": 1, "duplicates": 0}
        assert Balance.objects.get(account=account).available == 90

    def test_available_above_total_is_refused(self, engine):
        account = futures_account()

        response = post(engine, BALANCES, [balance(account, total="1", available="2")])

        assert response.json()["error"]["details"] == [
            {"index": 0, "field": "available", "message": "must not exceed total"}
        ]

    def test_a_resent_balance_with_another_amount_is_a_conflict(self, engine):
        account = futures_account()
        post(engine, BALANCES, [balance(account, total="1", available="1")])

        response = post(engine, BALANCES, [balance(account, total="2", available="1")])

        assert response.status_code == 409
        assert Balance.objects.get(account=account).total == 1
