"""The insurance fund ledger: manual changes through maker-checker, append-only entries, the floor, locking."""

import threading
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from backoffice import approvals, parameters
from backoffice.audit import Actor
from backoffice.models import OperationsLogEntry, ParameterValue
from tests.factories import NOW, SYSTEM, make_account, make_staff
from tests.trading_risk.margin_fixtures import make_perpetual, set_mark, top_up
from trading_risk import liquidation
from trading_risk.models import AdlEvent, InsuranceFund, InsuranceFundEntry, Liquidation

D = Decimal


def shortfall(n, account, *, fill="44900"):
    return liquidation.LiquidationIn(
        liquidation_id=f"L{n}",
        account_id=account.external_id,
        symbol="BTCUSDT-PERP",
        side="LONG",
        qty=D(1),
        bankruptcy_price=D(45000),
        fill_price=D(fill),
        at=NOW,
    )


class TestManualChanges:
    def test_a_top_up_applies_only_when_another_person_approves_it(self, risk_officer, second_risk_officer):
        change = liquidation.request_adjustment(
            asset="USDT",
            kind="TOP_UP",
            amount=D(500),
            reason="seed",
            actor=Actor.staff(risk_officer),
            now=timezone.now(),
        )
        assert not InsuranceFundEntry.objects.exists()

        with pytest.raises(approvals.SelfApproval):
            approvals.approve_change(
                change_request=change, actor=Actor.staff(risk_officer), reason="", now=timezone.now()
            )
        approvals.approve_change(
            change_request=change, actor=Actor.staff(second_risk_officer), reason="", now=timezone.now()
        )

        entry = InsuranceFundEntry.objects.get()
        assert (entry.kind, entry.amount, entry.balance_after, entry.change_request) == ("TOP_UP", 500, 500, change)
        assert InsuranceFund.objects.get(asset="USDT").balance == 500
        assert OperationsLogEntry.objects.filter(action="insurance_fund.adjust", target_id=str(entry.pk)).exists()

    def test_a_withdrawal_takes_money_out_through_the_same_approval(self, risk_officer, second_risk_officer):
        top_up("BTC", "2", requester=risk_officer, approver=second_risk_officer)

        top_up("BTC", "0.5", requester=risk_officer, approver=second_risk_officer, kind="WITHDRAWAL")

        assert list(InsuranceFundEntry.objects.order_by("pk").values_list("kind", "amount", "balance_after")) == [
            ("TOP_UP", 2, 2),
            ("WITHDRAWAL", D("-0.5"), D("1.5")),
        ]

    def test_a_withdrawal_below_the_floor_is_refused_when_requested(self, risk_officer, second_risk_officer):
        top_up("USDT", "100", requester=risk_officer, approver=second_risk_officer)

        with pytest.raises(liquidation.FundTooSmall):
            liquidation.request_adjustment(
                asset="USDT", kind="WITHDRAWAL", amount=D(101), reason="x", actor=Actor.staff(risk_officer), now=NOW
            )

    def test_a_withdrawal_the_fund_no_longer_covers_at_approval_is_refused(self, risk_officer, second_risk_officer, db):
        top_up("USDT", "100", requester=risk_officer, approver=second_risk_officer)
        change = liquidation.request_adjustment(
            asset="USDT",
            kind="WITHDRAWAL",
            amount=D(80),
            reason="x",
            actor=Actor.staff(risk_officer),
            now=timezone.now(),
        )
        make_perpetual()
        liquidation.record_liquidations(items=[shortfall(1, make_account())], actor=SYSTEM, now=timezone.now())

        with pytest.raises(liquidation.FundTooSmall):
            approvals.approve_change(
                change_request=change, actor=Actor.staff(second_risk_officer), reason="", now=timezone.now()
            )

        assert InsuranceFund.objects.get().balance == 0

    def test_approving_needs_the_fund_permission(self, risk_officer):
        auditor = make_staff(roles=("auditor",))
        change = liquidation.request_adjustment(
            asset="USDT", kind="TOP_UP", amount=D(1), reason="x", actor=Actor.staff(risk_officer), now=timezone.now()
        )

        with pytest.raises(approvals.NotAllowed):
            approvals.approve_change(change_request=change, actor=Actor.staff(auditor), reason="", now=timezone.now())

    @pytest.mark.parametrize(
        ("payload", "field"), [({"amount": "0"}, "amount"), ({"amount": "abc"}, "amount"), ({"kind": "ADL"}, "kind")]
    )
    def test_a_bad_request_names_the_field(self, risk_officer, payload, field):
        with pytest.raises(approvals.InvalidInput) as refused:
            approvals.request_change(
                action=liquidation.ADJUST_ACTION,
                payload={"asset": "USDT", "kind": "TOP_UP", "amount": "1"} | payload,
                actor=Actor.staff(risk_officer),
                reason="x",
                now=NOW,
            )

        assert refused.value.details[0]["field"] == field


class TestLedger:
    def test_entries_cannot_be_changed_or_removed(self, risk_officer, second_risk_officer):
        top_up("USDT", "10", requester=risk_officer, approver=second_risk_officer)
        entry = InsuranceFundEntry.objects.get()

        with pytest.raises(DatabaseError), transaction.atomic():
            InsuranceFundEntry.objects.filter(pk=entry.pk).update(amount=D(1_000_000))
        with pytest.raises(DatabaseError), transaction.atomic():
            entry.delete()

        assert InsuranceFundEntry.objects.get().amount == 10

    def test_liquidations_cannot_be_rewritten(self, db):
        make_perpetual()
        liquidation.record_liquidations(items=[shortfall(1, make_account(), fill="45100")], actor=SYSTEM, now=NOW)

        with pytest.raises(DatabaseError), transaction.atomic():
            Liquidation.objects.update(fill_price=D(1))

    def test_the_balance_after_each_entry_is_the_running_sum(self, risk_officer, second_risk_officer):
        make_perpetual()
        top_up("USDT", "150", requester=risk_officer, approver=second_risk_officer)
        account = make_account()
        fills = ["45100", "44900", "45030", "44800", "44700"]
        for n, fill in enumerate(fills):
            liquidation.record_liquidations(items=[shortfall(n, account, fill=fill)], actor=SYSTEM, now=NOW)

        running, entries = D(0), list(InsuranceFundEntry.objects.order_by("pk"))
        for entry in entries:
            running += entry.amount
            assert entry.balance_after == running >= 0
        assert InsuranceFund.objects.get().balance == running == 0
        assert [e.kind for e in entries] == [
            "TOP_UP",
            "LIQUIDATION_SURPLUS",
            "LIQUIDATION_SHORTFALL",
            "LIQUIDATION_SURPLUS",
            "ADL",
            "ADL",
        ]

    def test_the_floor_parameter_keeps_a_reserve_the_fund_never_pays_out(self, risk_officer, second_risk_officer):
        ParameterValue.objects.create(
            definition_id="insurance_fund.floor",
            scope="USDT",
            value="30",
            effective_from=NOW.replace(year=2020),
            created_at=NOW,
        )
        parameters.clear_cache()
        make_perpetual()
        set_mark(make_perpetual(), "44000")
        top_up("USDT", "100", requester=risk_officer, approver=second_risk_officer)

        liquidation.record_liquidations(items=[shortfall(1, make_account())], actor=SYSTEM, now=NOW)

        assert InsuranceFund.objects.get().balance == 30
        event = AdlEvent.objects.get()
        assert (event.fund_balance_at_trigger, event.uncovered, event.qty) == (100, 30, D("0.3"))


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class TestConcurrentShortfalls:
    def test_two_shortfalls_racing_for_the_last_of_the_fund_pay_it_once(self):
        requester, approver = make_staff(roles=("risk officer",)), make_staff(roles=("risk officer",))
        make_perpetual()
        top_up("USDT", "100", requester=requester, approver=approver)
        accounts = [make_account() for _ in range(4)]
        errors = []

        def liquidate(n):
            try:
                liquidation.record_liquidations(items=[shortfall(n, accounts[n])], actor=SYSTEM, now=timezone.now())
            except Exception as exc:
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=liquidate, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert errors == []
        entries = list(InsuranceFundEntry.objects.order_by("pk"))
        assert sum(e.amount for e in entries) == InsuranceFund.objects.get().balance == 0
        assert [e.kind for e in entries].count("LIQUIDATION_SHORTFALL") == 1
        assert AdlEvent.objects.count() == 3
