import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from backoffice.errors import InvalidInput
from backoffice.models import OperationsLogEntry
from tests import factories
from tests.withdrawals.conftest import TRX_ADDRESS, body
from withdrawals import registration_authorities
from withdrawals.models import RegistrationAuthority, Withdrawal

SAMPLE = Path(__file__).with_name("registration_authorities_sample.csv")
FIXTURES = Path(__file__).resolve().parents[3] / "shared/reference/travel-rule/trisa-fixtures"
URL = "/api/v1/withdrawals/"


def identity_payload(registration_authority: str) -> dict:
    """The TRISA identity payload with every identifier kept by `registration_authority` (it names RA777777)."""
    data = json.loads((FIXTURES / "ivms101/identity_payload.json").read_text())
    for person in (
        data["originator"]["originatorPersons"][0]["naturalPerson"],
        data["beneficiary"]["beneficiaryPersons"][0]["naturalPerson"],
        data["beneficiaryVASP"]["beneficiaryVASP"]["legalPerson"],
    ):
        person["nationalIdentification"]["registrationAuthority"] = registration_authority
    return data


def post(engine, account, registration_authority: str):
    data = body(
        account,
        asset="USDT",
        network="TRX",
        amount="1500",
        address=TRX_ADDRESS,
        travel_rule=identity_payload(registration_authority),
    )
    return engine.post(URL, data, format="json")


class TestLoading:
    def test_the_command_loads_the_list_and_records_it(self, db):
        call_command("load_gleif_registration_authorities", str(SAMPLE))

        assert set(RegistrationAuthority.objects.values_list("code", flat=True)) == {
            "RA000553",
            "RA000585",
            "RA000602",
            "RA000999",
        }
        retired = RegistrationAuthority.objects.get(code="RA000999")
        assert (retired.end_date, retired.country_code, retired.source) == (
            "2020-12-31",
            "DE",
            "registration_authorities_sample.csv",
        )
        entry = OperationsLogEntry.objects.get(action="travel_rule.registration_authorities_load")
        assert entry.after["entries"] == 4
        assert entry.actor == "system:load_gleif_registration_authorities"

    def test_a_new_list_replaces_the_old_one(self, db):
        call_command("load_gleif_registration_authorities", str(SAMPLE))

        registration_authorities.replace_list(
            entries=[registration_authorities.Entry(code="RA000585")],
            source="newer.csv",
            actor=factories.SYSTEM,
            now=factories.NOW,
        )

        assert list(RegistrationAuthority.objects.values_list("code", flat=True)) == ["RA000585"]
        entry = OperationsLogEntry.objects.filter(action="travel_rule.registration_authorities_load").last()
        assert entry.after["removed"] == ["RA000553", "RA000602", "RA000999"]

    def test_a_file_that_is_not_the_ra_list_is_refused_and_the_loaded_list_stays(self, db, tmp_path):
        call_command("load_gleif_registration_authorities", str(SAMPLE))
        wrong = tmp_path / "elf-codes.csv"
        wrong.write_text("ELF Code,Country of formation\n8888,DE\n", encoding="utf-8")

        with pytest.raises(CommandError, match="Registration Authority Code"):
            call_command("load_gleif_registration_authorities", str(wrong))

        assert RegistrationAuthority.objects.count() == 4

    def test_a_malformed_code_refuses_the_whole_file(self, db, tmp_path):
        bad = tmp_path / "ra.csv"
        bad.write_text("Registration Authority Code,Country Code\nRA000585,GB\nRA12,XX\n", encoding="utf-8")

        with pytest.raises(CommandError, match="line 3"):
            call_command("load_gleif_registration_authorities", str(bad))

        assert not RegistrationAuthority.objects.exists()

    def test_semicolon_separated_editions_with_a_byte_order_mark_are_read(self):
        text = "\ufeffRA List Code;Country;Country Code\nRA000585;Sample;GB\n#note;;\nRA000602;Sample;US\n"

        entries = registration_authorities.parse_csv(text)

        assert [(e.code, e.country_code) for e in entries] == [("RA000585", "GB"), ("RA000602", "US")]

    def test_a_list_without_entries_is_refused(self):
        with pytest.raises(InvalidInput, match="no registration authorities"):
            registration_authorities.parse_csv("Registration Authority Code,Country\n")


@pytest.mark.usefixtures("prices")
class TestTravelRuleCheck:
    def test_without_a_loaded_list_a_well_formed_code_is_accepted(self, engine, verified_account):
        response = post(engine, verified_account, "RA777777")

        assert response.status_code == 201, response.json()
        stored = Withdrawal.objects.get().travel_rule
        assert stored["beneficiaryVASP"]["beneficiaryVASP"]["legalPerson"]["nationalIdentification"][
            "registrationAuthority"
        ] == ("RA777777")

    def test_with_a_loaded_list_a_code_not_on_it_is_a_400_and_nothing_is_stored(self, engine, verified_account):
        call_command("load_gleif_registration_authorities", str(SAMPLE))

        response = post(engine, verified_account, "RA777777")

        assert response.status_code == 400
        details = response.json()["error"]["details"]
        assert {d["field"] for d in details} == {
            "travel_rule.originator.originatorPersons[0].naturalPerson.nationalIdentification",
            "travel_rule.beneficiary.beneficiaryPersons[0].naturalPerson.nationalIdentification",
            "travel_rule.beneficiaryVASP.beneficiaryVASP.legalPerson.nationalIdentification",
        }
        assert all("C10: RA777777 is not on the GLEIF Registration Authorities List" in d["message"] for d in details)
        assert not Withdrawal.objects.exists()

    def test_with_a_loaded_list_a_code_on_it_is_accepted(self, engine, verified_account):
        call_command("load_gleif_registration_authorities", str(SAMPLE))

        response = post(engine, verified_account, "RA000585")

        assert response.status_code == 201, response.json()
        assert response.json()["status"] == "approved"

    def test_a_malformed_code_is_a_400_with_or_without_a_list(self, engine, verified_account):
        response = post(engine, verified_account, "RA77777X")

        assert response.status_code == 400
        assert "C10" in response.json()["error"]["details"][0]["message"]
        assert not Withdrawal.objects.exists()
