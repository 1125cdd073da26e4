"""The margin formulas against the worked numbers of risk-mechanics.md §1–2 (no database)."""

from decimal import Decimal as D

import pytest

from trading_risk import margin

BTCUSDT = margin.with_maintenance_amounts(
    [
        margin.Bracket(D(0), D(50_000), D("0.004")),
        margin.Bracket(D(50_000), D(250_000), D("0.005")),
        margin.Bracket(D(250_000), D(1_000_000), D("0.01")),
        margin.Bracket(D(1_000_000), D(10_000_000), D("0.025")),
        margin.Bracket(D(10_000_000), D(20_000_000), D("0.05")),
        margin.Bracket(D(20_000_000), D(50_000_000), D("0.10")),
        margin.Bracket(D(50_000_000), D(100_000_000), D("0.125")),
        margin.Bracket(D(100_000_000), D(200_000_000), D("0.15")),
        margin.Bracket(D(200_000_000), D(300_000_000), D("0.25")),
        margin.Bracket(D(300_000_000), D(500_000_000), D("0.50")),
    ]
)


class TestStepTiers:
    @pytest.mark.parametrize(
        ("size", "steps", "mmr", "imr"),
        [
            (180, 0, "0.005", "0.010"),
            (200, 1, "0.010", "0.015"),
            (230, 1, "0.010", "0.015"),
            (349, 1, "0.010", "0.015"),
            (350, 2, "0.015", "0.020"),
            (650, 4, "0.025", "0.030"),
        ],
    )
    def test_rates_rise_by_the_base_maintenance_rate_per_step(self, size, steps, mmr, imr):
        tier = margin.step_tier(
            D(size),
            base_limit=D(200),
            step=D(150),
            base_maintenance=D("0.005"),
            base_initial=D("0.01"),
            increment=D("0.005"),
        )

        assert (tier.steps, tier.maintenance_rate, tier.initial_rate) == (steps, D(mmr), D(imr))

    def test_the_warning_line_is_halfway_between_maintenance_and_initial(self):
        assert margin.warning_rate(D("0.005"), D("0.01")) == D("0.0075")


class TestBrackets:
    def test_maintenance_amounts_accumulate(self):
        assert [b.maintenance_amount for b in BTCUSDT[:5]] == [0, 50, 1_300, 16_300, 266_300]
        assert BTCUSDT[-1].maintenance_amount == 100_016_300

    def test_maintenance_margin_of_a_500000_position(self):
        assert margin.maintenance_margin(D(500_000), BTCUSDT) == D(3_700)

    def test_maintenance_margin_is_continuous_at_a_bracket_edge(self):
        just_below = D(250_000) * D("0.005") - 50

        assert margin.maintenance_margin(D(250_000), BTCUSDT) == just_below == D(1_200)


def close(value, expected, places=2):
    assert round(value, places) == D(expected)


class TestLiquidationPrices:
    def test_linear_exact_long_isolated(self):
        close(
            margin.liquidation_price_linear(side=1, qty=D(1), entry=D(50_000), wallet=D(5_000), brackets=BTCUSDT),
            "45180.72",
        )

    def test_linear_exact_short_moves_to_the_second_bracket(self):
        close(
            margin.liquidation_price_linear(side=-1, qty=D(1), entry=D(50_000), wallet=D(5_000), brackets=BTCUSDT),
            "54776.12",
        )

    def test_linear_exact_long_cross(self):
        close(
            margin.liquidation_price_linear(side=1, qty=D(1), entry=D(50_000), wallet=D(10_000), brackets=BTCUSDT),
            "40160.64",
        )

    @pytest.mark.parametrize(("mmr", "expected"), [("0.004", "45200"), ("0.005", "45250")])
    def test_linear_simplified_long(self, mmr, expected):
        close(
            margin.liquidation_price_linear_simple(
                side=1, entry=D(50_000), initial_rate=D("0.1"), maintenance_rate=D(mmr)
            ),
            expected,
        )

    @pytest.mark.parametrize(("side", "expected"), [(1, "45636.36"), (-1, "55333.33")])
    def test_inverse_exact(self, side, expected):
        close(
            margin.liquidation_price_inverse(
                side=side,
                contracts=D(100),
                contract_size=D(100),
                entry=D(50_000),
                wallet=D("0.02"),
                maintenance_rate=D("0.004"),
            ),
            expected,
        )

    @pytest.mark.parametrize(("side", "expected"), [(1, "45620.44"), (-1, "55309.73")])
    def test_inverse_simplified(self, side, expected):
        close(
            margin.liquidation_price_inverse_simple(
                side=side, entry=D(50_000), initial_rate=D("0.1"), maintenance_rate=D("0.004")
            ),
            expected,
        )

    def test_inverse_simplified_matches_the_published_example(self):
        close(
            margin.liquidation_price_inverse_simple(
                side=1, entry=D(50_000), initial_rate=D("0.1"), maintenance_rate=D("0.005")
            ),
            "45662.10",
        )


class TestBankruptcyPrices:
    @pytest.mark.parametrize(
        ("side", "leverage", "entry", "expected"),
        [(1, 10, 50_000, "45000"), (-1, 10, 50_000, "55000"), (1, 50, 10_000, "9800")],
    )
    def test_linear(self, side, leverage, entry, expected):
        close(margin.bankruptcy_price_linear(side=side, entry=D(entry), leverage=D(leverage)), expected)

    @pytest.mark.parametrize(("side", "expected"), [(1, "45454.55"), (-1, "55555.56")])
    def test_inverse(self, side, expected):
        close(margin.bankruptcy_price_inverse(side=side, entry=D(50_000), leverage=D(10)), expected)


class TestInsuranceFund:
    @pytest.mark.parametrize(("fill", "change"), [(45_100, 100), (44_900, -100), (45_000, 0)])
    def test_a_fill_better_than_bankruptcy_pays_in_and_a_worse_one_draws(self, fill, change):
        assert margin.insurance_fund_change_linear(side=1, qty=D(1), fill=D(fill), bankruptcy=D(45_000)) == change

    def test_a_short_is_the_mirror_image(self):
        assert margin.insurance_fund_change_linear(side=-1, qty=D(1), fill=D(3_060), bankruptcy=D(3_000)) == -60


class TestAutoDeleveraging:
    @pytest.mark.parametrize(
        ("side", "mark", "bankruptcy", "expected"),
        [(1, 50_000, 36_000, "0.8929"), (-1, 35_000, 44_000, "0.4861"), (1, 38_000, 36_000, "-0.002632")],
    )
    def test_scores_profit_by_effective_leverage(self, side, mark, bankruptcy, expected):
        score = margin.adl_score(side=side, qty=D(1), entry=D(40_000), mark=D(mark), bankruptcy=D(bankruptcy))

        assert round(score, 6 if expected.startswith("-") else 4) == D(expected)

    def test_the_queue_reproduces_the_published_quintiles(self):
        accounts = [("1", 10, 3), ("2", 10, 6), ("3", 20, 1), ("4", 30, 4), ("5", 20, 5), ("6", 10, 2)]

        queue = margin.adl_queue([margin.QueuePosition(k, D(q), D(s)) for k, q, s in accounts])

        assert [(p.key, quintile) for p, quintile in queue] == [
            ("2", 1),
            ("5", 2),
            ("4", 3),
            ("1", 4),
            ("6", 4),
            ("3", 5),
        ]


class TestAdlAllocation:
    def test_walks_the_queue_from_the_top_as_in_the_bitmex_example(self):
        accounts = [("1", 10, 3), ("2", 10, 6), ("3", 20, 1), ("4", 30, 4), ("5", 20, 5), ("6", 10, 2)]
        queue = [p for p, _ in margin.adl_queue([margin.QueuePosition(k, D(q), D(s)) for k, q, s in accounts])]

        allocations, left = margin.adl_allocation(queue, D(20))

        assert [(p.key, qty) for p, qty in allocations] == [("2", 10), ("5", 10)]
        assert left == 0

    def test_reports_what_is_left_when_the_queue_runs_out(self):
        queue = [margin.QueuePosition("a", D(3), D(1))]

        allocations, left = margin.adl_allocation(queue, D(5))

        assert [(p.key, qty) for p, qty in allocations] == [("a", 3)]
        assert left == 2


class TestShortfallSplit:
    def test_the_fund_pays_a_shortfall_it_can_afford(self):
        split = margin.split_shortfall(shortfall=D(100), available=D(1000), qty=D(1))

        assert (split.fund_pays, split.adl_qty, split.uncovered) == (100, 0, 0)

    def test_the_rest_of_the_quantity_is_deleveraged_when_the_fund_runs_short(self):
        split = margin.split_shortfall(shortfall=D(100), available=D(25), qty=D(2))

        assert (split.fund_pays, split.adl_qty, split.uncovered) == (25, D("1.5"), 75)

    def test_an_empty_fund_deleverages_everything(self):
        split = margin.split_shortfall(shortfall=D(100), available=D(-5), qty=D(1))

        assert (split.fund_pays, split.adl_qty) == (0, 1)
