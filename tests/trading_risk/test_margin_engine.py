import random
from datetime import timedelta
from decimal import Decimal

import pytest

from accounts.models import Notification, Restriction
from backoffice.models import OperationsLogEntry
from tests.factories import NOW, SYSTEM
from tests.trading_risk.conftest import post, set_price
from tests.trading_risk.test_positions import (
    BALANCES,
    URL,
    _fresh_margin_worker,  # noqa: F401  (autouse fixture)
    balance,
    futures_account,
    make_future,
    make_perpetual,
    position,
)
from trading_risk import margin, margin_engine, services
from trading_risk.models import AccountMargin, Alert, Instrument, MarginTransition

# Default risk limits (0.5 % / 1.0 %, base 1,000,000): one BTC long at 50,000.
# Isolated with 5,000 margin: equity = mark − 45,000, MM = 0.5 % × mark, warning line = 0.75 % × mark.
# Cross (no margin of its own) with 1,000 USDT available: equity = mark − 49,000.
ISOLATED = {"50000": "HEALTHY", "45300": "WARNING", "45200": "LIQUIDATION"}
CROSS = {"50000": "HEALTHY", "49300": "WARNING", "49200": "BELOW_MAINTENANCE"}


@pytest.fixture
def market(db):
    set_price("USDT", "1", at=NOW - timedelta(days=1))
    return make_perpetual()


def mark(symbol, price, *, minutes):
    at = NOW + timedelta(minutes=minutes)
    instrument = Instrument.objects.get(symbol=symbol)
    services.record_prices(
        asset_prices=[],
        instrument_prices=[(0, services.InstrumentPriceIn(instrument.symbol, Decimal(price), Decimal(price), at))],
        actor=SYSTEM,
        now=at,
    )
    return at


def run(symbol="BTCUSDT-PERP", price="50000", *, minutes):
    at = mark(symbol, price, minutes=minutes)
    result = margin_engine.remargin(now=at)
    margin_engine.apply_consequences(now=at)
    return result


def state(account, book="PERPETUAL"):
    found = AccountMargin.objects.filter(account=account, book=book).first()
    return found.classification if found else None


def margin_restrictions(account):
    return Restriction.objects.filter(customer=account.customer, code="below_maintenance_margin", lifted_at=None)


class TestClassification:
    @pytest.mark.parametrize(("price", "expected"), ISOLATED.items())
    def test_an_isolated_position_is_classified_by_its_equity_against_the_lines(self, engine, market, price, expected):
        account = futures_account()
        post(engine, URL, [position(account)])

        run(price=price, minutes=1)

        assert state(account) == expected

    @pytest.mark.parametrize(("price", "expected"), CROSS.items())
    def test_a_cross_position_weighs_on_the_accounts_balances(self, engine, market, price, expected):
        account = futures_account()
        post(engine, URL, [position(account, margin="0")])
        post(engine, BALANCES, [balance(account, total="1000", available="1000")])

        run(price=price, minutes=1)

        assert state(account) == expected

    def test_the_stored_figures_are_those_of_the_formulas(self, engine, market):
        account = futures_account()
        post(engine, URL, [position(account)])

        run(price="45300", minutes=1)

        row = AccountMargin.objects.get(account=account)
        assert (row.equity, row.maintenance_margin, row.initial_margin, row.warning_line) == (
            Decimal(300),
            Decimal("226.5"),
            Decimal(453),
            Decimal("339.75"),
        )

    def test_balances_count_at_their_latest_usd_price_and_unpriced_ones_count_nothing(self, engine, market):
        set_price("ETH", "2000", at=NOW - timedelta(days=1))
        account = futures_account()
        post(engine, URL, [position(account, margin="0")])
        post(
            engine,
            BALANCES,
            [
                balance(account, asset="ETH", total="0.15", available="0.15"),
                balance(account, asset="NOPE", total="1000000", available="1000000"),
            ],
        )

        run(price="49900", minutes=1)  # equity 300 − 100 = 200 < MM 249.5

        assert state(account) == "BELOW_MAINTENANCE"

    def test_perpetual_and_dated_contracts_are_separate_books(self, engine, market):
        make_future()
        account = futures_account()
        post(engine, URL, [position(account), position(account, symbol="BTCUSDT-0327")])
        mark("BTCUSDT-0327", "45200", minutes=1)

        run(price="50000", minutes=2)

        assert (state(account, "PERPETUAL"), state(account, "FUTURE")) == ("HEALTHY", "LIQUIDATION")


class TestConsequences:
    def test_entering_warning_sends_an_sms_and_an_email_once(self, engine, market):
        account = futures_account()
        post(engine, URL, [position(account)])
        run(price="50000", minutes=1)

        run(price="45300", minutes=2)
        run(price="45310", minutes=3)

        sent = Notification.objects.filter(customer=account.customer, template_code="margin_warning")
        assert sorted(sent.values_list("channel", flat=True)) == ["EMAIL", "SMS"]
        assert "300.00 USD" in sent.get(channel="EMAIL").body

    def test_falling_below_maintenance_restricts_and_recovering_lifts_it(self, engine, market):
        account = futures_account()
        post(engine, URL, [position(account, margin="0")])
        post(engine, BALANCES, [balance(account, total="1000", available="1000")])
        run(price="49200", minutes=1)
        restriction = margin_restrictions(account).get()

        run(price="49900", minutes=2)

        assert (restriction.rule, restriction.source) == ("margin", f"margin:{account.pk}:PERPETUAL")
        assert not margin_restrictions(account).exists()
        assert state(account) == "HEALTHY"

    def test_entering_liquidation_restricts_and_opens_one_alert(self, engine, market):
        account = futures_account()
        post(engine, URL, [position(account)])
        run(price="50000", minutes=1)

        run(price="45200", minutes=2)
        run(price="45100", minutes=3)

        alert = Alert.objects.get(rule="margin_liquidation")
        assert (alert.account, alert.severity) == (account, Alert.Severity.CRITICAL)
        assert margin_restrictions(account).count() == 1

    def test_reprocessing_the_same_prices_changes_nothing(self, engine, market):
        account = futures_account()
        post(engine, URL, [position(account)])
        at = mark("BTCUSDT-PERP", "45200", minutes=1)
        margin_engine.remargin(now=at)
        margin_engine.apply_consequences(now=at)

        again = margin_engine.remargin(now=at)
        margin_engine.apply_consequences(now=at)

        assert again.written == 0
        assert MarginTransition.objects.count() == 1
        assert (Alert.objects.count(), margin_restrictions(account).count()) == (1, 1)

    def test_every_transition_is_in_the_operations_log(self, engine, market):
        account = futures_account()
        post(engine, URL, [position(account)])

        run(price="45300", minutes=1)

        run_entry = OperationsLogEntry.objects.get(action="margin.reclassify")
        stored = MarginTransition.objects.get()
        assert run_entry.after == {
            "books": 1,
            "changes": [["", "WARNING", 1]],
            "transitions": 1,
            "transition_ids": [stored.pk, stored.pk],
        }
        transition = OperationsLogEntry.objects.get(action="margin.transition")
        assert transition.after["notified"] is True

    def test_a_run_s_log_entry_counts_its_changes_and_names_the_range_of_its_transitions(self, engine, market):
        accounts = [futures_account() for _ in range(3)]
        post(engine, URL, [position(a) for a in accounts])
        run(price="50000", minutes=1)
        first_run = set(MarginTransition.objects.values_list("pk", flat=True))

        run(price="45200", minutes=2)

        entry = OperationsLogEntry.objects.filter(action="margin.reclassify").latest("pk")
        low, high = entry.after["transition_ids"]
        traced = MarginTransition.objects.filter(pk__gte=low, pk__lte=high)
        assert entry.after["changes"] == [["HEALTHY", "LIQUIDATION", 3]]
        assert entry.after["books"] == entry.after["transitions"] == 3
        assert sorted(traced.values_list("account_id", "from_classification", "to_classification")) == [
            (a.pk, "HEALTHY", "LIQUIDATION") for a in accounts
        ]
        assert not first_run & set(traced.values_list("pk", flat=True))


class TestPreFilter:
    def test_the_float_pre_filter_leaves_every_book_with_its_exact_class(self, engine, market):
        rng = random.Random(7)
        make_future()
        accounts = [futures_account() for _ in range(60)]
        items = [
            position(
                a,
                symbol=symbol,
                side=rng.choice(["long", "short"]),
                qty=str(rng.choice([1, 2, 5, 30])),
                entry=str(rng.randint(48000, 52000)),
                margin=rng.choice(["0", "500", "2500", "5000", "100000"]),
            )
            for a in accounts
            for symbol in rng.sample(["BTCUSDT-PERP", "BTCUSDT-0327"], rng.randint(1, 2))
        ]
        post(engine, URL, items)
        post(engine, BALANCES, [balance(a, total="3000", available=str(rng.randint(0, 3000))) for a in accounts])

        for minute, price in enumerate(["50000", "47000", "45210.5", "53000", "55500", "49000"], start=1):
            mark("BTCUSDT-0327", str(Decimal(price) + 25), minutes=minute)
            at = mark("BTCUSDT-PERP", price, minutes=minute)
            margin_engine.remargin(now=at)

            exact = margin_engine.evaluate(
                [(a.pk, b) for a in accounts for b in ("PERPETUAL", "FUTURE")], margin_engine.load_market(now=at)
            )
            stored = dict(((m.account_id, m.book), m.classification) for m in AccountMargin.objects.all())
            expected = {k: v.classification for k, v in exact.items() if v.notional > 0 or k in stored}
            assert stored == expected
        assert set(stored.values()) == set(margin_engine.CLASSES)


class TestPureFigures:
    def test_a_position_at_mark_takes_the_bracket_of_its_size_at_mark(self):
        limits = margin.RiskLimits(
            tiers=margin.tiers_with_amounts(
                [
                    margin.Tier(Decimal(0), Decimal(250000), Decimal("0.005"), Decimal("0.01")),
                    margin.Tier(Decimal(250000), Decimal(10**6), Decimal("0.01"), Decimal("0.02")),
                ]
            )
        )

        at_mark = margin.position_at_mark(
            limits,
            side=1,
            qty=Decimal(10),
            entry=Decimal(40000),
            margin=Decimal(50000),
            mark=Decimal(50000),
            usd_rate=Decimal(1),
        )

        assert (at_mark.maintenance_margin, at_mark.unrealised_pnl) == (Decimal(3750), Decimal(100000))

    def test_the_warning_line_is_a_parameterised_fraction_between_maintenance_and_initial(self):
        p = margin.PositionAtMark(Decimal(50000), Decimal(0), Decimal(0), Decimal(250), Decimal(500), Decimal(1))

        book = margin.book_margin([p], balances_usd=Decimal(400), warning_fraction=Decimal("0.8"))

        assert (book.warning_line, book.classification) == (Decimal(450), "WARNING")


class TestReads:
    def test_books_are_counted_per_class_and_ratio_band_and_the_worst_come_first(self, engine, market):
        from trading_risk import margin_selectors

        accounts = [futures_account() for _ in range(3)]
        post(engine, URL, [position(accounts[0]), position(accounts[1], margin="400"), position(accounts[2])])
        run(price="45300", minutes=1)  # equity 300 / MM 226.5 (1.32), the second one liquidating

        distribution = margin_selectors.margin_ratio_distribution()
        worst = margin_selectors.nearest_liquidation(limit=2)

        assert distribution["classes"] == {"HEALTHY": 0, "WARNING": 2, "BELOW_MAINTENANCE": 0, "LIQUIDATION": 1}
        assert distribution["ratio_bands"]["1.25–1.5"] == 2
        assert [m.account for m in worst] == [accounts[1], accounts[0]]
