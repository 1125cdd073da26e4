"""Auto-deleveraging: the ranking served to the engine and the ADL event a fund shortfall triggers."""

from decimal import Decimal

import pytest

from backoffice.models import OperationsLogEntry
from tests.factories import make_account
from tests.trading_risk.conftest import post
from tests.trading_risk.margin_fixtures import (
    liquidation_item,
    make_perpetual,
    make_position,
    set_mark,
    top_up,
)
from trading_risk.models import AdlEvent, InsuranceFund, InsuranceFundEntry, Liquidation

D = Decimal


@pytest.fixture
def perp(db):
    return make_perpetual()


class TestAdlRanking:
    @pytest.mark.parametrize(
        ("side", "mark", "bankruptcy", "expected"),
        [
            ("LONG", "50000", "36000", "0.8929"),
            ("SHORT", "35000", "44000", "0.4861"),
            ("LONG", "38000", "36000", "-0.0026"),
        ],
    )
    def test_scores_positions_as_in_the_published_table(self, engine, perp, side, mark, bankruptcy, expected):
        set_mark(perp, mark)
        make_position(perp, side=side, entry="40000", margin="4000", bankruptcy_price=bankruptcy)

        body = engine.get("/api/v1/adl-ranking/BTCUSDT-PERP").json()

        ranked = body[side.lower()]
        assert len(ranked) == 1
        assert round(D(ranked[0]["score"]), 4) == D(expected)
        assert ranked[0]["quintile"] == 5
        assert body["long" if side == "SHORT" else "short"] == []

    def test_ranks_and_quintiles_reproduce_the_bitmex_queue(self, engine, perp):
        set_mark(perp, "50000")
        # Lower entry → more profit → higher score: the example's scores 3, 6, 1, 4, 5, 2 by account.
        plan = [("1", "10", "39000"), ("2", "10", "30000"), ("3", "20", "45000"), ("4", "30", "36000")]
        plan += [("5", "20", "33000"), ("6", "10", "42000")]
        for key, qty, entry in plan:
            make_position(
                perp,
                account=make_account(external_id=f"Q{key}"),
                qty=qty,
                entry=entry,
                margin=str(D(entry) * D(qty) / 10),
                bankruptcy_price=str(D(entry) * D("0.9")),
            )

        body = engine.get("/api/v1/adl-ranking/BTCUSDT-PERP/").json()

        assert [(r["account_id"], r["quintile"]) for r in body["long"]] == [
            ("Q2", 1),
            ("Q5", 2),
            ("Q4", 3),
            ("Q1", 4),
            ("Q6", 4),
            ("Q3", 5),
        ]
        assert [r["rank"] for r in body["long"]] == [1, 2, 3, 4, 5, 6]

    def test_an_unknown_symbol_or_one_without_a_mark_is_a_404(self, engine, perp):
        assert engine.get("/api/v1/adl-ranking/NOPE").status_code == 404
        response = engine.get("/api/v1/adl-ranking/BTCUSDT-PERP")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


@pytest.fixture
def shorts(perp):
    """Two short counterparties: S1 deep in profit (ranked first), S2 barely."""
    set_mark(perp, "44000")
    first = make_position(
        perp, account=make_account(external_id="S1"), side="SHORT", qty="0.3", entry="60000", bankruptcy_price="66000"
    )
    second = make_position(
        perp, account=make_account(external_id="S2"), side="SHORT", qty="2", entry="45000", bankruptcy_price="49500"
    )
    return first, second


class TestDeleveraging:
    def test_a_shortfall_beyond_the_fund_deleverages_the_rest_against_the_top_of_the_queue(
        self, engine, shorts, risk_officer, second_risk_officer
    ):
        top_up("USDT", "50", requester=risk_officer, approver=second_risk_officer)
        liquidated = make_account(external_id="LIQ")

        response = post(engine, "/api/v1/liquidations/", [liquidation_item(1, liquidated, bp="45000", fill="44900")])

        assert response.status_code == 200
        adl = response.json()["results"][0]["adl"]
        assert adl["side"] == "short"
        assert D(adl["qty"]) == D("0.5")
        assert D(adl["price"]) == 45000
        assert [(a["account_id"], D(a["qty"])) for a in adl["allocations"]] == [("S1", D("0.3")), ("S2", D("0.2"))]
        event = AdlEvent.objects.get()
        assert (event.side, event.qty, event.price) == ("SHORT", D("0.5"), 45000)
        assert (event.fund_balance_at_trigger, event.uncovered, event.mark_price) == (50, 50, 44000)
        assert [r["account_id"] for r in event.ranking] == ["S1", "S2"]
        assert [(a.account.external_id, a.qty, a.rank) for a in event.allocations.order_by("rank")] == [
            ("S1", D("0.3"), 1),
            ("S2", D("0.2"), 2),
        ]
        s1 = event.allocations.get(rank=1)
        assert s1.realised_pnl == D("0.3") * (60000 - 45000)

    def test_the_fund_is_drawn_to_its_floor_and_never_below(self, engine, shorts, risk_officer, second_risk_officer):
        top_up("USDT", "50", requester=risk_officer, approver=second_risk_officer)

        post(engine, "/api/v1/liquidations/", [liquidation_item(1, make_account(), fill="44900")])

        entry = InsuranceFundEntry.objects.get(liquidation__liquidation_id="L1")
        assert (entry.kind, entry.amount, entry.balance_after) == ("ADL", -50, 0)
        assert entry.adl_event == AdlEvent.objects.get()
        assert InsuranceFund.objects.get().balance == 0
        assert Liquidation.objects.get().adl_qty == D("0.5")

    def test_an_empty_fund_deleverages_the_whole_quantity_and_records_it(self, engine, shorts):
        post(engine, "/api/v1/liquidations/", [liquidation_item(1, make_account(), fill="44900")])

        entry = InsuranceFundEntry.objects.get()
        assert (entry.kind, entry.amount, entry.balance_after) == ("ADL", 0, 0)
        assert AdlEvent.objects.get().qty == 1
        assert AdlEvent.objects.get().unallocated_qty == 0

    def test_a_queue_too_short_leaves_the_rest_unallocated(self, engine, perp):
        set_mark(perp, "44000")
        make_position(perp, account=make_account(external_id="ONLY"), side="SHORT", qty="0.25", entry="50000")

        response = post(engine, "/api/v1/liquidations/", [liquidation_item(1, make_account(), fill="44900")])

        adl = response.json()["results"][0]["adl"]
        assert D(adl["unallocated_qty"]) == D("0.75")
        assert AdlEvent.objects.get().unallocated_qty == D("0.75")

    def test_the_liquidated_account_is_never_its_own_counterparty(self, engine, perp):
        set_mark(perp, "44000")
        both = make_account(external_id="BOTH")
        make_position(perp, account=both, side="SHORT", qty="5", entry="50000")

        post(engine, "/api/v1/liquidations/", [liquidation_item(1, both, fill="44900")])

        assert AdlEvent.objects.get().allocations.count() == 0

    def test_the_event_is_audited_with_its_allocation(self, engine, shorts):
        post(engine, "/api/v1/liquidations/", [liquidation_item(1, make_account(), fill="44900")])

        log = OperationsLogEntry.objects.get(action="adl.trigger")
        assert log.target_id == str(AdlEvent.objects.get().pk)
        assert [a["account_id"] for a in log.after["allocations"]] == ["S1", "S2"]
