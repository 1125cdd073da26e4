from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Customer, KnownDevice, Notification, Restriction
from backoffice.models import OperationsLogEntry
from tests.factories import NOW, SYSTEM, make_account, make_customer
from tests.trading_risk.conftest import post, trade
from trading_risk import detectors, surveillance
from trading_risk.models import AccountDailyActivity, Alert, DetectorRun, LinkedGroup

END = NOW + timedelta(hours=1)
_n = iter(range(10**6))


def trades(client, *pairs, qty="1000", at=NOW, symbol="BTCUSDT"):
    body = [
        trade(next(_n), b.external_id, s.external_id, qty=qty, at=at, symbol=symbol, price="100000") for b, s in pairs
    ]
    response = post(client, "/api/v1/trades/", body)
    assert response.status_code == 200, response.content


def alerts(rule):
    return sorted(Alert.objects.filter(rule=rule).values_list("account__external_id", flat=True))


@pytest.fixture
def owner(market):
    customer = make_customer()
    return make_account(customer=customer, external_id="OWN1"), make_account(customer=customer, external_id="OWN2")


@pytest.fixture
def stranger(market):
    return make_account(external_id="OTHER")


class TestSelfTrade:
    @pytest.mark.parametrize(("qty", "raised"), [("999.99999999", []), ("1000", ["OWN1"])])
    def test_raises_an_alert_at_1000_btc_with_the_account_on_both_sides(self, engine, owner, qty, raised):
        trades(engine, (owner[0], owner[0]), qty=qty)

        detectors.self_trade(window_end=END, now=NOW)

        assert alerts("self_trade") == raised

    @pytest.mark.parametrize(
        ("at", "counted"),
        [(END - timedelta(hours=24), True), (END - timedelta(hours=24, microseconds=1), False), (END, False)],
    )
    def test_counts_trades_from_the_window_start_up_to_but_excluding_its_end(self, engine, owner, at, counted):
        trades(engine, (owner[0], owner[0]), at=at)

        detectors.self_trade(window_end=END, now=NOW)

        assert bool(alerts("self_trade")) == counted

    def test_a_rerun_opens_nothing_twice(self, engine, owner):
        trades(engine, (owner[0], owner[0]))
        detectors.self_trade(window_end=END, now=NOW)

        detectors.self_trade(window_end=END, now=NOW)
        detectors.self_trade(window_end=END + timedelta(hours=1), now=NOW)

        assert Alert.objects.count() == 1
        assert OperationsLogEntry.objects.filter(action="alert.open").count() == 1

    def test_a_snoozed_account_raises_nothing(self, engine, owner):
        surveillance.snooze_rule(
            account=owner[0],
            rule="self_trade",
            until=timezone.now() + timedelta(days=1),
            reason="internal hedging account",
            actor=SYSTEM,
            now=timezone.now(),
        )
        trades(engine, (owner[0], owner[0]))

        detectors.self_trade(window_end=END, now=timezone.now())

        assert alerts("self_trade") == []


class TestWashTrading:
    def test_trades_between_two_accounts_of_one_owner_alert_both(self, engine, owner, stranger):
        trades(engine, (owner[0], owner[1]), qty="600")
        trades(engine, (owner[1], owner[0]), qty="400")
        trades(engine, (owner[0], stranger), qty="5000")

        detectors.wash_trading(window_end=END, now=NOW)

        assert alerts("wash_trading") == ["OWN1", "OWN2"]
        assert Alert.objects.filter(rule="wash_trading").first().details["volume_btc"] == "1000.000000000000000000"

    def test_below_the_threshold_nothing_is_raised(self, engine, owner):
        trades(engine, (owner[0], owner[1]), qty="999")

        detectors.wash_trading(window_end=END, now=NOW)

        assert alerts("wash_trading") == []

    def test_customers_in_one_linked_group_count_as_one_owner(self, engine, owner, stranger):
        group = LinkedGroup.objects.create(name="shared laptop", basis="DEVICE", created_at=NOW, created_by="rita")
        group.customers.add(owner[0].customer, stranger.customer)
        trades(engine, (stranger, owner[1]), qty="1000")

        detectors.wash_trading(window_end=END, now=NOW)

        assert alerts("wash_trading") == ["OTHER", "OWN2"]

    def test_customers_sharing_a_device_are_linked(self, owner, stranger):
        for customer in (owner[0].customer, stranger.customer):
            KnownDevice.objects.create(customer=customer, device_id="dev-1", first_seen_at=NOW, last_seen_at=NOW)

        detectors.link_shared_identifiers(now=NOW)

        group = LinkedGroup.objects.get(basis="DEVICE")
        assert group.evidence == "device_id:dev-1"
        assert set(group.customers.all()) == {owner[0].customer, stranger.customer}

    def test_customers_sharing_a_phone_number_written_differently_are_linked(self, owner, stranger):
        Customer.objects.filter(pk=owner[0].customer.pk).update(phone="+44 20 7946 0018")
        Customer.objects.filter(pk=stranger.customer.pk).update(phone="+44-20-7946-0018")

        detectors.link_shared_identifiers(now=NOW)

        group = LinkedGroup.objects.get(basis="KYC", evidence="phone:442079460018")
        assert set(group.customers.all()) == {owner[0].customer, stranger.customer}

    def test_customers_sharing_an_email_address_in_any_case_are_linked(self, owner, stranger):
        Customer.objects.filter(pk=owner[0].customer.pk).update(email="Same.Person@example.com")
        Customer.objects.filter(pk=stranger.customer.pk).update(email="same.person@EXAMPLE.com")

        detectors.link_shared_identifiers(now=NOW)

        group = LinkedGroup.objects.get(basis="KYC", evidence="email:same.person@example.com")
        assert set(group.customers.all()) == {owner[0].customer, stranger.customer}

    @pytest.mark.parametrize(("customers", "linked"), [(20, True), (21, False)])
    def test_a_value_shared_by_more_customers_than_one_owner_could_have_links_nobody(self, db, customers, linked):
        for _ in range(customers):
            make_customer(email="desk@example.com")

        detectors.link_shared_identifiers(now=NOW)

        assert LinkedGroup.objects.filter(evidence="email:desk@example.com").exists() is linked


class TestExcessiveTrading:
    def test_1000_btc_in_24_h_warns_the_customer(self, engine, owner, stranger):
        trades(engine, (owner[0], stranger), qty="1000")

        detectors.excessive_trading(window_end=END, now=timezone.now())

        assert alerts("excessive_trading") == ["OTHER", "OWN1"]
        assert Notification.objects.filter(template_code="surveillance_warning").count() == 4
        assert not Restriction.objects.exists()

    def test_5000_btc_in_24_h_bans_trading(self, engine, owner, stranger):
        trades(engine, (owner[0], stranger), qty="5000")

        detectors.excessive_trading(window_end=END, now=timezone.now())

        assert set(Restriction.objects.values_list("code", "rule")) == {("trading_banned", "excessive_trading")}
        assert Restriction.objects.count() == 2


class TestBehaviourAnomaly:
    def test_flags_a_day_far_above_the_accounts_own_history(self, engine, owner, stranger):
        day = NOW.date()
        for back in range(1, 31):
            AccountDailyActivity.objects.create(
                account=owner[0],
                day=day - timedelta(days=back),
                volume_btc=Decimal(10 + back % 3),
                trades=5,
                order_events=20,
            )
        trades(engine, (owner[0], stranger), qty="200")
        window_end = NOW.replace(hour=0) + timedelta(days=1)

        detectors.daily_activity(window_end=window_end, now=NOW)
        detectors.behaviour_anomaly(window_end=window_end, now=timezone.now())

        assert alerts("behaviour_anomaly") == ["OWN1"]  # the stranger has no history to depart from


class TestRunDetectors:
    def test_a_finished_run_is_not_repeated_and_an_unfinished_one_is_resumed(self, engine, owner):
        trades(engine, (owner[0], owner[0]))
        DetectorRun.objects.create(detector="self_trade", window_end=END, started_at=NOW)  # crashed before

        first = detectors.run_detectors(detectors=detectors.HOURLY, window_end=END, now=NOW)
        second = detectors.run_detectors(detectors=detectors.HOURLY, window_end=END, now=NOW)

        assert first["self_trade"] == 1
        assert second["self_trade"] == 1
        assert Alert.objects.filter(rule="self_trade").count() == 1
        assert DetectorRun.objects.filter(finished_at__isnull=False).count() == 3


class TestTasks:
    def test_the_hourly_task_runs_the_rolling_detectors_for_a_given_window(self, engine, owner):
        from trading_risk import tasks

        trades(engine, (owner[0], owner[0]))

        result = tasks.run_hourly_surveillance.delay(window_end=END.isoformat()).get()

        assert result == {"self_trade": 1, "wash_trading": 0, "excessive_trading": 1}

    def test_partition_upkeep_creates_the_days_ahead(self, db):
        from trading_risk import partitions, tasks

        result = tasks.maintain_partitions.delay().get()

        tomorrow = (timezone.now() + timedelta(days=1)).date()
        assert partitions.partition_name("trading_risk_trade", tomorrow) in (
            partitions.existing_partitions("trading_risk_trade")
        )
        assert result["dropped"] == []
