import copy
import json
from datetime import date
from pathlib import Path

import pytest

from withdrawals import ivms101

FIXTURES = Path(__file__).resolve().parents[3] / "shared/reference/travel-rule/trisa-fixtures/ivms101"
TODAY = date(2026, 3, 2)


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


class TestParse:
    def test_the_trisa_identity_payload_is_valid(self):
        payload = ivms101.parse(fixture("identity_payload.json"), today=TODAY)

        assert ivms101.to_json(payload)["originator"]["originatorPersons"]

    def test_trisa_lenient_aliases_are_not_ivms101_and_are_refused(self):
        with pytest.raises(ivms101.InvalidIvms, match="nameIdentifiers"):
            ivms101.parse(fixture("identity_payload_alt.json"), today=TODAY)

    @pytest.mark.parametrize(
        ("path", "value", "constraint"),
        [
            (
                ("originator", "originatorPersons", 0, "naturalPerson", "dateAndPlaceOfBirth", "dateOfBirth"),
                "2030-01-01",
                "C2",
            ),
            (("originator", "originatorPersons", 0, "naturalPerson", "countryOfResidence"), "ZZ", "C3"),
            (
                (
                    "originator",
                    "originatorPersons",
                    0,
                    "naturalPerson",
                    "name",
                    "nameIdentifier",
                    0,
                    "nameIdentifierType",
                ),
                "ALIA",
                "C6",
            ),
            (
                ("originatingVASP", "originatingVASP", "legalPerson", "nationalIdentification", "nationalIdentifier"),
                "506700T7Z685VUOZL878",
                "C11",
            ),
            (
                (
                    "beneficiaryVASP",
                    "beneficiaryVASP",
                    "legalPerson",
                    "nationalIdentification",
                    "registrationAuthority",
                ),
                "GLEIF1",
                "C10",
            ),
        ],
    )
    def test_each_constraint_is_checked(self, path, value, constraint):
        data = copy.deepcopy(fixture("identity_payload.json"))
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

        with pytest.raises(ivms101.InvalidIvms) as refused:
            ivms101.parse(data, today=TODAY)

        assert constraint in str(refused.value)

    def test_an_originator_with_nothing_but_a_name_breaks_c1(self):
        data = fixture("identity_payload.json")
        data["originator"]["originatorPersons"][0]["naturalPerson"] = {
            "name": {"nameIdentifier": [{"primaryIdentifier": "Howard", "nameIdentifierType": "LEGL"}]}
        }

        with pytest.raises(ivms101.InvalidIvms, match="C1"):
            ivms101.parse(data, today=TODAY)

    def test_unknown_fields_are_refused(self):
        data = fixture("identity_payload.json")
        data["originator"]["colour"] = "blue"

        with pytest.raises(ivms101.InvalidIvms):
            ivms101.parse(data, today=TODAY)


class TestMessage:
    def test_2023_renames_what_changed_and_moves_account_numbers_into_the_person(self):
        stored = ivms101.to_json(ivms101.parse(fixture("identity_payload.json"), today=TODAY))

        message = ivms101.message(stored, version="101.2023")

        person = message["beneficiary"]["beneficiaryPerson"][0]
        assert person["accountNumber"] == ["14WU745djqecaJ1gmtWQGeMCFim1W5MNp3"]
        assert person["naturalPerson"]["name"]["nameIdentifier"][1]["naturalPersonNameIdentifierType"] == "ALIA"
        assert message["payloadMetadata"]["payloadVersion"] == "101.2023"

    def test_the_lei_check_follows_iso_17442(self):
        assert ivms101.is_lei("506700T7Z685VUOZL877")
        assert not ivms101.is_lei("506700T7Z685VUOZL878")
