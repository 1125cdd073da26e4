from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from trading_risk import rules

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
D = Decimal


class TestVolumeRules:
    @pytest.mark.parametrize(("volume", "fires"), [("999.99999999", False), ("1000", True), ("1000.00000001", True)])
    def test_wash_trading_fires_at_and_above_its_threshold(self, volume, fires):
        finding = rules.wash_trading(volume_btc=D(volume), threshold_btc=D(1000), action=rules.NO_ACTION)

        assert (finding is not None) == fires

    @pytest.mark.parametrize(("volume", "fires"), [("999", False), ("1000", True), ("1001", True)])
    def test_self_trade_fires_at_and_above_its_threshold(self, volume, fires):
        finding = rules.self_trade(volume_btc=D(volume), threshold_btc=D(1000), action=rules.NO_ACTION)

        assert (finding is not None) == fires

    @pytest.mark.parametrize(
        ("action", "severity"),
        [
            (rules.NO_ACTION, "GENERAL"),
            (rules.WARN, "GENERAL"),
            (rules.RESTRICT_OPEN, "MAJOR"),
            (rules.BAN_TRADING, "MAJOR"),
        ],
    )
    def test_a_restricting_action_makes_the_finding_major(self, action, severity):
        assert rules.self_trade(volume_btc=D(5000), threshold_btc=D(1000), action=action).severity == severity

    LIMITS = rules.ExcessiveLimits(
        warn_btc=D(1000), warn_action=rules.WARN, ban_btc=D(5000), ban_action=rules.BAN_TRADING
    )

    @pytest.mark.parametrize(
        ("volume", "expected"),
        [
            ("999.9", None),
            ("1000", ("warn", "WARN")),
            ("4999.99", ("warn", "WARN")),
            ("5000", ("ban", "BAN_TRADING")),
            ("12000", ("ban", "BAN_TRADING")),
        ],
    )
    def test_excessive_trading_warns_at_1000_and_bans_at_5000_btc(self, volume, expected):
        finding = rules.excessive_trading(volume_btc=D(volume), limits=self.LIMITS)

        assert (finding and (finding.level, finding.action)) == expected


class TestBehaviourAnomaly:
    LIMITS = rules.AnomalyLimits(min_deviations=4, min_history_days=7, min_volume_btc=10, action=rules.WARN)
    QUIET = rules.Baseline(days=30, mean=0, stdev=0)

    @pytest.mark.parametrize(("volume", "fires"), [(59.9, False), (60.0, True), (200.0, True)])
    def test_flags_volume_four_deviations_above_the_accounts_own_mean(self, volume, fires):
        baseline = rules.Baseline(days=30, mean=20, stdev=10)

        finding = rules.behaviour_anomaly(
            volume_btc=volume, order_events=0, volume=baseline, orders=self.QUIET, limits=self.LIMITS
        )

        assert (finding is not None) == fires

    def test_flags_an_order_rate_far_above_the_baseline_even_with_little_volume(self):
        finding = rules.behaviour_anomaly(
            volume_btc=1,
            order_events=5000,
            volume=rules.Baseline(30, 1, 0.5),
            orders=rules.Baseline(30, 100, 20),
            limits=self.LIMITS,
        )

        assert "order rate" in finding.summary

    def test_needs_enough_history_before_it_judges(self):
        finding = rules.behaviour_anomaly(
            volume_btc=1000, order_events=0, volume=rules.Baseline(6, 1, 0.1), orders=self.QUIET, limits=self.LIMITS
        )

        assert finding is None

    def test_small_volumes_are_never_anomalies(self):
        finding = rules.behaviour_anomaly(
            volume_btc=9, order_events=0, volume=rules.Baseline(30, 0.1, 0.01), orders=self.QUIET, limits=self.LIMITS
        )

        assert finding is None

    def test_a_steady_history_uses_a_tenth_of_the_mean_as_its_spread(self):
        assert rules.deviations(15, rules.Baseline(30, 10, 0)) == pytest.approx(5)


class TestFrequentOrderCancel:
    LIMITS = rules.LadderLimits(events=500, ladder_window=timedelta(hours=24), restriction=timedelta(minutes=30))

    @pytest.mark.parametrize(("events", "step"), [(499, None), (500, 1), (501, 1)])
    def test_the_first_hit_at_500_events_is_a_warning(self, events, step):
        result = rules.frequent_order_cancel(state=rules.LadderState(0, None), events=events, at=T0, limits=self.LIMITS)

        assert (result and result.step) == step
        assert result is None or result.restriction_code is None

    @pytest.mark.parametrize(
        ("state", "gap", "expected"),
        [
            (rules.LadderState(1, T0), timedelta(hours=24), (2, "restricted_open")),
            (rules.LadderState(1, T0), timedelta(hours=24, seconds=1), (1, None)),
            (rules.LadderState(2, T0), timedelta(hours=3), (3, "restricted_open_close")),
            (rules.LadderState(3, T0), timedelta(hours=3), (3, "restricted_open_close")),
        ],
    )
    def test_a_hit_within_24_h_of_the_last_warning_climbs_a_step_and_a_later_one_starts_again(
        self, state, gap, expected
    ):
        result = rules.frequent_order_cancel(state=state, events=500, at=T0 + gap, limits=self.LIMITS)

        assert (result.step, result.restriction_code) == expected

    def test_the_second_and_third_steps_also_call_the_customer(self):
        result = rules.frequent_order_cancel(
            state=rules.LadderState(1, T0), events=500, at=T0 + timedelta(hours=1), limits=self.LIMITS
        )

        assert result.channels == ("SMS", "EMAIL", "CALL")

    def test_events_before_the_previous_hit_never_count_again(self):
        state = rules.LadderState(1, T0)

        assert rules.ladder_window_start(state=state, at=T0 + timedelta(hours=1), window=timedelta(hours=24)) == T0
        assert rules.ladder_window_start(state=state, at=T0 + timedelta(hours=30), window=timedelta(hours=24)) == (
            T0 + timedelta(hours=6)
        )


class TestPreTradeCheck:
    def facts(self, **changes):
        base = {
            "symbol": "NEWUSDT",
            "price": D(100),
            "reduce_only": False,
            "restrictions": (),
            "halt_modes": (),
            "band": None,
        }
        return rules.PreTradeFacts(**(base | changes))

    @pytest.mark.parametrize(
        ("price", "allowed"),
        [
            ("95", True),
            ("105", True),
            ("100", True),
            ("94.99", False),
            ("105.01", False),
        ],
    )
    def test_the_new_listing_band_is_index_plus_or_minus_five_percent_edges_included(self, price, allowed):
        facts = self.facts(price=D(price), band=rules.Band(D(100), D(5)))

        assert (rules.pre_trade_check(facts) == []) == allowed

    def test_without_an_index_price_the_band_refuses(self):
        assert rules.pre_trade_check(self.facts(band=rules.Band(None, D(5)))) == ["price_band"]

    @pytest.mark.parametrize(
        ("code", "reduce_only", "reasons"),
        [
            ("restricted_open", False, ["restricted_open"]),
            ("restricted_open", True, []),
            ("restricted_open_close", True, ["restricted_open_close"]),
            ("trading_banned", True, ["trading_banned"]),
            ("account_locked", False, ["account_locked"]),
            ("below_maintenance_margin", False, []),
        ],
    )
    def test_restrictions_refuse_what_they_take_away(self, code, reduce_only, reasons):
        facts = self.facts(restrictions=(rules.Standing(code),), reduce_only=reduce_only)

        assert rules.pre_trade_check(facts) == reasons

    def test_a_restriction_on_another_symbol_does_not_apply(self):
        facts = self.facts(restrictions=(rules.Standing("symbol_halted", "BTCUSDT"),))

        assert rules.pre_trade_check(facts) == []

    @pytest.mark.parametrize(
        ("modes", "reduce_only", "reasons"),
        [
            (("HALT",), True, ["symbol_halted"]),
            (("CLOSE_ONLY",), False, ["symbol_halted"]),
            (("CLOSE_ONLY",), True, []),
        ],
    )
    def test_halts_refuse_everything_and_close_only_refuses_opening(self, modes, reduce_only, reasons):
        assert rules.pre_trade_check(self.facts(halt_modes=modes, reduce_only=reduce_only)) == reasons
