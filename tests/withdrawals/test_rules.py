from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from withdrawals import rules

AT = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LIMITS = rules.Limits(
    password_lock=timedelta(hours=24),
    large_threshold_btc=D("1000"),
    large_hold=timedelta(hours=24),
    dormant_after=timedelta(days=180),
    dormant_large_btc=D("1"),
    travel_rule_threshold_usd=D("1000"),
    dual_approval_above_btc=D("1000"),
    level=rules.LevelLimits(auto_single=D("2"), auto_daily=D("5"), daily=D("2000"), monthly=D("20000")),
)


def snapshot(**fields) -> rules.Snapshot:
    """A withdrawal nothing objects to: small, active customer, travel-rule data given."""
    defaults = {
        "requested_at": AT,
        "value_btc": D("1"),
        "value_usd": D("50000"),
        "limits": LIMITS,
        "last_activity_at": AT - timedelta(days=1),
        "has_travel_rule_data": True,
    }
    return rules.Snapshot(**(defaults | fields))


class TestDecide:
    def test_a_small_withdrawal_by_an_active_customer_is_approved_without_a_person(self):
        decision = rules.decide(snapshot())

        assert (decision.status, decision.reasons, decision.required_approvals) == ("APPROVED", (), 0)

    @pytest.mark.parametrize(
        ("changed_before", "status"),
        [
            (timedelta(hours=23, minutes=59, seconds=59), "REJECTED"),
            (timedelta(hours=24), "APPROVED"),  # exactly 24 h after the change
            (timedelta(hours=25), "APPROVED"),
            (timedelta(0), "REJECTED"),
        ],
    )
    def test_password_change_rejects_within_24_hours_only(self, changed_before, status):
        decision = rules.decide(snapshot(password_changed_at=AT - changed_before))

        assert decision.status == status
        assert ("password_changed_24h" in decision.reasons) == (status == "REJECTED")

    @pytest.mark.parametrize(
        ("value", "status", "approvals"),
        [
            (D("999.99999999"), "PENDING_REVIEW", 1),
            (D("1000"), "PENDING_REVIEW", 1),  # exactly 1000 BTC is not above the threshold
            (D("1000.00000001"), "HELD", 2),
        ],
    )
    def test_large_withdrawals_are_held_above_1000_btc_and_need_two_approvers(self, value, status, approvals):
        decision = rules.decide(
            snapshot(value_btc=value, limits=replace(LIMITS, level=replace(LIMITS.level, daily=D("5000"))))
        )

        assert (decision.status, decision.required_approvals) == (status, approvals)
        assert (decision.hold_until == AT + timedelta(hours=24)) == (status == "HELD")

    @pytest.mark.parametrize(
        ("value", "day_total", "approvals"),
        [
            (D("2"), D("0"), 0),  # at the automatic limit
            (D("2.00000001"), D("0"), 1),  # above it
            (D("1"), D("4"), 0),  # the day's total reaches the daily automatic limit exactly
            (D("1"), D("4.5"), 1),  # … and passes it
        ],
    )
    def test_approval_tier_follows_the_automatic_limit_per_withdrawal_and_per_day(self, value, day_total, approvals):
        decision = rules.decide(snapshot(value_btc=value, day_total_btc=day_total))

        assert decision.required_approvals == approvals
        assert decision.status == ("APPROVED" if approvals == 0 else "PENDING_REVIEW")

    @pytest.mark.parametrize(
        ("day_total", "month_total", "rule"),
        [
            (D("1999"), D("0"), None),
            (D("1999.5"), D("0"), "daily_limit"),
            (D("0"), D("19999"), None),
            (D("0"), D("19999.5"), "monthly_limit"),
        ],
    )
    def test_kyc_level_limits_reject_beyond_the_day_and_the_month(self, day_total, month_total, rule):
        decision = rules.decide(snapshot(day_total_btc=day_total, month_total_btc=month_total))

        fired = {f.rule for f in decision.findings}
        assert (rule in fired) if rule else not fired & {"daily_limit", "monthly_limit"}
        assert ("kyc_level_insufficient" in decision.reasons) == (rule is not None)

    @pytest.mark.parametrize(
        ("codes", "status", "reason"),
        [
            ({"account_locked"}, "REJECTED", "account_locked"),
            ({"sanctions_hit"}, "FROZEN", "sanctions_hit"),
            ({"below_maintenance_margin"}, "REJECTED", "below_maintenance_margin"),
        ],
    )
    def test_standing_restrictions_decide_per_the_contract(self, codes, status, reason):
        decision = rules.decide(snapshot(restriction_codes=frozenset(codes)))

        assert (decision.status, decision.reasons) == (status, (reason,))

    def test_insufficient_kyc_level_is_rejected(self):
        assert rules.decide(snapshot(meets_kyc_level=False)).reasons == ("kyc_level_insufficient",)

    def test_listed_destination_is_frozen(self):
        decision = rules.decide(snapshot(screening="listed"))

        assert (decision.status, decision.reasons) == ("FROZEN", ("high_risk_address",))

    def test_suspended_asset_holds_without_a_hold_time(self):
        decision = rules.decide(snapshot(asset_suspended=True))

        assert (decision.status, decision.reasons, decision.hold_until) == ("HELD", ("asset_suspended",), None)

    @pytest.mark.parametrize(
        ("idle", "value", "fires"),
        [
            (timedelta(days=180), D("1.01"), True),  # exactly the dormancy period
            (timedelta(days=179), D("1.01"), False),
            (timedelta(days=400), D("1"), False),  # not above the large amount for dormant accounts
        ],
    )
    def test_dormant_account_moving_a_large_amount_goes_to_review(self, idle, value, fires):
        decision = rules.decide(snapshot(last_activity_at=AT - idle, value_btc=value))

        assert ("dormant_account_review" in decision.reasons) == fires

    @pytest.mark.parametrize(
        ("usd", "has_data", "fires"),
        [
            (D("999.99"), False, False),
            (D("1000"), False, True),  # at the threshold the data is needed
            (D("5000"), True, False),
        ],
    )
    def test_travel_rule_data_is_needed_at_or_above_the_threshold(self, usd, has_data, fires):
        decision = rules.decide(snapshot(value_usd=usd, has_travel_rule_data=has_data, value_btc=D("0.02")))

        assert ("travel_rule_missing" in decision.reasons) == fires
        assert decision.status == ("PENDING_REVIEW" if fires else "APPROVED")

    @pytest.mark.parametrize(
        "facts", [{"manual_confirmation": True}, {"infrastructure_ok": False}, {"screening": "unavailable"}]
    )
    def test_incidents_and_unavailable_checks_fail_closed_to_review(self, facts):
        decision = rules.decide(snapshot(**facts))

        assert (decision.status, decision.reasons, decision.required_approvals) == ("PENDING_REVIEW", (), 1)

    def test_the_strictest_finding_decides_and_every_reason_is_given(self):
        decision = rules.decide(
            snapshot(
                screening="listed",
                password_changed_at=AT,
                value_btc=D("1500"),
                limits=replace(LIMITS, level=replace(LIMITS.level, daily=D("5000"))),
            )
        )

        assert decision.status == "FROZEN"
        assert set(decision.reasons) == {"high_risk_address", "password_changed_24h", "large_withdrawal_hold"}
        assert decision.hold_until is None
