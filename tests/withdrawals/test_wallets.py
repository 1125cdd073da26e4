from datetime import timedelta
from decimal import Decimal

import pytest

from backoffice.audit import Actor
from backoffice.errors import InvalidInput
from tests import factories
from tests.withdrawals.conftest import BTC_ADDRESS, REQUESTED_AT, make_withdrawal
from withdrawals import services, wallets
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
