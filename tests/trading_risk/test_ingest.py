from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import NOW, make_account
from tests.trading_risk.conftest import order_event, post, trade
from trading_risk import partitions
from trading_risk.models import OrderEvent, OrderEventKey, Trade, TradeKey


@pytest.fixture
def accounts(market):
    return make_account(external_id="ACC1"), make_account(external_id="ACC2")


class TestPostTrades:
    def test_stores_a_batch_and_values_each_trade_in_btc(self, engine, accounts):
        response = post(engine, "/api/v1/trades/", [trade(1, "ACC1", "ACC2", qty="25"), trade(2, "ACC2", "ACC1")])

        assert response.status_code == 200, response.content
        assert response.json() == {"accepted": 2, "duplicates": 0}
        stored = Trade.objects.get(trade_id="T1")
        assert (stored.value_btc, stored.buy_account_id, stored.buy_customer_id) == (
            Decimal(1),
            accounts[0].pk,
            accounts[0].customer_id,
        )

    def test_the_same_batch_again_is_all_duplicates_and_stores_nothing_new(self, engine, accounts):
        batch = [trade(1, "ACC1", "ACC2"), trade(2, "ACC2", "ACC1")]
        post(engine, "/api/v1/trades/", batch)

        response = post(engine, "/api/v1/trades/", [*batch, trade(3, "ACC1", "ACC2")])

        assert response.json() == {"accepted": 1, "duplicates": 2}
        assert Trade.objects.count() == 3

    def test_the_same_id_with_another_payload_is_a_409_and_nothing_of_the_batch_is_stored(self, engine, accounts):
        post(engine, "/api/v1/trades/", [trade(1, "ACC1", "ACC2")])

        response = post(engine, "/api/v1/trades/", [trade(2, "ACC1", "ACC2"), trade(1, "ACC1", "ACC2", qty="2")])

        assert response.status_code == 409
        assert response.json()["error"]["details"] == [
            {"index": 1, "field": "trade_id", "message": "already received with a different payload"}
        ]
        assert list(TradeKey.objects.values_list("trade_id", flat=True)) == ["T1"]
        assert Trade.objects.count() == 1

    def test_the_same_moment_in_another_offset_is_the_same_payload(self, engine, accounts):
        post(engine, "/api/v1/trades/", [trade(1, "ACC1", "ACC2")])

        response = post(engine, "/api/v1/trades/", [trade(1, "ACC1", "ACC2", executed_at="2026-03-02T13:00:00+01:00")])

        assert response.json() == {"accepted": 0, "duplicates": 1}

    def test_the_same_amount_written_differently_is_the_same_payload(self, engine, accounts):
        post(engine, "/api/v1/trades/", [trade(1, "ACC1", "ACC2", qty="1.5")])

        response = post(engine, "/api/v1/trades/", [trade(1, "ACC1", "ACC2", qty="1.50")])

        assert response.json() == {"accepted": 0, "duplicates": 1}

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"qty": 1.5}, "qty"),
            ({"qty": "1e3"}, "qty"),
            ({"price": "0"}, "price"),
            ({"qty": "0.000"}, "qty"),
            ({"aggressor": "both"}, "aggressor"),
            ({"executed_at": "2026-03-02T12:00:00"}, "executed_at"),
            ({"fee": "0.1"}, "fee"),
            ({"buy_account_id": "NOPE"}, "buy_account_id"),
            ({"symbol": "NOPEUSDT"}, "symbol"),
            ({"trade_id": "bad id"}, "trade_id"),
            ({"trade_id": "T8\nT9"}, "trade_id"),
            ({"buy_order_id": ""}, "buy_order_id"),
            ({"symbol": "ethusdt"}, "symbol"),
            ({"price": "1.0000000000000000001"}, "price"),
        ],
    )
    def test_a_bad_item_is_a_400_naming_it_and_nothing_is_stored(self, engine, accounts, change, field):
        response = post(engine, "/api/v1/trades/", [trade(1, "ACC1", "ACC2"), trade(2, "ACC1", "ACC2", **change)])

        assert response.status_code == 400, response.content
        assert response.json()["error"]["details"][0]["index"] == 1
        assert response.json()["error"]["details"][0]["field"] == field
        assert not TradeKey.objects.exists()

    def test_a_mixed_resend_refuses_every_changed_item_in_order_and_stores_nothing(self, engine, accounts):
        post(engine, "/api/v1/trades/", [trade(1, "ACC1", "ACC2"), trade(2, "ACC1", "ACC2"), trade(3, "ACC1", "ACC2")])

        response = post(
            engine,
            "/api/v1/trades/",
            [
                trade(3, "ACC1", "ACC2", price="4001"),
                trade(4, "ACC1", "ACC2"),
                trade(1, "ACC2", "ACC1"),
                trade(2, "ACC1", "ACC2"),
            ],
        )

        assert response.status_code == 409
        assert [d["index"] for d in response.json()["error"]["details"]] == [0, 2]
        assert sorted(TradeKey.objects.values_list("trade_id", flat=True)) == ["T1", "T2", "T3"]
        assert Trade.objects.count() == 3

    def test_a_partly_resent_batch_stores_only_the_new_trades_once(self, engine, accounts):
        # T1 sorts before the new IDs and T9 after them: the batch's keys meet an old one first and last.
        post(engine, "/api/v1/trades/", [trade(n, "ACC1", "ACC2", qty="2") for n in (1, 9)])

        response = post(engine, "/api/v1/trades/", [trade(n, "ACC1", "ACC2", qty="2") for n in (5, 1, 6, 9)])

        assert response.json() == {"accepted": 2, "duplicates": 2}
        assert sorted(Trade.objects.values_list("trade_id", flat=True)) == ["T1", "T5", "T6", "T9"]
        assert sorted(TradeKey.objects.values_list("trade_id", flat=True)) == ["T1", "T5", "T6", "T9"]
        assert Trade.objects.get(trade_id="T6").value_btc == Decimal("0.08")

    def test_an_old_key_sorting_after_the_new_ones_still_makes_the_batch_partly_duplicate(self, engine, accounts):
        post(engine, "/api/v1/trades/", [trade(9, "ACC1", "ACC2")])

        response = post(engine, "/api/v1/trades/", [trade(n, "ACC1", "ACC2") for n in (9, 5, 6)])

        assert response.json() == {"accepted": 2, "duplicates": 1}
        assert Trade.objects.count() == 3

    def test_the_same_id_twice_in_one_batch_is_a_400_even_with_different_payloads(self, engine, accounts):
        response = post(engine, "/api/v1/trades/", [trade(1, "ACC1", "ACC2"), trade(1, "ACC1", "ACC2", qty="3")])

        assert response.status_code == 400
        assert response.json()["error"]["details"] == [
            {"index": 1, "field": "trade_id", "message": "duplicate of item 0 in this batch"}
        ]
        assert not TradeKey.objects.exists()

    def test_stores_the_instant_sent_with_its_offset_to_the_microsecond(self, engine, accounts):
        post(engine, "/api/v1/trades/", [trade(1, "ACC1", "ACC2", executed_at="2026-03-02T13:00:00.123456+01:00")])

        assert Trade.objects.get().executed_at == NOW.replace(microsecond=123456)
        assert TradeKey.objects.get().executed_at == NOW.replace(microsecond=123456)

    def test_the_payload_digest_is_the_typed_values_hash_so_earlier_keys_keep_matching(self, engine, accounts):
        post(engine, "/api/v1/trades/", [trade(1, "ACC1", "ACC2", qty="1.50")])

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT hash_record_extended(ROW('ETHUSDT'::varchar(32), 4000::numeric(38, 18), 1.5::numeric(38, 18), "
                "%s::bigint, %s::bigint, 'B1'::varchar(64), 'S1'::varchar(64), 'buy'::varchar(4), %s::timestamptz), 0)",
                [accounts[0].pk, accounts[1].pk, NOW],
            )
            expected = cursor.fetchone()[0]
        assert TradeKey.objects.get().digest == expected

    def test_names_every_unknown_account_and_symbol_by_item(self, engine, accounts):
        response = post(
            engine,
            "/api/v1/trades/",
            [
                trade(1, "ACC1", "ACC2"),
                trade(2, "ACC1", "GHOST"),
                trade(3, "NOBODY", "ACC2", symbol="NOPEUSDT"),
            ],
        )

        assert response.status_code == 400
        assert response.json()["error"]["details"] == [
            {"index": 1, "field": "sell_account_id", "message": "unknown account"},
            {"index": 2, "field": "symbol", "message": "unknown instrument"},
            {"index": 2, "field": "buy_account_id", "message": "unknown account"},
        ]
        assert not TradeKey.objects.exists()

    def test_duplicates_inside_one_batch_are_a_400(self, engine, accounts):
        response = post(engine, "/api/v1/trades/", [trade(1, "ACC1", "ACC2"), trade(1, "ACC1", "ACC2")])

        assert response.status_code == 400
        assert response.json()["error"]["details"][0]["message"] == "duplicate of item 0 in this batch"

    def test_more_than_ten_thousand_items_is_a_400(self, engine, accounts, settings):
        settings.API_MAX_BATCH_ITEMS = 3

        response = post(engine, "/api/v1/trades/", [trade(n, "ACC1", "ACC2") for n in range(4)])

        assert response.status_code == 400
        assert response.json()["error"]["code"] == "batch_too_large"

    def test_an_unpriced_trade_is_stored_without_a_value(self, engine, accounts):
        response = post(engine, "/api/v1/trades/", [trade(1, "ACC1", "ACC2", at=NOW - timedelta(days=5))])

        assert response.json()["accepted"] == 1
        assert Trade.objects.get().value_btc is None

    def test_a_batch_costs_a_fixed_number_of_queries(self, engine, accounts):
        post(engine, "/api/v1/trades/", [trade(0, "ACC1", "ACC2")])

        with CaptureQueriesContext(connection) as queries:
            post(engine, "/api/v1/trades/", [trade(n, "ACC1", "ACC2") for n in range(1, 200)])

        assert len(queries) <= 10


class TestPartitions:
    def test_rows_go_to_their_days_partition_or_else_to_the_default_one(self, engine, accounts):
        partitions.ensure_partitions(start=NOW.date(), days=1)

        later = NOW + timedelta(days=3)

        post(engine, "/api/v1/trades/", [trade(1, "ACC1", "ACC2"), trade(2, "ACC1", "ACC2", at=later)])

        assert partitions.partition_of("trading_risk_trade", trade_id="T1") == "trading_risk_trade_p20260302"
        assert partitions.partition_of("trading_risk_trade", trade_id="T2") == "trading_risk_trade_default"

    def test_creating_a_day_moves_its_rows_out_of_the_default_partition(self, engine, accounts):
        post(engine, "/api/v1/order-events/", [order_event(1, "ACC1", at=NOW + timedelta(days=3))])

        created = partitions.ensure_partitions(start=(NOW + timedelta(days=3)).date(), days=1)

        assert "trading_risk_orderevent_p20260305" in created
        assert partitions.partition_of("trading_risk_orderevent", event_id="E1") == "trading_risk_orderevent_p20260305"

    def test_retention_drops_old_days_with_their_idempotency_records(self, engine, accounts):
        partitions.ensure_partitions(start=NOW.date(), days=2)
        post(
            engine, "/api/v1/trades/", [trade(1, "ACC1", "ACC2"), trade(2, "ACC1", "ACC2", at=NOW + timedelta(days=1))]
        )

        dropped = partitions.drop_partitions_before(cutoff=(NOW + timedelta(days=1)).date())

        assert "trading_risk_trade_p20260302" in dropped
        assert list(TradeKey.objects.values_list("trade_id", flat=True)) == ["T2"]


class TestPostOrderEvents:
    def test_stores_events_idempotently(self, engine, accounts):
        batch = [order_event(1, "ACC1"), order_event(2, "ACC1", type_="cancelled")]

        first = post(engine, "/api/v1/order-events/", batch)
        again = post(engine, "/api/v1/order-events/", batch)

        assert (first.json(), again.json()) == ({"accepted": 2, "duplicates": 0}, {"accepted": 0, "duplicates": 2})
        assert OrderEvent.objects.count() == 2

    def test_an_unknown_account_is_a_400_and_nothing_is_stored(self, engine, accounts):
        response = post(engine, "/api/v1/order-events/", [order_event(1, "ACC1"), order_event(2, "GHOST")])

        assert response.status_code == 400
        assert response.json()["error"]["details"] == [
            {"index": 1, "field": "account_id", "message": "unknown account"}
        ]
        assert not OrderEventKey.objects.exists()

    def test_a_partly_resent_batch_counts_duplicates_and_feeds_only_new_events_to_the_counter(self, engine, accounts):
        from backoffice.redis_client import get_redis
        from trading_risk import ladder

        post(engine, "/api/v1/order-events/", [order_event(1, "ACC1"), order_event(2, "ACC1")])

        response = post(engine, "/api/v1/order-events/", [order_event(n, "ACC1") for n in (2, 3, 1, 4)])

        assert response.json() == {"accepted": 2, "duplicates": 2}
        assert sorted(OrderEventKey.objects.values_list("event_id", flat=True)) == ["E1", "E2", "E3", "E4"]
        counts = get_redis().hgetall(ladder.counter_key(accounts[0].pk, "ETHUSDT"))
        assert sum(int(n) for n in counts.values()) == 4

    def test_counts_each_new_event_under_its_minute_since_the_epoch(self, engine, accounts):
        from backoffice.redis_client import get_redis
        from trading_risk import ladder

        minute = int(NOW.timestamp()) // 60
        post(
            engine,
            "/api/v1/order-events/",
            [
                order_event(1, "ACC1", at=NOW - timedelta(microseconds=1)),
                order_event(2, "ACC1"),
                order_event(3, "ACC1", at=NOW + timedelta(seconds=59, microseconds=999999)),
                order_event(4, "ACC1", at=NOW + timedelta(seconds=60)),
            ],
        )

        counts = get_redis().hgetall(ladder.counter_key(accounts[0].pk, "ETHUSDT"))
        assert {int(m): int(n) for m, n in counts.items()} == {minute - 1: 1, minute: 2, minute + 1: 1}

    def test_a_changed_payload_among_new_events_is_a_409_naming_it_and_stores_nothing(self, engine, accounts):
        post(engine, "/api/v1/order-events/", [order_event(1, "ACC1")])

        response = post(
            engine,
            "/api/v1/order-events/",
            [order_event(2, "ACC1"), order_event(1, "ACC1", qty="2"), order_event(3, "ACC2")],
        )

        assert response.status_code == 409
        assert response.json()["error"]["details"] == [
            {"index": 1, "field": "event_id", "message": "already received with a different payload"}
        ]
        assert list(OrderEventKey.objects.values_list("event_id", flat=True)) == ["E1"]
        assert OrderEvent.objects.count() == 1

    def test_a_changed_payload_is_a_409(self, engine, accounts):
        post(engine, "/api/v1/order-events/", [order_event(1, "ACC1")])

        response = post(engine, "/api/v1/order-events/", [order_event(1, "ACC1", side="sell")])

        assert response.status_code == 409


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class TestConcurrentResends:
    def test_the_same_batch_sent_twice_at_once_is_stored_once(self, market):
        import threading

        from django.db import connection as default_connection
        from rest_framework.test import APIClient

        from tests.factories import make_api_client

        make_account(external_id="ACC1")
        make_account(external_id="ACC2")
        _, token = make_api_client()
        batch = [trade(n, "ACC1", "ACC2") for n in range(300)]
        barrier, answers = threading.Barrier(3), []

        def send():
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
            barrier.wait()
            answers.append(post(client, "/api/v1/trades/", batch).json())
            default_connection.close()

        threads = [threading.Thread(target=send) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(a["accepted"] for a in answers) == [0, 0, 300]
        assert Trade.objects.count() == 300
