"""The pure security and restriction rules, table-driven, with no database."""

from datetime import UTC, datetime

import pytest

from accounts.rules import (
    LOCK,
    NOTIFY,
    THROTTLE,
    VERIFY_DEVICE,
    VERIFY_FACE,
    EventFacts,
    SecurityLimits,
    StandingRestriction,
    decide_security_event,
    restriction_state,
)

LIMITS = SecurityLimits(
    failed_logins_per_customer=5,
    failed_login_customers_per_ip=10,
    registration_cap_per_ip=100,
    registration_cap_per_cookie=20,
    account_checks_per_second=1,
    cookie_block_seconds=30,
)
UNTIL = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)


def decide(**facts):
    return decide_security_event(EventFacts(**facts), LIMITS)


class TestRestrictionState:
    @pytest.mark.parametrize(
        ("codes", "expected"),
        [
            ((), (True, True, True, True, False)),
            (("restricted_open",), (True, False, True, True, True)),
            (("restricted_open_close",), (False, False, False, True, False)),
            (("trading_banned",), (False, False, False, True, False)),
            (("account_locked",), (False, False, False, False, False)),
            (("below_maintenance_margin",), (True, True, True, False, False)),
            (("restricted_open", "below_maintenance_margin"), (True, False, True, False, True)),
        ],
    )
    def test_combines_the_effects_of_the_restrictions_in_force(self, codes, expected):
        state = restriction_state([StandingRestriction(code, "rule", None) for code in codes])

        assert (
            state["can_trade"],
            state["can_open"],
            state["can_close"],
            state["can_withdraw"],
            state["reduce_only"],
        ) == expected

    def test_lists_every_reason_with_its_rule_and_end(self):
        state = restriction_state([StandingRestriction("restricted_open", "order_cancel_ladder", UNTIL)])

        assert state["reasons"] == [
            {"code": "restricted_open", "rule": "order_cancel_ladder", "until": "2026-03-02T12:30:00+00:00"}
        ]

    def test_a_symbol_restriction_is_listed_but_leaves_the_account_flags_alone(self):
        state = restriction_state([StandingRestriction("restricted_open", "ladder", UNTIL, symbol="BTCUSDT")])

        assert state["can_open"] is True
        assert state["reasons"][0]["symbol"] == "BTCUSDT"


class TestFailedLogins:
    @pytest.mark.parametrize(("failures", "locked"), [(4, False), (5, True), (6, True)])
    def test_lock_the_customer_at_the_threshold_of_failures(self, failures, locked):
        decision = decide(type="login_failed", failed_logins_for_customer=failures)

        assert (LOCK in decision.actions) is locked
        assert decision.lock_rules == (["account_takeover"] if locked else [])

    @pytest.mark.parametrize(("customers", "locked"), [(9, False), (10, True)])
    def test_lock_when_one_ip_fails_against_many_customers(self, customers, locked):
        decision = decide(type="login_failed", failed_customers_for_ip=customers)

        assert (decision.lock_rules == ["credential_stuffing"]) is locked


class TestLogins:
    def test_an_ip_not_seen_in_the_window_asks_for_a_notice(self):
        assert decide(type="login", has_login_history=True, ip_seen_in_window=False).actions == [NOTIFY]

    def test_a_known_ip_from_the_usual_country_needs_nothing(self):
        assert decide(type="login", has_login_history=True, ip_country="DE", usual_country="DE").actions == []

    def test_a_known_ip_from_another_country_asks_for_a_notice(self):
        assert decide(type="login", has_login_history=True, ip_country="BR", usual_country="DE").actions == [NOTIFY]

    def test_an_unknown_country_is_not_an_anomaly(self):
        assert decide(type="login", has_login_history=True, ip_country="", usual_country="DE").actions == []

    def test_the_first_login_ever_is_not_an_ip_anomaly(self):
        assert NOTIFY not in decide(type="login", has_login_history=False, ip_seen_in_window=False).actions

    def test_a_new_device_needs_verification(self):
        assert decide(type="login", device_known=False).actions == [VERIFY_DEVICE, NOTIFY]

    def test_a_locked_customer_is_told_to_stay_locked(self):
        assert decide(type="login", customer_locked=True).actions == [LOCK]


class TestPasswordChange:
    def test_always_asks_for_e_mail_and_sms_confirmation(self):
        assert decide(type="password_change").actions == [NOTIFY]

    @pytest.mark.parametrize("facts", [{"ip_seen_in_window": False}, {"device_known": False}, {"ip_status": "LIMITED"}])
    def test_from_an_unusual_ip_or_device_also_needs_face_verification(self, facts):
        assert decide(type="password_change", has_login_history=True, **facts).actions[0] == VERIFY_FACE


class TestRegistrationAndChecks:
    @pytest.mark.parametrize(("count", "throttled"), [(100, False), (101, True)])
    def test_cap_registrations_per_ip_at_100_a_day(self, count, throttled):
        decision = decide(type="registration_attempt", registrations_for_ip=count, seconds_to_window_end=3600)

        assert (decision.actions == [THROTTLE]) is throttled
        assert decision.retry_after == (3600 if throttled else None)

    @pytest.mark.parametrize(("count", "throttled"), [(20, False), (21, True)])
    def test_cap_registrations_per_cookie_separately(self, count, throttled):
        decision = decide(type="registration_attempt", registrations_for_cookie=count, seconds_to_window_end=60)

        assert (THROTTLE in decision.actions) is throttled

    @pytest.mark.parametrize(("checks", "throttled"), [(1, False), (2, True)])
    def test_more_than_one_account_check_a_second_blocks_the_cookie_for_30_seconds(self, checks, throttled):
        decision = decide(type="account_check", account_checks_this_second=checks)

        assert (decision.actions, decision.retry_after, decision.block_cookie) == (
            ([THROTTLE], 30, True) if throttled else ([], None, False)
        )

    def test_a_blocked_cookie_is_told_how_long_is_left(self):
        decision = decide(type="account_check", account_checks_this_second=1, cookie_blocked_seconds_left=12)

        assert (decision.actions, decision.retry_after) == ([THROTTLE], 12)

    def test_without_counters_anonymous_traffic_is_throttled(self):
        assert decide(type="registration_attempt", counters_unavailable=True).actions == [THROTTLE]


class TestSuspiciousSources:
    def test_a_banned_ip_is_refused_with_the_time_left(self):
        decision = decide(type="login", ip_status="BANNED", ban_seconds_left=600)

        assert (decision.actions, decision.retry_after) == ([THROTTLE], 600)

    def test_a_limited_device_needs_verification_every_time(self):
        assert VERIFY_DEVICE in decide(type="login", device_status="LIMITED").actions

    def test_a_flagged_ip_is_only_watched(self):
        assert decide(type="login", ip_status="FLAGGED").actions == []
