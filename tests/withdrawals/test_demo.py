"""The withdrawals section of load_demo: wallets with one hot wallet below target, and decided requests."""

from io import StringIO

import pytest
from django.core.management import call_command

from tests.kyc.builders import ofac_row, write_ofac
from withdrawals.models import Wallet, WalletAlert, WalletBalance, Withdrawal

pytestmark = pytest.mark.django_db

LISTED_ETH_ADDRESS = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"


@pytest.fixture
def sanctions(tmp_path, settings):
    """A tiny reference folder in OFAC's layout with one sanctioned Ethereum address."""
    folder = tmp_path / "sanctions"
    for sub in ("ofac/sdn-2026-01-02", "crypto-addresses/lists"):
        (folder / sub).mkdir(parents=True)
    write_ofac(folder / "ofac/sdn-2026-01-02/sdn.csv", [ofac_row(9001, "NORTHWIND SHIPPING LLC", kind="-0-")])
    (folder / "crypto-addresses/lists/sanctioned_addresses_ETH.txt").write_text(LISTED_ETH_ADDRESS + "\n")
    settings.KYC_DEMO_SANCTIONS_DIR = str(folder)
    return folder


def load_demo(seed: int = 5) -> str:
    out = StringIO()
    call_command("load_demo", "--seed", str(seed), "--customers", "60", stdout=out)
    return next(line for line in out.getvalue().splitlines() if line.startswith("withdrawals: "))


def statuses() -> dict[str, int]:
    return {s: Withdrawal.objects.filter(status=s).count() for s in Withdrawal.Status.values}


class TestWithdrawalsDemo:
    def test_plants_every_status_and_a_hot_wallet_below_target_and_a_rerun_adds_nothing(self, sanctions):
        summary = load_demo()

        assert Wallet.objects.count() == 12
        assert set(Wallet.objects.values_list("tier", flat=True)) == {"HOT", "WARM", "COLD"}
        assert WalletBalance.objects.exists()
        below = WalletAlert.objects.filter(kind=WalletAlert.Kind.BELOW_TARGET)
        assert set(below.values_list("wallet__tier", flat=True)) == {"HOT"}
        counts = statuses()
        assert counts["APPROVED"] > sum(counts.values()) / 2
        for status in ("HELD", "PENDING_REVIEW", "REJECTED", "FROZEN"):
            assert counts[status] >= 1, status
        assert 40 <= sum(counts.values()) <= 60
        assert "large_withdrawal_hold" in Withdrawal.objects.filter(status="HELD").first().reasons
        assert "password_changed_24h" in Withdrawal.objects.filter(status="REJECTED").first().reasons
        assert "high_risk_address" in Withdrawal.objects.get(status="FROZEN").reasons
        assert "withdrawals (" in summary

        alerts = WalletAlert.objects.count()
        assert load_demo() == "withdrawals: already there (demo withdrawals exist)"
        assert statuses() == counts
        assert (Wallet.objects.count(), WalletAlert.objects.count()) == (12, alerts)

    def test_without_a_sanctioned_address_list_nothing_is_frozen(self):
        load_demo()

        counts = statuses()
        assert counts["FROZEN"] == 0
        for status in ("APPROVED", "HELD", "PENDING_REVIEW", "REJECTED"):
            assert counts[status] >= 1, status
