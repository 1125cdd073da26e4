import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts import restrictions
from accounts.models import Notification, Restriction
from tests.factories import NOW, SYSTEM, make_account
from tests.trading_risk.conftest import order_event, post
from trading_risk import surveillance
from trading_risk.models import Alert, OrderCancelLadder


@pytest.fixture
def account(market):
    return make_account(external_id="SPAM")


def events(start, count, *, at=NOW, account="SPAM", symbol="ETHUSDT"):
    return [
        order_event(
            n, account, symbol=symbol, at=at + timedelta(milliseconds=n), type_="cancelled" if n % 2 else "placed"
        )
        for n in range(start, start + count)
    ]


def ladder_step(account, symbol="ETHUSDT"):
    row = OrderCancelLadder.objects.filter(account=account, symbol=symbol).first()
    return row.step if row else 0


class TestOrderCancelLadder:
    def test_499_events_in_24_h_do_nothing_and_the_500th_warns(self, engine, account):
        post(engine, "/api/v1/order-events/", events(0, 499))
        assert ladder_step(account) == 0

        post(engine, "/api/v1/order-events/", events(499, 1))

        assert ladder_step(account) == 1
        alert = Alert.objects.get(rule="frequent_order_cancel")
        assert (alert.account, alert.symbol, alert.details["events"]) == (account, "ETHUSDT", 500)
        assert sorted(Notification.objects.values_list("channel", flat=True)) == ["EMAIL", "SMS"]
        assert not Restriction.objects.exists()

    def test_events_spread_over_more_than_24_h_are_no_hit(self, engine, account):
        post(engine, "/api/v1/order-events/", events(0, 250, at=NOW - timedelta(hours=24, seconds=1)))

        post(engine, "/api/v1/order-events/", events(250, 250))

        assert ladder_step(account) == 0

    def test_one_crossing_escalates_once_however_many_events_follow(self, engine, account):
        post(engine, "/api/v1/order-events/", events(0, 500))

        post(engine, "/api/v1/order-events/", events(500, 499, at=NOW + timedelta(minutes=1)))

        assert ladder_step(account) == 1
        assert Alert.objects.count() == 1

    def test_the_second_hit_restricts_opening_for_30_minutes_at_once(self, engine, account):
        post(engine, "/api/v1/order-events/", events(0, 500))

        post(engine, "/api/v1/order-events/", events(500, 500, at=NOW + timedelta(hours=1)))

        assert ladder_step(account) == 2
        restriction = Restriction.objects.get()
        assert (restriction.code, restriction.rule) == ("restricted_open", "frequent_order_cancel")
        assert restriction.until - restriction.starts_at == timedelta(minutes=30)
        state = restrictions.account_state(account, now=timezone.now())
        assert (state["can_open"], state["can_close"], state["reduce_only"]) == (False, True, True)
        assert "CALL" in Notification.objects.values_list("channel", flat=True)

    def test_the_third_hit_restricts_opening_and_closing(self, engine, account):
        for hour in range(3):
            post(engine, "/api/v1/order-events/", events(hour * 500, 500, at=NOW + timedelta(hours=hour)))

        assert ladder_step(account) == 3
        assert set(Restriction.objects.values_list("code", flat=True)) == {"restricted_open", "restricted_open_close"}
        assert restrictions.account_state(account, now=timezone.now())["can_trade"] is False

    def test_a_hit_more_than_24_h_after_the_last_warning_starts_the_ladder_again(self, engine, account):
        post(engine, "/api/v1/order-events/", events(0, 500))

        post(engine, "/api/v1/order-events/", events(500, 500, at=NOW + timedelta(hours=25)))

        assert ladder_step(account) == 1
        assert Alert.objects.count() == 2

    def test_symbols_have_separate_ladders(self, engine, account):
        post(engine, "/api/v1/order-events/", events(0, 300) + events(300, 300, symbol="BTCUSDT"))

        assert (ladder_step(account), ladder_step(account, "BTCUSDT")) == (0, 0)

    def test_a_snoozed_rule_does_not_climb(self, engine, account):
        now = timezone.now()
        surveillance.snooze_rule(
            account=account,
            rule="frequent_order_cancel",
            until=now + timedelta(days=1),
            reason="market maker under contract",
            actor=SYSTEM,
            now=now,
        )

        post(engine, "/api/v1/order-events/", events(0, 500))

        assert ladder_step(account) == 0


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class TestConcurrentBatches:
    def test_concurrent_batches_that_cross_the_line_together_climb_one_step(self, market):
        from rest_framework.test import APIClient

        from tests.factories import make_api_client

        account = make_account(external_id="SPAM")
        _, token = make_api_client()
        barrier = threading.Barrier(4)
        statuses = []

        def send(part):
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
            barrier.wait()
            statuses.append(post(client, "/api/v1/order-events/", events(part * 200, 200)).status_code)
            connection.close()

        threads = [threading.Thread(target=send, args=(part,)) for part in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert statuses == [200] * 4
        assert ladder_step(account) == 1
        assert Alert.objects.filter(rule="frequent_order_cancel").count() == 1

    def test_evaluators_racing_on_one_crossing_warn_the_customer_once(self, market):
        from django.utils import timezone

        from backoffice.models import OperationsLogEntry
        from trading_risk import ladder
        from trading_risk.models import OrderEvent

        account = make_account(external_id="SPAM")
        OrderEvent.objects.bulk_create(
            [
                OrderEvent(
                    event_id=f"E{n}",
                    order_id=f"O{n}",
                    account=account,
                    symbol="ETHUSDT",
                    type="placed",
                    side="buy",
                    price=1,
                    qty=1,
                    at=NOW + timedelta(milliseconds=n),
                    received_at=NOW,
                )
                for n in range(600)
            ]
        )
        OrderCancelLadder.objects.create(account=account, symbol="ETHUSDT", updated_at=NOW)
        barrier = threading.Barrier(6)

        def race():
            barrier.wait()
            ladder.evaluate(account_id=account.pk, symbol="ETHUSDT", now=timezone.now())
            connection.close()

        threads = [threading.Thread(target=race) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert ladder_step(account) == 1
        assert OperationsLogEntry.objects.filter(action="order_cancel_ladder.step").count() == 1
        assert Notification.objects.count() == 2


class TestWithoutRedis:
    def test_the_ladder_still_climbs_when_the_counters_are_down(self, engine, account, monkeypatch):
        from redis import RedisError

        from trading_risk import ladder

        def down(pairs):
            raise RedisError("connection refused")

        monkeypatch.setattr(ladder, "_redis_totals", down)

        response = post(engine, "/api/v1/order-events/", events(0, 500))

        assert response.status_code == 200
        assert ladder_step(account) == 1
