from pathlib import Path

import pytest

from kyc import ofac
from tests.kyc.builders import ofac_row, write_ofac

OFAC = Path("/work/shared/reference/sanctions/ofac")
ADDRESSES = Path("/work/shared/reference/sanctions/crypto-addresses")


@pytest.fixture(scope="module")
def sdn_2024():
    entries = ofac.parse_ofac(OFAC / "sdn-2024-05-03/sdn.csv", comments=OFAC / "sdn-comments-2025-02/sdn_comments.csv")
    return {e.ent_num: e for e in entries}


@pytest.fixture(scope="module")
def legacy_2021():
    folder = OFAC / "legacy-set-2021-07"
    entries = ofac.parse_ofac(folder / "sdn.csv", alt=folder / "alt.csv", comments=folder / "sdn_comments.csv")
    return {e.ent_num: e for e in entries}


class TestParseOfacOnTheRealFiles:
    def test_reads_every_row_of_the_2024_sdn_list(self, sdn_2024):
        assert len(sdn_2024) == 14965

    def test_reads_names_dates_nationality_and_digital_currency_addresses(self, sdn_2024):
        yan = sdn_2024["25308"]

        assert (yan.kind, yan.name, yan.birth_dates, yan.countries) == (
            "INDIVIDUAL",
            "YAN, Xiaobing",
            ("1977-03-25",),
            ("CN",),
        )
        assert yan.aliases == ("ZHOU, William", "YAN, Steven")
        assert yan.addresses[0] == ("XBT", "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h")
        assert len(yan.addresses) == 6

    def test_joins_remarks_that_continue_mid_word_in_the_comments_file(self, legacy_2021):
        assert "PROMO RAIZ S.A.S." in legacy_2021["12300"].remarks

    def test_reads_aliases_from_the_alt_file(self, legacy_2021):
        assert "NATIONAL BANK OF CUBA" in legacy_2021["306"].aliases

    def test_entities_are_not_individuals(self, sdn_2024):
        assert sdn_2024["306"].kind == "ENTITY"

    def test_the_fingerprint_changes_with_the_content(self, sdn_2024):
        yan = sdn_2024["25308"]
        renamed = ofac.ParsedEntry(**{**yan.__dict__, "name": "YAN, Xiao"})

        assert renamed.fingerprint != yan.fingerprint


class TestRemarksOverflow:
    def test_a_cut_remark_continues_with_its_space_kept(self, tmp_path):
        cut = ("DOB 1960; " * 100)[:996] + "To: "
        primary = write_ofac(tmp_path / "sdn.csv", [ofac_row(1, "DOE, John", remarks=cut)])
        comments = tmp_path / "sdn_comments.csv"
        comments.write_bytes(b'1,"BANCO X; Digital Currency Address - XBT 1AbC."\r\n\x1a')

        entry = ofac.parse_ofac(primary, comments=comments)[0]

        assert entry.remarks.endswith("To: BANCO X; Digital Currency Address - XBT 1AbC.")
        assert entry.addresses == (("XBT", "1AbC"),)

    def test_an_overflow_for_a_remark_that_was_not_cut_is_left_out(self, tmp_path):
        primary = write_ofac(tmp_path / "sdn.csv", [ofac_row(1, "DOE, John", remarks="DOB 1960.")])
        comments = tmp_path / "sdn_comments.csv"
        comments.write_bytes(b'1,"s - ETH 0xabc"\r\n\x1a')

        assert ofac.parse_ofac(primary, comments=comments)[0].remarks == "DOB 1960."


class TestBirthDates:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("25 Mar 1977", ["1977-03-25"]),
            ("1958", ["1958"]),
            ("circa 1958", ["1958"]),
            ("Mar 1977", ["1977"]),
            ("1960 to 1962", ["1960", "1961", "1962"]),
            ("unknown", []),
        ],
    )
    def test_reads_ofac_date_forms(self, text, expected):
        assert ofac.birth_dates(text) == expected


class TestCountryCode:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("Iran", "IR"),
            ("Korea, North", "KP"),
            ("Russia.", "RU"),
            ("Germany", "DE"),
            ("Congo, Democratic Republic of the", "CD"),
            ("possibly Palestinian", ""),
        ],
    )
    def test_maps_ofac_country_names(self, name, expected):
        assert ofac.country_code(name) == expected


class TestBadFiles:
    def test_refuses_a_file_that_is_not_an_ofac_csv(self, tmp_path):
        path = tmp_path / "sdn.csv"
        path.write_text("name,program\nsomeone,SDGT\n")

        with pytest.raises(ofac.ListFormatError, match="line 1 is not an OFAC row of 12 columns"):
            ofac.parse_ofac(path)

    def test_refuses_an_empty_file(self, tmp_path):
        with pytest.raises(ofac.ListFormatError, match="no rows"):
            ofac.parse_ofac(write_ofac(tmp_path / "sdn.csv", []))

    def test_refuses_a_missing_file(self, tmp_path):
        with pytest.raises(ofac.ListFormatError, match="cannot read"):
            ofac.parse_ofac(tmp_path / "absent.csv")

    def test_reads_a_minimal_valid_file(self, tmp_path):
        path = write_ofac(tmp_path / "sdn.csv", [ofac_row(1, "DOE, John", remarks="DOB 1960; nationality Iran.")])

        assert ofac.parse_ofac(path)[0].countries == ("IR",)


class TestAddressLists:
    def test_reads_a_per_ticker_list(self):
        pairs = ofac.parse_address_list(ADDRESSES / "0xB10C-lists-2024-09-27/sanctioned_addresses_BCH.txt")

        assert ("BCH", "qpf2cphc5dkuclkqur7lhj2yuqq9pk3hmukle77vhq") in pairs

    def test_reads_the_ethereum_csv(self):
        pairs = ofac.parse_address_list(ADDRESSES / "ultrasoundmoney-eth/data.csv")

        assert pairs[0] == ("ETH", "0x098B716B8Aaf21512996dC57EB0615e2383E2f96")
        assert len(pairs) == 97

    def test_refuses_an_unknown_file(self, tmp_path):
        path = tmp_path / "wallets.txt"
        path.write_text("abc\n")

        with pytest.raises(ofac.ListFormatError, match="not a known address list"):
            ofac.parse_address_list(path)
