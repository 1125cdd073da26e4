import json
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.test import override_settings

from accounts import locks, restrictions
from backoffice.audit import Actor
from kyc.services import screening as kyc_screening
from tests import factories
from tests.withdrawals.conftest import ETH_ADDRESS, REQUESTED_AT, TRX_ADDRESS, body
from trading_risk.models import Alert, Case
from withdrawals import services
from withdrawals.models import Withdrawal

URL = "/api/v1/withdrawals/"
FIXTURES = Path(__file__).resolve().parents[3] / "shared/reference/travel-rule/trisa-fixtures"


def identity_payload() -> dict:
    return json.loads((FIXTURES / "ivms101/identity_payload.json").read_text())


def post(engine, data):
    return engine.post(URL, data, format="json")


@pytest.mark.usefixtures("prices")
class TestDecisions:
    def test_a_small_withdrawal_is_approved_and_paid_out_once(
        self, engine, verified_account, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            response = post(engine, body(verified_account, amount="0.01"))

        assert response.status_code == 201
        assert response.json()["status"] == "approved"
        assert response.json()["reasons"] == []
        withdrawal = Withdrawal.objects.get(request_id="w-1")
        assert withdrawal.status == Withdrawal.Status.SENT
        assert withdrawal.payout.idempotency_key

    def test_the_same_request_again_gets_the_same_answer_and_stores_nothing(self, engine, verified_account):
        first = post(engine, body(verified_account, amount="0.01"))

        again = post(engine, body(verified_account, amount="0.01"))

        assert again.status_code == 200
        assert again.json()["request_id"] == first.json()["request_id"]
        assert Withdrawal.objects.count() == 1

    def test_the_same_request_id_with_another_payload_is_a_conflict(self, engine, verified_account):
        post(engine, body(verified_account, amount="0.01"))

        response = post(engine, body(verified_account, amount="0.02"))

        assert response.status_code == 409
        assert response.json()["error"]["code"] == "conflict"

    def test_a_password_change_within_24_hours_rejects(self, engine, verified_account):
        customer = verified_account.customer
        customer.password_changed_at = REQUESTED_AT - timedelta(hours=23)
        customer.save(update_fields=["password_changed_at"])

        response = post(engine, body(verified_account, amount="0.01"))

        assert response.json()["status"] == "rejected"
        assert response.json()["reasons"] == ["password_changed_24h"]

    def test_a_large_withdrawal_is_held_for_24_hours_then_goes_to_review(self, engine):
        account = factories.make_account(customer=factories.make_customer(kyc_level=3))

        response = post(engine, body(account, amount="1000.5"))

        assert response.status_code == 201
        assert response.json()["status"] == "held"
        assert response.json()["hold_until"] == (REQUESTED_AT + timedelta(hours=24)).isoformat()
        assert "large_withdrawal_hold" in response.json()["reasons"]
        with time_machine.travel(REQUESTED_AT + timedelta(hours=23, minutes=59), tick=False):
            assert engine.get(URL + "w-1").json()["status"] == "held"
        with time_machine.travel(REQUESTED_AT + timedelta(hours=24), tick=False):
            assert engine.get(URL + "w-1").json()["status"] == "pending_review"  # before the task runs
        assert services.release_due_holds(now=REQUESTED_AT + timedelta(hours=23)) == 0
        assert services.release_due_holds(now=REQUESTED_AT + timedelta(hours=24)) == 1
        assert services.release_due_holds(now=REQUESTED_AT + timedelta(hours=25)) == 0
        assert engine.get(URL + "w-1").json()["status"] == "pending_review"

    def test_a_locked_account_is_rejected(self, engine, verified_account):
        locks.lock_customer(
            customer=verified_account.customer,
            rule="staff",
            reason="takeover suspected",
            actor=factories.SYSTEM,
            now=factories.NOW,
        )

        response = post(engine, body(verified_account, amount="0.01"))

        assert (response.json()["status"], response.json()["reasons"]) == ("rejected", ["account_locked"])

    def test_margin_below_maintenance_blocks(self, engine, verified_account):
        restrictions.add_restriction(
            customer=verified_account.customer,
            code="below_maintenance_margin",
            rule="margin",
            actor=factories.SYSTEM,
            now=factories.NOW,
        )

        response = post(engine, body(verified_account, amount="0.01"))

        assert response.json()["reasons"] == ["below_maintenance_margin"]

    def test_an_unresolved_sanctions_hit_freezes_and_opens_a_case(self, engine, verified_account):
        restrictions.add_restriction(
            customer=verified_account.customer,
            code="sanctions_hit",
            rule="screening",
            actor=factories.SYSTEM,
            now=factories.NOW,
        )

        response = post(engine, body(verified_account, amount="0.01"))

        assert (response.json()["status"], response.json()["reasons"]) == ("frozen", ["sanctions_hit"])
        assert Case.objects.filter(customer=verified_account.customer).count() == 1

    def test_a_listed_destination_freezes_and_opens_a_compliance_case(self, engine, verified_account):
        kyc_screening.add_high_risk_address(
            network="ETH",
            address=ETH_ADDRESS.lower(),
            reason="reported scam",
            actor=factories.SYSTEM,
            now=factories.NOW,
        )

        response = post(engine, body(verified_account, asset="ETH", network="ETH", amount="0.1", address=ETH_ADDRESS))

        assert (response.json()["status"], response.json()["reasons"]) == ("frozen", ["high_risk_address"])
        alert = Alert.objects.get(rule="high_risk_address")
        assert alert.case is not None
        assert alert.severity == Alert.Severity.CRITICAL
        assert Withdrawal.objects.get().screening["result"] == "listed"

    def test_an_unverified_customer_is_rejected(self, engine):
        account = factories.make_account(customer=factories.make_customer(kyc_level=0))

        response = post(engine, body(account, amount="0.01"))

        assert response.json()["reasons"] == ["kyc_level_insufficient"]

    def test_the_daily_limit_of_the_kyc_level_rejects(self, engine):
        account = factories.make_account(customer=factories.make_customer(kyc_level=1))  # 2 BTC a day
        post(engine, body(account, request_id="w-a", amount="0.5"))
        post(engine, body(account, request_id="w-b", amount="1.4"))

        response = post(engine, body(account, request_id="w-c", amount="0.2"))

        assert response.json()["status"] == "rejected"
        assert "kyc_level_insufficient" in response.json()["reasons"]
        assert "daily_limit" in response.json()["rules"]

    def test_a_dormant_account_moving_a_large_amount_goes_to_review(self, engine, verified_account):
        response = post(
            engine, body(verified_account, amount="1.5", requested_at=(factories.NOW + timedelta(days=400)).isoformat())
        )

        assert response.json()["status"] == "pending_review"
        assert "dormant_account_review" in response.json()["reasons"]

    def test_above_the_travel_rule_threshold_without_data_goes_to_review(self, engine, verified_account):
        response = post(engine, body(verified_account, asset="USDT", network="TRX", amount="1500", address=TRX_ADDRESS))

        assert (response.json()["status"], response.json()["reasons"]) == ("pending_review", ["travel_rule_missing"])

    def test_travel_rule_data_in_ivms101_is_stored_and_exported(self, engine, verified_account):
        response = post(
            engine,
            body(
                verified_account,
                asset="USDT",
                network="TRX",
                amount="1500",
                address=TRX_ADDRESS,
                travel_rule=identity_payload(),
            ),
        )

        assert response.json()["status"] == "approved"
        exported = engine.get(URL + "w-1/travel-rule?version=101.2023").json()
        assert exported["payloadMetadata"] == {"payloadVersion": "101.2023"}
        person = exported["originator"]["originatorPerson"][0]
        assert person["naturalPerson"]["name"]["nameIdentifier"][0]["naturalPersonNameIdentifierType"] == "LEGL"
        trp = engine.get(URL + "w-1/travel-rule?envelope=trp&callback=https://vasp.example/cb").json()
        assert trp["IVMS101"]["originator"]["originatorPersons"]
        assert trp["amount"] == "1500"

    def test_intermediary_vasps_travel_with_the_withdrawal_and_its_export(self, engine, verified_account):
        data = identity_payload()
        relay = {"name": {"nameIdentifier": [{"legalPersonName": "VASP E", "legalPersonNameIdentifierType": "LEGL"}]}}
        data["transferPath"] = {"transferPath": [{"intermediaryVASP": {"legalPerson": relay}, "sequence": 0}]}

        response = post(
            engine,
            body(verified_account, asset="USDT", network="TRX", amount="1500", address=TRX_ADDRESS, travel_rule=data),
        )

        assert response.status_code == 201
        stored = Withdrawal.objects.get().travel_rule["transferPath"]["transferPath"]
        assert stored == [{"intermediaryVASP": {"legalPerson": relay}, "sequence": 0}]
        for version in ("101", "101.2023"):
            exported = engine.get(URL + f"w-1/travel-rule?version={version}").json()
            assert (
                exported["transferPath"]["transferPath"][0]["intermediaryVASP"]["legalPerson"]["name"]
                == (relay["name"])
            )

    def test_a_transfer_path_with_a_gap_in_its_sequence_is_a_400(self, engine, verified_account):
        data = identity_payload()
        relay = {"name": {"nameIdentifier": [{"legalPersonName": "VASP E", "legalPersonNameIdentifierType": "LEGL"}]}}
        data["transferPath"] = {"transferPath": [{"intermediaryVASP": {"legalPerson": relay}, "sequence": 1}]}

        response = post(engine, body(verified_account, travel_rule=data))

        assert response.status_code == 400
        assert response.json()["error"]["details"][0]["field"] == "travel_rule.transferPath.transferPath"
        assert "C12" in response.json()["error"]["details"][0]["message"]
        assert not Withdrawal.objects.exists()

    def test_the_status_moves_as_staff_act(
        self, engine, verified_account, risk_officer, django_capture_on_commit_callbacks
    ):
        post(engine, body(verified_account, amount="3"))  # above level 2's automatic limit

        with django_capture_on_commit_callbacks(execute=True):
            services.approve_withdrawal(
                withdrawal=Withdrawal.objects.get(),
                actor=Actor.staff(risk_officer),
                reason="known customer",
                now=factories.NOW,
            )

        assert engine.get(URL + "w-1").json()["status"] == "approved"
        assert "paid_out_at" in engine.get(URL + "w-1").json()

    def test_an_unknown_withdrawal_is_404(self, engine):
        assert engine.get(URL + "nope").status_code == 404

    def test_a_token_without_the_scope_is_refused(self, client, verified_account):
        _, token = factories.make_api_client(scopes=("events",))

        response = client.post(
            URL, body(verified_account), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
        )

        assert response.status_code == 403


@pytest.mark.usefixtures("prices")
class TestBadInput:
    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"address": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdr"}, "address"),
            ({"address": ETH_ADDRESS}, "address"),
            ({"asset": "DOGE", "network": "DOGE"}, "asset"),
            ({"asset": "USDT", "network": "BTC"}, "asset"),
            ({"amount": "0.123456789"}, "amount"),  # BTC has 8 decimals
            ({"amount": "0"}, "amount"),
            ({"amount": "-1"}, "amount"),
            ({"amount": 0.1}, "amount"),
            ({"amount": "1e3"}, "amount"),
            ({"asset": "btc"}, "asset"),
            ({"requested_at": "2026-03-09T12:00:00"}, "requested_at"),
            ({"colour": "blue"}, "colour"),
            ({"account_id": "unknown-account"}, "account_id"),
        ],
    )
    def test_bad_input_is_a_400_and_nothing_is_stored(self, engine, verified_account, overrides, field):
        response = post(engine, body(verified_account, **overrides))

        assert response.status_code == 400, response.json()
        assert response.json()["error"]["details"][0]["field"] == field
        assert not Withdrawal.objects.exists()

    def test_travel_rule_data_breaking_ivms101_constraints_is_a_400(self, engine, verified_account):
        payload = identity_payload()
        payload["originator"]["originatorPersons"][0]["naturalPerson"]["geographicAddress"][0]["country"] = "QQ"

        response = post(engine, body(verified_account, travel_rule=payload))

        assert response.status_code == 400
        assert "C3" in response.json()["error"]["details"][0]["message"]
        assert not Withdrawal.objects.exists()

    def test_an_asset_without_a_price_is_a_400(self, engine, verified_account):
        response = post(
            engine,
            body(
                verified_account,
                asset="LTC",
                network="LTC",
                address="ltc1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
            ),
        )

        assert response.status_code == 400
        assert not Withdrawal.objects.exists()


@pytest.mark.usefixtures("prices")
class TestFailClosed:
    def test_with_redis_down_the_decision_still_comes_back_as_pending_review(self, engine, verified_account):
        down = {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": "redis://127.0.0.1:1/0",
                "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
            }
        }
        with override_settings(CACHES=down):
            response = post(engine, body(verified_account, amount="0.01"))

        assert response.status_code == 201
        assert response.json()["status"] == "pending_review"
        assert "infrastructure_degraded" in response.json()["rules"]

    def test_without_a_worker_heartbeat_nothing_is_approved_automatically(self, engine, verified_account):
        from django.core.cache import cache

        from backoffice import health

        cache.delete(health.HEARTBEAT_KEY)

        response = post(engine, body(verified_account, amount="0.01"))

        assert response.json()["status"] == "pending_review"
        assert Withdrawal.objects.get().status == Withdrawal.Status.PENDING_REVIEW
