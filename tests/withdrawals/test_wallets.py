from datetime import timedelta
from decimal import Decimal

import pytest

from backoffice.audit import Actor
from backoffice.errors import InvalidInput
from backoffice.models import OperationsLogEntry
from tests import factories
from tests.withdrawals.conftest import BTC_ADDRESS, REQUESTED_AT, make_withdrawal
from withdrawals import selectors, services, wallets
from withdrawals.models import AssetNetwork, Wallet, WalletAlert, WalletBalance


@pytest.fixture
def operator(db):
    return factories.make_staff(roles=("operations",), username="opal")


@pytest.fixture
def hot_wallet(operator):
    return wallets.register_wallet(
        name="btc-hot-1",
        asset_network=AssetNetwork.objects.get(asset="BTC", network="BTC"),
        tier=Wallet.Tier.HOT,
        address=BTC_ADDRESS,
        target_balance=Decimal("50"),
        max_balance=Decimal("200"),
        actor=Actor.staff(operator),
        now=factories.NOW,
    )


def balances(engine, *items):
    return engine.post("/api/v1/wallet-balances/", list(items), format="json")


class TestBalances:
    @pytest.mark.parametrize(
        ("balance", "kind"), [("49.9", "BELOW_TARGET"), ("50", None), ("200", None), ("200.1", "ABOVE_MAX")]
    )
    def test_a_hot_wallet_outside_its_band_raises_one_alert(self, engine, hot_wallet, balance, kind):
        item = {"wallet": "btc-hot-1", "balance": balance, "at": factories.NOW.isoformat()}

        first, again = balances(engine, item), balances(engine, item)

        assert first.json() == {"accepted": 1, "duplicates": 0}
        assert again.json() == {"accepted": 0, "duplicates": 1}
        assert list(WalletAlert.objects.values_list("kind", flat=True)) == ([kind] if kind else [])

    def test_an_alert_closes_when_the_balance_is_back_in_its_band(self, engine, hot_wallet):
        balances(engine, {"wallet": "btc-hot-1", "balance": "10", "at": factories.NOW.isoformat()})

        balances(
            engine, {"wallet": "btc-hot-1", "balance": "60", "at": (factories.NOW + timedelta(hours=1)).isoformat()}
        )

        assert WalletAlert.objects.get().closed_at is not None

    def test_an_unknown_wallet_is_a_400_and_nothing_is_stored(self, engine, hot_wallet):
        response = balances(engine, {"wallet": "nope", "balance": "1", "at": factories.NOW.isoformat()})

        assert response.status_code == 400
        assert not WalletBalance.objects.exists()

    def test_a_wallet_needs_a_valid_address_for_its_network(self, operator):
        with pytest.raises(InvalidInput):
            wallets.register_wallet(
                name="bad",
                asset_network=AssetNetwork.objects.get(asset="ETH", network="ETH"),
                tier=Wallet.Tier.HOT,
                address=BTC_ADDRESS,
                target_balance=Decimal(1),
                max_balance=Decimal(2),
                actor=Actor.staff(operator),
                now=factories.NOW,
            )


@pytest.mark.usefixtures("prices")
class TestFlowReview:
    def test_the_day_is_complete_when_every_payout_has_a_timely_outflow(self, engine, hot_wallet, operator):
        account = factories.make_account(customer=factories.make_customer(kyc_level=2))
        paid = make_withdrawal(account, amount="0.01")
        late = make_withdrawal(account, amount="0.012")
        missing = make_withdrawal(account, amount="0.013")
        services.pay_out_approved(now=REQUESTED_AT)
        flows = [
            {
                "flow_id": "f1",
                "wallet": "btc-hot-1",
                "direction": "out",
                "amount": "0.01",
                "request_id": paid.request_id,
                "at": (REQUESTED_AT + timedelta(minutes=10)).isoformat(),
            },
            {
                "flow_id": "f2",
                "wallet": "btc-hot-1",
                "direction": "out",
                "amount": "0.012",
                "request_id": late.request_id,
                "at": (REQUESTED_AT + timedelta(hours=5)).isoformat(),
            },
            {
                "flow_id": "f3",
                "wallet": "btc-hot-1",
                "direction": "out",
                "amount": "7",
                "at": (REQUESTED_AT + timedelta(hours=1)).isoformat(),
            },
        ]
        assert engine.post("/api/v1/wallet-flows/", flows, format="json").json()["accepted"] == 3

        review = wallets.build_flow_review(day=REQUESTED_AT.date(), now=REQUESTED_AT + timedelta(days=1))

        assert review.findings == {
            "missing": [missing.request_id],
            "late": [late.request_id],
            "unexpected": ["f3"],
            "unpaid": [],
        }
        with pytest.raises(InvalidInput):
            wallets.sign_off_flow_review(review=review, note="", actor=Actor.staff(operator), now=factories.NOW)
        wallets.sign_off_flow_review(
            review=review,
            note="f3 is a rebalance to warm; payout of the missing one was broadcast after midnight",
            actor=Actor.staff(operator),
            now=factories.NOW,
        )
        review.refresh_from_db()
        assert review.signed_off_by == operator

    def test_a_flow_sent_again_with_other_content_is_a_conflict(self, engine, hot_wallet):
        flow = {
            "flow_id": "f1",
            "wallet": "btc-hot-1",
            "direction": "in",
            "amount": "1",
            "at": factories.NOW.isoformat(),
        }
        engine.post("/api/v1/wallet-flows/", [flow], format="json")

        response = engine.post("/api/v1/wallet-flows/", [{**flow, "amount": "2"}], format="json")

        assert response.status_code == 409


class TestColdChecks:
    def test_a_cold_wallet_check_with_a_difference_needs_a_note(self, operator):
        cold = wallets.register_wallet(
            name="btc-cold",
            asset_network=AssetNetwork.objects.get(asset="BTC", network="BTC"),
            tier=Wallet.Tier.COLD,
            address=BTC_ADDRESS,
            target_balance=Decimal(0),
            max_balance=Decimal(100000),
            actor=Actor.staff(operator),
            now=factories.NOW,
        )

        with pytest.raises(InvalidInput):
            wallets.record_cold_check(
                wallet=cold,
                observed_balance=Decimal(10),
                expected_balance=Decimal(11),
                note="",
                actor=Actor.staff(operator),
                now=factories.NOW,
            )
        check = wallets.record_cold_check(
            wallet=cold,
            observed_balance=Decimal(10),
            expected_balance=Decimal(10),
            note="",
            actor=Actor.staff(operator),
            now=factories.NOW,
        )

        assert check.matches


def record_balance(wallet_name: str, balance: str, at):
    return wallets.record_balances(
        items=[wallets.BalanceIn(wallet=wallet_name, balance=Decimal(balance), at=at)],
        actor=factories.SYSTEM,
        now=at,
    )


class TestWalletSettings:
    def change_band(self, wallet, user, target: str, maximum: str, reason: str = "more payouts expected"):
        return wallets.change_band(
            wallet=wallet,
            target_balance=Decimal(target),
            max_balance=Decimal(maximum),
            reason=reason,
            actor=Actor.staff(user),
            now=factories.NOW + timedelta(hours=2),
        )

    def test_changing_the_band_is_audited_with_before_after_and_reason(self, hot_wallet, operator):
        self.change_band(hot_wallet, operator, "80", "300")

        hot_wallet.refresh_from_db()
        assert (hot_wallet.target_balance, hot_wallet.max_balance) == (Decimal(80), Decimal(300))
        entry = OperationsLogEntry.objects.get(action="wallet.band")
        assert {k: Decimal(v) for k, v in entry.before.items()} == {"target_balance": 50, "max_balance": 200}
        assert {k: Decimal(v) for k, v in entry.after.items()} == {"target_balance": 80, "max_balance": 300}
        assert (entry.reason, entry.actor_user) == ("more payouts expected", operator)

    @pytest.mark.parametrize(
        ("target", "maximum", "reason"),
        [("300", "200", "x"), ("-1", "200", "x"), ("50", "200", "x"), ("60", "200", "")],
    )
    def test_a_bad_band_an_unchanged_band_or_no_reason_is_refused(self, hot_wallet, operator, target, maximum, reason):
        with pytest.raises(InvalidInput):
            self.change_band(hot_wallet, operator, target, maximum, reason)

        hot_wallet.refresh_from_db()
        assert (hot_wallet.target_balance, hot_wallet.max_balance) == (Decimal(50), Decimal(200))
        assert not OperationsLogEntry.objects.filter(action="wallet.band").exists()

    def test_only_staff_who_manage_wallets_may_change_them(self, hot_wallet, risk_officer):
        with pytest.raises(services.NotAllowed):
            self.change_band(hot_wallet, risk_officer, "80", "300")
        with pytest.raises(services.NotAllowed):
            wallets.set_active(
                wallet=hot_wallet, active=False, reason="retired", actor=Actor.staff(risk_officer), now=factories.NOW
            )

    def test_a_new_band_judges_the_latest_balance_at_once(self, hot_wallet, operator):
        record_balance("btc-hot-1", "60", factories.NOW)
        assert not WalletAlert.objects.exists()

        self.change_band(hot_wallet, operator, "100", "300")

        assert list(WalletAlert.objects.values_list("kind", "closed_at")) == [("BELOW_TARGET", None)]
        self.change_band(hot_wallet, operator, "40", "300")
        assert WalletAlert.objects.get().closed_at is not None

    def test_each_balance_keeps_the_band_in_force_when_it_was_recorded(self, hot_wallet, operator):
        record_balance("btc-hot-1", "60", factories.NOW)
        self.change_band(hot_wallet, operator, "100", "300")
        record_balance("btc-hot-1", "120", factories.NOW + timedelta(hours=3))

        history = selectors.balance_history(hot_wallet, since=factories.NOW - timedelta(days=1))

        assert history == [
            (factories.NOW, Decimal(60), Decimal(50), Decimal(200)),
            (factories.NOW + timedelta(hours=3), Decimal(120), Decimal(100), Decimal(300)),
        ]

    def test_a_deactivated_wallet_closes_its_alerts_and_raises_no_more(self, hot_wallet, operator):
        record_balance("btc-hot-1", "10", factories.NOW)

        wallets.set_active(
            wallet=hot_wallet,
            active=False,
            reason="migrated to a new address",
            actor=Actor.staff(operator),
            now=factories.NOW,
        )
        record_balance("btc-hot-1", "5", factories.NOW + timedelta(days=1))

        assert list(WalletAlert.objects.values_list("closed_at", flat=True)) == [factories.NOW]
        assert WalletBalance.objects.count() == 2  # custody still reports it; it is only not monitored
        assert hot_wallet not in [w for w, _ in selectors.latest_balances()]
        entry = OperationsLogEntry.objects.get(action="wallet.deactivate")
        assert (entry.before, entry.after, entry.reason) == (
            {"active": True},
            {"active": False},
            "migrated to a new address",
        )

    def test_a_reactivated_wallet_is_monitored_again(self, hot_wallet, operator):
        actor = Actor.staff(operator)
        wallets.set_active(wallet=hot_wallet, active=False, reason="paused", actor=actor, now=factories.NOW)
        record_balance("btc-hot-1", "5", factories.NOW + timedelta(hours=1))
        assert not WalletAlert.objects.exists()

        wallets.set_active(wallet=hot_wallet, active=True, reason="back in use", actor=actor, now=factories.NOW)

        assert list(WalletAlert.objects.values_list("kind", flat=True)) == ["BELOW_TARGET"]
        assert OperationsLogEntry.objects.filter(action="wallet.activate", reason="back in use").exists()
        with pytest.raises(InvalidInput, match="already active"):
            wallets.set_active(wallet=hot_wallet, active=True, reason="again", actor=actor, now=factories.NOW)
