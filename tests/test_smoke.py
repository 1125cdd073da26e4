from decimal import Decimal

from backoffice.parameters import param


class TestRiskParameterDefaults:
    def test_large_withdrawal_threshold_defaults_to_1000_btc(self, db):
        assert param("withdrawal.large_threshold_btc") == Decimal("1000")
