from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from kyc.models import ListEntry, SanctionedAddress, SanctionsList
from tests.kyc.builders import ofac_row, write_ofac

pytestmark = pytest.mark.django_db
ADDRESSES = Path("/work/shared/reference/sanctions/crypto-addresses")


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


class TestLoadSanctionsList:
    def test_loads_a_list_and_reports_the_version(self, tmp_path):
        path = write_ofac(tmp_path / "sdn.csv", [ofac_row(1, "DOE, John")])

        output = run("load_sanctions_list", "--primary", str(path))

        assert "loaded version" in output
        assert "1 entries (1 added" in output
        assert ListEntry.objects.count() == 1

    @pytest.mark.parametrize(
        ("content", "reason"),
        [
            ("name,program\nx,y\n", "line 1 is not an OFAC row of 12 columns"),
            (b"\xff\xfe\x00bad", "not UTF-8 text"),
        ],
    )
    def test_bad_input_fails_with_a_reason_and_changes_nothing(self, tmp_path, content, reason):
        path = tmp_path / "sdn.csv"
        path.write_bytes(content.encode() if isinstance(content, str) else content)

        with pytest.raises(CommandError, match=reason):
            run("load_sanctions_list", "--primary", str(path))

        assert (SanctionsList.objects.count(), ListEntry.objects.count()) == (0, 0)

    def test_a_bad_comments_file_loads_nothing(self, tmp_path):
        path = write_ofac(tmp_path / "sdn.csv", [ofac_row(1, "DOE, John")])
        comments = tmp_path / "sdn_comments.csv"
        comments.write_text("1,2,3\n")

        with pytest.raises(CommandError, match=r"sdn_comments\.csv: line 1"):
            run("load_sanctions_list", "--primary", str(path), "--comments", str(comments))

        assert ListEntry.objects.count() == 0


class TestLoadSanctionedAddresses:
    def test_loads_the_real_address_lists(self):
        output = run(
            "load_sanctioned_addresses",
            str(ADDRESSES / "0xB10C-lists-2024-09-27"),
            str(ADDRESSES / "ultrasoundmoney-eth/data.csv"),
        )

        assert "OFAC_ADDRESSES" in output
        assert SanctionedAddress.objects.filter(chain="EVM").exists()
        assert SanctionedAddress.objects.filter(chain="XMR").exists()

    def test_an_unknown_file_fails_with_a_reason_and_changes_nothing(self, tmp_path):
        junk = tmp_path / "wallets.txt"
        junk.write_text("abc\n")

        with pytest.raises(CommandError, match="not a known address list"):
            run("load_sanctioned_addresses", str(junk))

        assert SanctionedAddress.objects.count() == 0


class TestLoadWatchlist:
    CONGRESS = Path("/work/shared/reference/screening-benchmark/yente-fixtures/positives_us_congress_untreated.csv")

    def test_loads_a_pep_list_that_screening_then_finds(self):
        from kyc import selectors
        from kyc.matching import Subject

        output = run("load_watchlist", str(self.CONGRESS), "--source", "PEP_US_CONGRESS")

        assert "PEP_US_CONGRESS: 1254 entries" in output
        assert selectors.screening_index().screen(Subject("Nancy Pelosi"), threshold=88)

    def test_a_csv_without_names_fails_and_changes_nothing(self, tmp_path):
        path = tmp_path / "pep.csv"
        path.write_text("name,dob\nJane,1970\n")

        with pytest.raises(CommandError, match="expected a CSV with a full_name column"):
            run("load_watchlist", str(path), "--source", "PEP_X")

        assert SanctionsList.objects.count() == 0
