from datetime import timedelta
from decimal import Decimal

import pytest

from accounts.models import Restriction
from tests import factories
from tests.factories import NOW
from tests.trading_risk.conftest import post, set_price
from tests.trading_risk.test_positions import (
    BALANCES,
    URL,
    _fresh_margin_worker,  # noqa: F401  (autouse fixture)
    balance,
    futures_account,
    make_perpetual,
    position,
)
from tests.withdrawals.conftest import _live_worker, body, prices  # noqa: F401  (fixtures)
from trading_risk.models import AccountMargin

PRICES = "/api/v1/prices/"


def mark(engine, price, *, minutes, capture):
    item = {
        "symbol": "BTCUSDT-PERP",
        "index_price": price,
        "mark_price": price,
        "at": (NOW + timedelta(minutes=minutes)).isoformat(),
    }
    with capture(execute=True):
        response = post(engine, PRICES, [item])
    assert response.status_code == 200
    return response


class TestMarkPricesRemargin:
    def test_a_mark_price_batch_reclassifies_the_accounts_once_it_commits(
        self, engine, db, django_capture_on_commit_callbacks
    ):
        set_price("USDT", "1")
        make_perpetual()
        account = futures_account()
        post(engine, URL, [position(account)])

        mark(engine, "45300", minutes=1, capture=django_capture_on_commit_callbacks)

        assert AccountMargin.objects.get(account=account).classification == "WARNING"

    @pytest.mark.usefixtures("prices")
    def test_a_price_move_blocks_withdrawals_below_maintenance_and_recovery_allows_them_again(
        self, engine, django_capture_on_commit_callbacks
    ):
        make_perpetual()
        customer = factories.make_customer(kyc_level=2)
        spot = factories.make_account(customer=customer)
        futures = futures_account(customer)
        post(engine, URL, [position(futures, margin="0")])
        post(engine, BALANCES, [balance(futures, total="1000", available="1000")])

        mark(engine, "49200", minutes=1, capture=django_capture_on_commit_callbacks)
        refused = engine.post("/api/v1/withdrawals/", body(spot, amount="0.01"), format="json")
        mark(engine, "50000", minutes=2, capture=django_capture_on_commit_callbacks)
        allowed = engine.post("/api/v1/withdrawals/", body(spot, amount="0.01", request_id="w-2"), format="json")

        assert (refused.json()["status"], refused.json()["reasons"]) == ("rejected", ["below_maintenance_margin"])
        assert (allowed.json()["status"], allowed.json()["reasons"]) == ("approved", [])
        lifted = Restriction.objects.get(code="below_maintenance_margin")
        assert lifted.lifted_at is not None

    def test_a_broker_outage_does_not_fail_the_price_batch(
        self, engine, db, monkeypatch, django_capture_on_commit_callbacks
    ):
        from trading_risk import tasks

        make_perpetual()

        def refuse(**kwargs):
            raise ConnectionError("broker down")

        monkeypatch.setattr(tasks.remargin, "delay", refuse)

        response = mark(engine, "50000", minutes=1, capture=django_capture_on_commit_callbacks)

        assert response.json() == {"accepted": 1, "duplicates": 0}


class TestAccountMargin:
    def test_the_detail_shows_the_figures_the_formulas_used(self, engine, db, django_capture_on_commit_callbacks):
        set_price("USDT", "1")
        make_perpetual()
        account = futures_account()
        post(engine, URL, [position(account)])
        mark(engine, "45300", minutes=1, capture=django_capture_on_commit_callbacks)

        response = engine.get(f"/api/v1/accounts/{account.external_id}/margin")

        book = response.json()["books"][0]
        assert (book["book"], book["classification"], book["stored_classification"]) == (
            "PERPETUAL",
            "WARNING",
            "WARNING",
        )
        assert [Decimal(book[k]) for k in ("equity", "maintenance_margin", "initial_margin", "warning_line")] == [
            300,
            Decimal("226.5"),
            453,
            Decimal("339.75"),
        ]
        p = book["positions"][0]
        assert (Decimal(p["unrealised_pnl"]), Decimal(p["maintenance_rate_at_mark"])) == (-4700, Decimal("0.005"))
        assert round(Decimal(p["liquidation_price"]), 2) == Decimal("45226.13")

    def test_an_unknown_account_is_not_found(self, engine):
        response = engine.get("/api/v1/accounts/ghost/margin")

        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
