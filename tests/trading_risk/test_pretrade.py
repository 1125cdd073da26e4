from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import restrictions
from tests.factories import SYSTEM, make_account
from tests.trading_risk.conftest import make_instrument, post
from trading_risk.models import InstrumentPrice, Position


def order(**changes):
    return {"account_id": "ACC1", "symbol": "ETHUSDT", "side": "buy", "qty": "1", "price": "4000", **changes}


@pytest.fixture
def account(market):
    return make_account(external_id="ACC1")


@pytest.fixture
def new_listing(account):
    """NEWUSDT listed 10 minutes ago with index 100."""
    now = timezone.now()
    instrument = make_instrument("NEWUSDT", base="NEW", listed_at=now - timedelta(minutes=10))
    InstrumentPrice.objects.create(
        instrument=instrument,
        at=now - timedelta(minutes=1),
        index_price=Decimal(100),
        mark_price=Decimal(100),
        received_at=now,
    )
    return instrument


class TestPreTradeChecks:
    def test_an_unrestricted_order_is_allowed(self, engine, account):
        response = post(engine, "/api/v1/pre-trade-checks/", order())

        assert response.json() == {"allowed": True, "reasons": []}

    def test_a_restricted_account_may_close_but_not_open(self, engine, account):
        restrictions.add_restriction(
            customer=account.customer,
            account=account,
            code="restricted_open",
            rule="staff",
            actor=SYSTEM,
            now=timezone.now(),
        )

        opening = post(engine, "/api/v1/pre-trade-checks/", order())
        closing = post(engine, "/api/v1/pre-trade-checks/", order(reduce_only=True))

        assert opening.json() == {"allowed": False, "reasons": ["restricted_open"]}
        assert closing.json() == {"allowed": True, "reasons": []}

    def test_a_lifted_restriction_no_longer_refuses(self, engine, account):
        restriction = restrictions.add_restriction(
            customer=account.customer, code="trading_banned", rule="staff", actor=SYSTEM, now=timezone.now()
        )
        restrictions.lift_restriction(restriction=restriction, actor=SYSTEM, reason="appeal", now=timezone.now())

        assert post(engine, "/api/v1/pre-trade-checks/", order()).json()["allowed"] is True

    @pytest.mark.parametrize(("price", "allowed"), [("95", True), ("105", True), ("94.999", False), ("105.001", False)])
    def test_in_the_first_15_minutes_prices_outside_index_plus_or_minus_5_percent_are_refused(
        self, engine, new_listing, price, allowed
    ):
        response = post(engine, "/api/v1/pre-trade-checks/", order(symbol="NEWUSDT", price=price))

        assert response.json() == {"allowed": allowed, "reasons": [] if allowed else ["price_band"]}

    def test_after_15_minutes_there_is_no_band(self, engine, account):
        make_instrument("OLDUSDT", base="OLD", listed_at=timezone.now() - timedelta(minutes=15, seconds=1))

        response = post(engine, "/api/v1/pre-trade-checks/", order(symbol="OLDUSDT", price="1000000"))

        assert response.json() == {"allowed": True, "reasons": []}

    def test_in_the_band_window_without_an_index_price_orders_are_refused(self, engine, account):
        make_instrument("BAREUSDT", base="BARE", listed_at=timezone.now() - timedelta(minutes=1))

        response = post(engine, "/api/v1/pre-trade-checks/", order(symbol="BAREUSDT"))

        assert response.json() == {"allowed": False, "reasons": ["price_band"]}

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"account_id": "GHOST"}, "account_id"),
            ({"symbol": "NOPE"}, "symbol"),
            ({"qty": "0"}, "qty"),
            ({"price": 4000.5}, "price"),
            ({"side": "long"}, "side"),
            ({"tif": "GTC"}, "tif"),
        ],
    )
    def test_bad_input_is_a_400(self, engine, account, change, field):
        response = post(engine, "/api/v1/pre-trade-checks/", order(**change))

        assert response.status_code == 400
        assert response.json()["error"]["details"][0]["field"] == field

    def test_an_answer_takes_one_query(self, engine, new_listing):
        post(engine, "/api/v1/pre-trade-checks/", order(symbol="NEWUSDT", price="100"))

        with CaptureQueriesContext(connection) as queries:
            post(engine, "/api/v1/pre-trade-checks/", order(symbol="NEWUSDT", price="100"))

        trading_queries = [q for q in queries if "accounts_restriction" in q["sql"] or "instrumentprice" in q["sql"]]
        assert len(trading_queries) == 1


class TestPreTradePositionLimits:
    @pytest.fixture
    def perpetual(self, account):
        return make_instrument("ETHUSDT-PERP", base="ETH", kind="PERPETUAL")

    def hold(self, account, instrument, qty):
        now = timezone.now()
        Position.objects.create(
            account=account,
            instrument=instrument,
            side="LONG",
            qty=Decimal(qty),
            entry_price=Decimal(4000),
            margin=Decimal(0),
            at=now,
            received_at=now,
        )

    def test_an_order_taking_the_customer_over_5000_btc_is_refused_with_position_limit(
        self, engine, account, perpetual
    ):
        self.hold(make_account(customer=account.customer), perpetual, "124000")  # 4,960 BTC in another account

        allowed = post(engine, "/api/v1/pre-trade-checks/", order(symbol="ETHUSDT-PERP", qty="1000"))
        refused = post(engine, "/api/v1/pre-trade-checks/", order(symbol="ETHUSDT-PERP", qty="1001"))
        closing = post(engine, "/api/v1/pre-trade-checks/", order(symbol="ETHUSDT-PERP", qty="1001", side="sell"))

        assert allowed.json() == {"allowed": True, "reasons": []}
        assert refused.json() == {"allowed": False, "reasons": ["position_limit"]}
        assert closing.json() == {"allowed": True, "reasons": []}

    def test_an_unpriceable_contract_is_a_400_in_the_contracts_error_format(self, engine, account):
        make_instrument("NOPRICE-PERP", base="NOPRICE", kind="PERPETUAL")

        response = post(engine, "/api/v1/pre-trade-checks/", order(symbol="NOPRICE-PERP"))

        assert response.status_code == 400
        assert response.json()["error"]["code"] == "unpriced"

    def test_a_contract_order_with_limits_and_prices_still_takes_one_query(self, engine, account, perpetual):
        self.hold(account, perpetual, "10")
        post(engine, "/api/v1/pre-trade-checks/", order(symbol="ETHUSDT-PERP"))

        with CaptureQueriesContext(connection) as queries:
            response = post(engine, "/api/v1/pre-trade-checks/", order(symbol="ETHUSDT-PERP"))

        assert response.json() == {"allowed": True, "reasons": []}
        reads = [q for q in queries if any(t in q["sql"] for t in ("restriction", "position", "limit_state", "price"))]
        assert len(reads) == 1
        assert "trading_risk_limit_state" in reads[0]["sql"]
