import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from backoffice.models import OperationsLogEntry
from reporting import large_traders, services, tasks
from reporting.models import Report
from tests.factories import SYSTEM, make_account, make_customer
from tests.trading_risk.conftest import make_instrument, set_price
from trading_risk.models import Balance, Instrument, LinkedGroup, Position

DAY = date(2026, 3, 1)
COLUMN = {name: i for i, name in enumerate(large_traders.HEADERS)}


@pytest.fixture
def market(db):
    """BTC and ETH perpetuals; ETH at 1/25 BTC on the report day."""
    set_price("BTC", "100000", at=datetime(2026, 2, 28, tzinfo=UTC))
    set_price("ETH", "4000", at=datetime(2026, 2, 28, tzinfo=UTC))
    make_instrument("BTCUSDT-PERP", base="BTC", kind="PERPETUAL")
    make_instrument("ETHUSDT-PERP", base="ETH", kind="PERPETUAL")


def hold(account, symbol, qty, *, side="LONG", margin="0"):
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    Position.objects.create(
        account=account,
        instrument=Instrument.objects.get(symbol=symbol),
        side=side,
        qty=Decimal(qty),
        entry_price=Decimal(1),
        margin=Decimal(margin),
        at=at,
        received_at=at,
    )


def fund(account, asset, total, available=None):
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    Balance.objects.create(
        account=account, asset=asset, total=Decimal(total), available=Decimal(available or total), at=at, received_at=at
    )


def generate(day=DAY):
    return services.generate_large_trader_report(day=day, actor=SYSTEM, now=timezone.now())


def rows_of(report):
    return list(csv.reader(io.StringIO(report.csv_content)))[1:]


class TestWhoIsReported:
    def test_positions_across_a_customers_accounts_are_aggregated_to_reach_5000_btc(self, market):
        whale = make_customer(external_id="WHALE", name="Whale Capital")
        hold(make_account(customer=whale), "BTCUSDT-PERP", "3000")
        hold(make_account(customer=whale), "ETHUSDT-PERP", "50000", side="SHORT")  # 2,000 BTC
        hold(make_account(customer=make_customer(external_id="SMALL")), "BTCUSDT-PERP", "4999")

        rows = rows_of(generate())

        assert {row[COLUMN["Client number"]] for row in rows} == {"WHALE"}
        assert [row[COLUMN["Contract code"]] for row in rows] == ["BTCUSDT-PERP", "ETHUSDT-PERP"]
        assert rows[0][COLUMN["Aggregated position, all products (BTC)"]] == "5000.00000000"
        assert rows[1][COLUMN["Net position (base units)"]] == "-50000"

    def test_a_customer_with_total_assets_over_the_threshold_is_reported_without_a_contract(self, market):
        rich = make_customer(external_id="RICH")
        fund(make_account(customer=rich), "BTC", "4000", available="3000")
        fund(make_account(customer=rich), "ETH", "25000")  # 1,000 BTC

        (row,) = rows_of(generate())

        assert row[COLUMN["Client number"]] == "RICH"
        assert row[COLUMN["Contract code"]] == ""
        assert row[COLUMN["Total assets (BTC)"]] == "5000.00000000"
        assert row[COLUMN["Available funds (BTC)"]] == "4000.00000000"
        assert row[COLUMN["Spot holdings"]] == "BTC 4000; ETH 25000"

    def test_the_threshold_is_a_risk_parameter(self, market):
        from backoffice.models import ParameterValue

        ParameterValue.objects.filter(definition_id="large_trader.threshold_btc").update(value="100")
        hold(make_account(customer=make_customer(external_id="MID")), "BTCUSDT-PERP", "100")

        report = generate()

        assert report.threshold_btc == Decimal(100)
        assert [row[COLUMN["Client number"]] for row in rows_of(report)] == ["MID"]

    def test_accounts_under_common_control_include_linked_customers_accounts(self, market):
        whale = make_customer(external_id="WHALE")
        hold(make_account(customer=whale, external_id="W1"), "BTCUSDT-PERP", "6000")
        partner = make_customer(external_id="PARTNER")
        make_account(customer=partner, external_id="P1")
        group = LinkedGroup.objects.create(name="g", basis="DEVICE", evidence="dev-1", created_at=timezone.now())
        group.customers.add(whale, partner)

        (row,) = rows_of(generate())

        assert row[COLUMN["Accounts under common control"]] == "P1, W1"

    def test_fields_the_back_office_does_not_hold_are_empty_under_a_header_that_says_so(self, market):
        hold(make_account(), "BTCUSDT-PERP", "6000")

        (row,) = rows_of(generate())

        for header in large_traders.HEADERS:
            if "not held" in header:
                assert row[COLUMN[header]] == ""

    def test_a_broker_member_shows_its_member_name_and_number(self, market):
        from trading_risk.models import BrokerMember

        broker = make_customer(external_id="BRK", type="CORPORATE", name="Broker Ltd")
        hold(make_account(customer=broker), "BTCUSDT-PERP", "6000")
        change = _change_request()
        BrokerMember.objects.create(
            customer=broker,
            member_number="M-7",
            net_capital_btc=1,
            limit_btc=1,
            next_review_date=DAY,
            created_at=timezone.now(),
            updated_at=timezone.now(),
            change_request=change,
        )

        (row,) = rows_of(generate())

        assert (
            row[COLUMN["Member name (broker members only)"]],
            row[COLUMN["Member number (broker members only)"]],
        ) == (
            "Broker Ltd",
            "M-7",
        )

    def test_a_name_that_looks_like_a_formula_is_neutralised(self, market):
        hold(make_account(customer=make_customer(name='=HYPERLINK("x")')), "BTCUSDT-PERP", "6000")

        (row,) = rows_of(generate())

        assert row[COLUMN["Client name"]].startswith("'=")


def _change_request():
    from backoffice.models import ChangeRequest
    from tests.factories import make_staff

    now = timezone.now()
    return ChangeRequest.objects.create(
        action="broker_member.set",
        payload={},
        summary="s",
        reason="r",
        requested_by=make_staff(),
        requested_at=now,
        expires_at=now + timedelta(hours=1),
        required_approvals=1,
    )


class TestArchive:
    def test_regenerating_a_day_adds_a_version_and_keeps_the_earlier_one(self, market):
        first = generate()
        hold(make_account(), "BTCUSDT-PERP", "6000")

        second = generate()

        assert (first.version, first.rows_count, second.version, second.rows_count) == (1, 0, 2, 1)
        assert Report.objects.count() == 2
        assert OperationsLogEntry.objects.filter(action="report.generate").count() == 2

    def test_the_xlsx_holds_the_same_rows_as_the_csv(self, market):
        hold(make_account(customer=make_customer(external_id="WHALE")), "BTCUSDT-PERP", "6000")

        report = generate()

        sheet = load_workbook(io.BytesIO(bytes(report.xlsx_content))).active
        values = list(sheet.values)
        assert list(values[0]) == large_traders.HEADERS
        assert values[1][COLUMN["Client number"]] == "WHALE"
        assert Decimal(str(values[1][COLUMN["Position (BTC)"]])) == Decimal(6000)

    def test_the_daily_task_builds_the_previous_days_report(self, market):
        result = tasks.build_daily_large_trader_report.run()

        report = Report.objects.get(pk=result["report_id"])
        assert report.day == timezone.now().date() - timedelta(days=1)
        assert report.generated_by == "system:large_trader_report"


class TestSchedule:
    def test_the_daily_report_is_a_registered_beat_task(self, settings):
        from backoffice.celery import app

        entry = settings.CELERY_BEAT_SCHEDULE["large-trader-report"]

        assert entry["task"] in app.tasks
