from decimal import Decimal as D

import pytest

from trading_risk import rules


def check(**changes):
    facts = {
        "order_qty": D(1),
        "product_qty": D(0),
        "month_qty": None,
        "btc_rate": D(1),
        "product_limit_btc": D(5000),
        "month_limit_btc": None,
        "exempt": False,
    }
    return rules.PositionCheck(**(facts | changes))


def terms(*rows, **changes):
    values = {
        "rows": rows,
        "customer_type": "INDIVIDUAL",
        "default_btc": D(5000),
        "delivery_factor": D("0.5"),
        "member_limit_btc": None,
        "dated": False,
        "delivery_month": False,
    }
    return rules.LimitTerms(**(values | changes))


class TestPositionLimit:
    @pytest.mark.parametrize(
        ("held", "order", "rate", "over"),
        [
            ("4999", "1", "1", False),  # exactly at 5000 BTC: allowed
            ("4999", "1.00000001", "1", True),
            ("-4999", "-2", "1", True),  # short side counts the same
            ("6000", "-1", "1", False),  # reduces an over-limit long
            ("-6000", "1", "1", False),  # reduces an over-limit short
            ("6000", "-12001", "1", True),  # flips to a short beyond the limit
            ("124000", "1000", "0.04", False),  # ETH at 1/25 BTC: 125,000 ETH = 5,000 BTC, at the limit
            ("124000", "1001", "0.04", True),  # one more ETH is over
        ],
    )
    def test_refuses_only_orders_that_take_the_net_position_past_the_limit_and_away_from_zero(
        self, held, order, rate, over
    ):
        result = rules.position_limit(check(product_qty=D(held), order_qty=D(order), btc_rate=D(rate)))

        assert result is over

    def test_an_exempt_account_passes_whatever_the_size(self):
        assert rules.position_limit(check(product_qty=D(10_000), exempt=True)) is False

    def test_the_contract_month_limit_is_checked_beside_the_product_limit(self):
        facts = check(product_qty=D(100), month_qty=D(900), month_limit_btc=D(900))

        assert rules.position_limit(facts) is True
        assert rules.position_limit(check(product_qty=D(100), month_qty=D(899), month_limit_btc=D(900))) is False


class TestApplicableLimits:
    def test_without_rows_the_default_parameter_applies(self):
        assert rules.applicable_limits(terms()) == (D(5000), None)

    def test_a_row_for_the_customers_own_type_wins_over_a_row_for_everyone(self):
        rows = (
            rules.LimitRow(monthly=False, customer_type="", limit_btc=D(3000)),
            rules.LimitRow(monthly=False, customer_type="INDIVIDUAL", limit_btc=D(1000)),
            rules.LimitRow(monthly=False, customer_type="CORPORATE", limit_btc=D(8000)),
        )

        assert rules.applicable_limits(terms(*rows)) == (D(1000), None)
        assert rules.applicable_limits(terms(*rows, customer_type="MARKET_MAKER")) == (D(3000), None)

    def test_a_broker_members_own_limit_caps_the_product_limit(self):
        assert rules.applicable_limits(terms(member_limit_btc=D(2000))) == (D(2000), None)
        assert rules.applicable_limits(terms(member_limit_btc=D(9000))) == (D(5000), None)

    def test_a_dated_future_outside_its_delivery_month_has_only_its_month_row(self):
        month = rules.LimitRow(monthly=True, customer_type="", limit_btc=D(2000))

        assert rules.applicable_limits(terms(dated=True)) == (D(5000), None)
        assert rules.applicable_limits(terms(month, dated=True)) == (D(5000), D(2000))

    def test_in_the_delivery_month_the_limit_is_stricter_by_the_factor(self):
        month = rules.LimitRow(monthly=True, customer_type="", limit_btc=D(2000))

        assert rules.applicable_limits(terms(dated=True, delivery_month=True)) == (D(5000), D(2500))
        assert rules.applicable_limits(terms(month, dated=True, delivery_month=True)) == (D(5000), D(1000))

    def test_an_explicit_delivery_month_limit_replaces_the_factor(self):
        month = rules.LimitRow(monthly=True, customer_type="", limit_btc=D(2000), delivery_month_limit_btc=D(300))

        assert rules.applicable_limits(terms(month, dated=True, delivery_month=True)) == (D(5000), D(300))


class TestPreTradeWithPositions:
    def test_an_order_over_the_limit_is_refused_with_position_limit(self):
        facts = rules.PreTradeFacts(
            symbol="BTCUSDT-PERP",
            price=D(100000),
            reduce_only=False,
            restrictions=(),
            halt_modes=(),
            band=None,
            position=check(product_qty=D(5000)),
        )

        assert rules.pre_trade_check(facts) == ["position_limit"]
