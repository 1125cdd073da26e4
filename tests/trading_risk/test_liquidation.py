"""Liquidation fills in (POST /api/v1/liquidations/) and the liquidation queue the engine polls."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backoffice.models import OperationsLogEntry
from tests.factories import NOW, make_account
from tests.trading_risk.conftest import post
from tests.trading_risk.margin_fixtures import (
    liquidation_item,
    make_perpetual,
    make_position,
    set_mark,
    top_up,
)
from trading_risk.models import InsuranceFund, InsuranceFundEntry, Liquidation

D = Decimal
URL = "/api/v1/liquidations/"


@pytest.fixture
def perp(db):
    return make_perpetual()


@pytest.fixture
def trader(db):
    return make_account(external_id="TRADER1", kind="FUTURES")


@pytest.fixture
def funded(perp, risk_officer, second_risk_officer):
    top_up("USDT", "1000", requester=risk_officer, approver=second_risk_officer)
    return InsuranceFund.objects.get(asset="USDT")


class TestReportLiquidations:
    def test_a_fill_better_than_bankruptcy_pays_the_surplus_into_the_fund(self, engine, perp, trader):
        response = post(engine, URL, [liquidation_item(1, trader, fill="45100")])

        assert response.status_code == 200
        body = response.json()
        assert (body["accepted"], body["duplicates"]) == (1, 0)
        assert body["results"] == [
            {
                "liquidation_id": "L1",
                "insurance_fund": {
                    "asset": "USDT",
                    "change": "100.000000000000000000",
                    "balance_after": "100.000000000000000000",
                },
                "adl": None,
            }
        ]
        entry = InsuranceFundEntry.objects.get()
        assert (entry.kind, entry.amount, entry.balance_after) == ("LIQUIDATION_SURPLUS", 100, 100)
        assert entry.liquidation.liquidation_id == "L1"
        assert InsuranceFund.objects.get(asset="USDT").balance == 100

    def test_a_fill_worse_than_bankruptcy_draws_the_shortfall(self, engine, trader, funded):
        response = post(engine, URL, [liquidation_item(1, trader, fill="44900")])

        assert response.status_code == 200
        entry = InsuranceFundEntry.objects.filter(liquidation__isnull=False).get()
        assert (entry.kind, entry.amount, entry.balance_after) == ("LIQUIDATION_SHORTFALL", -100, 900)
        assert response.json()["results"][0]["adl"] is None
        funded.refresh_from_db()
        assert funded.balance == 900

    def test_a_short_filled_below_its_bankruptcy_price_pays_in(self, engine, perp, trader):
        post(engine, URL, [liquidation_item(1, trader, side="short", bp="3000", fill="2940")])

        assert InsuranceFundEntry.objects.get().amount == 60

    def test_a_long_filled_above_its_bankruptcy_price_pays_the_btcmex_example(self, engine, perp, trader):
        post(engine, URL, [liquidation_item(1, trader, bp="3000", fill="3060")])

        assert InsuranceFundEntry.objects.get().amount == 60

    def test_the_batch_is_audited_once_with_its_liquidation_ids(self, engine, perp, trader):
        post(engine, URL, [liquidation_item(1, trader), liquidation_item(2, trader, fill="45050")])

        log = OperationsLogEntry.objects.get(action="liquidations.ingest")
        assert log.after["liquidation_ids"] == ["L1", "L2"]
        assert D(log.after["fund_changes"]["USDT"]) == 150
        assert log.actor.startswith("api:")

    def test_a_resent_item_is_a_duplicate_with_the_same_result(self, engine, perp, trader):
        first = post(engine, URL, [liquidation_item(1, trader)])

        again = post(engine, URL, [liquidation_item(1, trader), liquidation_item(2, trader, fill="45010")])

        assert again.status_code == 200
        assert (again.json()["accepted"], again.json()["duplicates"]) == (1, 1)
        assert again.json()["results"][0] == first.json()["results"][0]
        assert Liquidation.objects.count() == 2
        assert InsuranceFund.objects.get().balance == 110

    def test_the_same_id_with_another_payload_is_a_conflict_and_nothing_is_stored(self, engine, perp, trader):
        post(engine, URL, [liquidation_item(1, trader)])

        response = post(engine, URL, [liquidation_item(2, trader), liquidation_item(1, trader, fill="45200")])

        assert response.status_code == 409
        assert response.json()["error"]["code"] == "idempotency_conflict"
        assert response.json()["error"]["details"] == [
            {"index": 1, "field": "liquidation_id", "message": "already received with a different payload"}
        ]
        assert list(Liquidation.objects.values_list("liquidation_id", flat=True)) == ["L1"]
        assert InsuranceFund.objects.get().balance == 100

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"qty": "0"}, "qty"),
            ({"fill_price": "-1"}, "fill_price"),
            ({"fill_price": "1e5"}, "fill_price"),
            ({"side": "buy"}, "side"),
            ({"at": "2026-03-02T12:00:00"}, "at"),
            ({"tick": "1"}, "tick"),
            ({"liquidation_id": "has space"}, "liquidation_id"),
        ],
    )
    def test_a_bad_item_refuses_the_whole_batch(self, engine, perp, trader, change, field):
        response = post(engine, URL, [liquidation_item(1, trader), liquidation_item(2, trader) | change])

        assert response.status_code == 400
        assert [(d["index"], d["field"]) for d in response.json()["error"]["details"]] == [(1, field)]
        assert not Liquidation.objects.exists()
        assert not InsuranceFundEntry.objects.exists()

    def test_unknown_accounts_and_symbols_are_named_and_nothing_is_stored(self, engine, perp, trader):
        items = [liquidation_item(1, trader), liquidation_item(2, trader, symbol="NOPE"), liquidation_item(3, trader)]
        items[2]["account_id"] = "GHOST"

        response = post(engine, URL, items)

        assert response.status_code == 400
        details = response.json()["error"]["details"]
        assert [(d["index"], d["field"]) for d in details] == [(1, "symbol"), (2, "account_id")]
        assert not Liquidation.objects.exists()
        assert not InsuranceFund.objects.exists()

    def test_a_repeated_id_inside_one_batch_is_refused(self, engine, perp, trader):
        response = post(engine, URL, [liquidation_item(1, trader), liquidation_item(1, trader)])

        assert response.status_code == 400
        assert response.json()["error"]["details"][0]["field"] == "liquidation_id"

    def test_answers_without_a_trailing_slash_and_needs_the_events_scope(self, engine, perp, trader, client):
        from rest_framework.test import APIClient

        from tests.factories import make_api_client

        _, token = make_api_client(scopes=("decisions",))
        other = APIClient()
        other.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

        assert post(engine, "/api/v1/liquidations", [liquidation_item(1, trader)]).status_code == 200
        assert post(APIClient(), URL, [liquidation_item(2, trader)]).status_code == 401
        assert post(other, URL, [liquidation_item(2, trader)]).status_code == 403
        assert Liquidation.objects.count() == 1


class TestLiquidationQueue:
    QUEUE = "/api/v1/liquidation-queue"

    def test_lists_positions_whose_mark_crossed_their_liquidation_price(self, engine, perp):
        set_mark(perp, "45000")
        long_past = make_position(perp, liquidation_price="45200", bankruptcy_price="45000")
        make_position(perp, liquidation_price="44000")
        short_past = make_position(
            perp, side="SHORT", entry="44000", liquidation_price="44900", bankruptcy_price="48400"
        )
        make_position(perp, side="SHORT", liquidation_price="45500")

        response = engine.get(self.QUEUE, {"symbol": "BTCUSDT-PERP"})

        assert response.status_code == 200
        positions = response.json()["positions"]
        assert [p["account_id"] for p in positions] == [long_past.account.external_id, short_past.account.external_id]
        assert positions[0] | {"mark_at": None, "position_at": None} == {
            "cursor": str(long_past.pk),
            "account_id": long_past.account.external_id,
            "symbol": "BTCUSDT-PERP",
            "side": "long",
            "qty": "1.000000000000000000",
            "entry_price": "50000.000000000000000000",
            "margin": "5000.000000000000000000",
            "liquidation_price": "45200.000000000000000000",
            "bankruptcy_price": "45000.000000000000000000",
            "mark_price": "45000.000000000000000000",
            "mark_at": None,
            "past_by": "200.000000000000000000",
            "past_by_ratio": "0.004424778761",
            "position_at": None,
        }
        assert positions[1]["past_by"] == "100.000000000000000000"

    def test_uses_only_the_latest_mark(self, engine, perp):
        set_mark(perp, "40000", at=NOW.replace(hour=1))
        set_mark(perp, "46000")
        make_position(perp, liquidation_price="45200")

        assert engine.get(self.QUEUE).json()["positions"] == []

    def test_pages_with_a_cursor_like_the_restriction_feed(self, engine, perp):
        set_mark(perp, "40000")
        positions = [make_position(perp, liquidation_price="45200") for _ in range(3)]

        first = engine.get(self.QUEUE, {"limit": "2"}).json()
        second = engine.get(f"{self.QUEUE}/", {"limit": "2", "after": first["next_cursor"]}).json()

        assert [p["cursor"] for p in first["positions"]] == [str(p.pk) for p in positions[:2]]
        assert first["has_more"] is True
        assert [p["cursor"] for p in second["positions"]] == [str(positions[2].pk)]
        assert second["has_more"] is False
        assert second["next_cursor"] == str(positions[2].pk)

    def test_reads_a_fixed_number_of_queries_however_long_the_queue(self, engine, perp):
        set_mark(perp, "40000")
        make_position(perp, liquidation_price="45200")
        engine.get(self.QUEUE)  # the token is looked up once, then cached
        with CaptureQueriesContext(connection) as few:
            engine.get(self.QUEUE)
        for _ in range(10):
            make_position(perp, liquidation_price="45200")
        with CaptureQueriesContext(connection) as many:
            response = engine.get(self.QUEUE)

        assert len(response.json()["positions"]) == 11
        assert len(many) == len(few)

    @pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "x"}, {"after": "-1"}, {"symbol": "btc"}])
    def test_bad_parameters_are_a_400_in_the_error_format(self, engine, perp, query):
        response = engine.get(self.QUEUE, query)

        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_request"

    def test_needs_a_token(self, client, perp):
        assert client.get(self.QUEUE).status_code == 401


class TestOutOfRange:
    def test_a_fund_change_too_large_to_store_is_a_400_not_a_500(self, engine, perp, trader):
        item = liquidation_item(1, trader, qty="99999999999999999999", bp="1", fill="99999999999999999999")

        response = post(engine, URL, [item])

        assert response.status_code == 400
        assert response.json()["error"]["details"][0]["field"] == "fill_price"
        assert not Liquidation.objects.exists()

    def test_large_amounts_keep_all_eighteen_places(self, engine, perp, trader):
        item = liquidation_item(
            1, trader, qty="1000000000.123456789012345678", bp="45000", fill="45100.000000000000000001"
        )

        response = post(engine, URL, [item])

        assert response.status_code == 200
        assert InsuranceFundEntry.objects.get().amount == D("100000000012.345678902234567800")
        assert InsuranceFund.objects.get().balance == D("100000000012.345678902234567800")
