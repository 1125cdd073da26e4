from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction

from backoffice import approvals, parameters
from backoffice.audit import Actor
from backoffice.errors import InvalidInput
from backoffice.models import OperationsLogEntry, ParameterDefinition, ParameterValue
from backoffice.parameters import UnknownParameter, param
from tests.factories import NOW


def set_parameter(requester, approver, *, key, value, scope="", effective_from=None, now=NOW):
    change = approvals.request_change(
        action="risk_parameter.set",
        payload={"key": key, "value": value, "scope": scope, "effective_from": effective_from},
        actor=Actor.staff(requester),
        reason="tuning",
        now=now,
    )
    return approvals.approve_change(change_request=change, actor=Actor.staff(approver), reason="ok", now=now)


class TestDefaults:
    @pytest.mark.parametrize(
        ("key", "expected"),
        [
            ("withdrawal.large_threshold_btc", Decimal("1000")),
            ("withdrawal.large_hold_hours", 24),
            ("security.registration_cap_per_ip_per_day", 100),
            ("security.cookie_block_seconds", 30),
            ("surveillance.order_cancel_events_per_24h", 500),
            ("surveillance.excessive_trading_ban_btc", Decimal("5000")),
            ("surveillance.wash_trade_action", "NO_ACTION"),
            ("price_band.new_listing_percent", Decimal("5")),
            ("position.limit_btc", Decimal("5000")),
            ("margin.base_maintenance_rate", Decimal("0.005")),
            ("financing.forced_reduction_margin_level", Decimal("1.10")),
        ],
    )
    def test_carry_the_documented_default_with_its_type(self, db, key, expected):
        value = param(key)

        assert value == expected
        assert type(value) is type(expected)

    def test_every_definition_has_a_value_in_force(self, db):
        keys = ParameterDefinition.objects.values_list("key", flat=True)

        assert all(param(key) is not None for key in keys)

    def test_an_unknown_key_is_an_error_not_a_silent_default(self, db):
        with pytest.raises(UnknownParameter):
            param("no.such.parameter")


class TestVersions:
    def test_a_scoped_value_overrides_the_global_one_for_that_scope_only(self, db, risk_officer, second_risk_officer):
        set_parameter(risk_officer, second_risk_officer, key="position.limit_btc", value="2500", scope="BTCUSD-PERP")

        assert param("position.limit_btc", scope="BTCUSD-PERP", at=NOW) == Decimal("2500")
        assert param("position.limit_btc", scope="ETHUSDT", at=NOW) == Decimal("5000")
        assert param("position.limit_btc", at=NOW) == Decimal("5000")

    def test_a_future_value_is_in_force_only_from_its_effective_time(self, db, risk_officer, second_risk_officer):
        start = NOW + timedelta(days=1)

        set_parameter(
            risk_officer, second_risk_officer, key="withdrawal.large_hold_hours", value="48", effective_from=start
        )

        assert param("withdrawal.large_hold_hours", at=start - timedelta(microseconds=1)) == 24
        assert param("withdrawal.large_hold_hours", at=start) == 48

    def test_a_change_never_rewrites_the_past(self, db, risk_officer, second_risk_officer):
        set_parameter(
            risk_officer,
            second_risk_officer,
            key="withdrawal.large_hold_hours",
            value="12",
            effective_from=NOW - timedelta(days=30),
        )

        assert param("withdrawal.large_hold_hours", at=NOW - timedelta(days=1)) == 24
        assert param("withdrawal.large_hold_hours", at=NOW) == 12

    def test_an_applied_change_is_in_the_operations_log_with_before_and_after(
        self, db, risk_officer, second_risk_officer
    ):
        set_parameter(risk_officer, second_risk_officer, key="withdrawal.large_threshold_btc", value="750.5")

        entry = OperationsLogEntry.objects.get(action="risk_parameter.set")
        assert entry.before["value"] == "1000"
        assert entry.after["value"] == "750.5"
        assert entry.actor == "raj"


class TestValidation:
    @pytest.mark.parametrize(
        ("key", "value", "message"),
        [
            ("withdrawal.large_threshold_btc", "lots", "must be a number"),
            ("withdrawal.large_threshold_btc", "NaN", "finite"),
            ("withdrawal.large_threshold_btc", "-1", "at least 0"),
            ("withdrawal.large_hold_hours", "1.5", "whole number"),
            ("withdrawal.large_hold_hours", "721", "at most 720"),
            ("surveillance.wash_trade_action", "SHOUT", "one of"),
        ],
    )
    def test_refuses_bad_values_before_anyone_approves(self, db, risk_officer, key, value, message):
        with pytest.raises(InvalidInput, match=message):
            approvals.request_change(
                action="risk_parameter.set",
                payload={"key": key, "value": value},
                actor=Actor.staff(risk_officer),
                reason="r",
                now=NOW,
            )

    def test_accepts_a_value_exactly_at_the_bounds(self, db, risk_officer):
        change = approvals.request_change(
            action="risk_parameter.set",
            payload={"key": "withdrawal.large_hold_hours", "value": "720"},
            actor=Actor.staff(risk_officer),
            reason="r",
            now=NOW,
        )

        assert change.payload["value"] == "720"

    def test_refuses_a_scope_on_a_parameter_that_has_none(self, db, risk_officer):
        with pytest.raises(InvalidInput, match="cannot be set per symbol"):
            approvals.request_change(
                action="risk_parameter.set",
                payload={"key": "withdrawal.large_hold_hours", "value": "1", "scope": "BTC"},
                actor=Actor.staff(risk_officer),
                reason="r",
                now=NOW,
            )

    def test_refuses_an_unknown_key(self, db, risk_officer):
        with pytest.raises(InvalidInput, match="no such risk parameter"):
            approvals.request_change(
                action="risk_parameter.set",
                payload={"key": "x.y", "value": "1"},
                actor=Actor.staff(risk_officer),
                reason="r",
                now=NOW,
            )


class TestCache:
    def test_serves_cached_values_until_the_generation_changes(self, db, settings):
        settings.RISK_PARAMETER_CACHE_SECONDS = 3600
        assert param("withdrawal.large_hold_hours") == 24
        ParameterValue.objects.filter(definition_id="withdrawal.large_hold_hours").update(value="99")

        cached = param("withdrawal.large_hold_hours")
        parameters._bump_generation()  # what another process's committed change does
        parameters._cache.checked_at = float("-inf")  # as if the cache period had passed

        assert cached == 24
        assert param("withdrawal.large_hold_hours") == 99

    def test_a_change_is_seen_inside_its_transaction_and_forgotten_if_it_rolls_back(
        self, db, settings, risk_officer, second_risk_officer
    ):
        settings.RISK_PARAMETER_CACHE_SECONDS = 3600
        assert param("withdrawal.large_hold_hours") == 24

        with pytest.raises(RuntimeError), transaction.atomic():
            set_parameter(risk_officer, second_risk_officer, key="withdrawal.large_hold_hours", value="6")
            assert param("withdrawal.large_hold_hours") == 6
            raise RuntimeError("roll back")

        assert param("withdrawal.large_hold_hours") == 24

    def test_a_committed_change_publishes_a_new_generation(
        self, db, risk_officer, second_risk_officer, django_capture_on_commit_callbacks
    ):
        from django.core.cache import cache

        before = cache.get(parameters._GENERATION_KEY)

        with django_capture_on_commit_callbacks(execute=True):
            set_parameter(risk_officer, second_risk_officer, key="withdrawal.large_hold_hours", value="30")

        assert cache.get(parameters._GENERATION_KEY) != before
