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


def legal_vasp(name: str, national_identification: dict | None = None) -> dict:
    person = {"name": {"nameIdentifier": [{"legalPersonName": name, "legalPersonNameIdentifierType": "LEGL"}]}}
    if national_identification:
        person["nationalIdentification"] = national_identification
    return {"legalPerson": person}


def with_transfer_path(*hops: tuple[int, dict]) -> dict:
    data = fixture("identity_payload.json")
    data["transferPath"] = {"transferPath": [{"intermediaryVASP": v, "sequence": s} for s, v in hops]}
    return data


class TestNationalIdentification:
    """IVMS101 C9 (registrationAuthority with RAID, not with LEIX), C10 (the GLEIF list) and C11 (the LEI)."""

    def parse_vasp_id(self, nid: dict, authorities=None):
        data = fixture("identity_payload.json")
        for person in (data["originator"]["originatorPersons"][0], data["beneficiary"]["beneficiaryPersons"][0]):
            person["naturalPerson"]["nationalIdentification"].pop("registrationAuthority", None)
        data["beneficiaryVASP"]["beneficiaryVASP"]["legalPerson"]["nationalIdentification"] = nid
        return ivms101.parse(data, today=TODAY, registration_authorities=authorities)

    def test_a_raid_identifier_needs_its_registration_authority(self):
        with pytest.raises(ivms101.InvalidIvms, match="C9: registrationAuthority is required"):
            self.parse_vasp_id({"nationalIdentifier": "12345678", "nationalIdentifierType": "RAID"})

    def test_a_natural_persons_raid_identifier_needs_it_too(self):
        data = fixture("identity_payload.json")
        person = data["originator"]["originatorPersons"][0]["naturalPerson"]
        person["nationalIdentification"] = {"nationalIdentifier": "446005", "nationalIdentifierType": "RAID"}

        with pytest.raises(ivms101.InvalidIvms, match="C9: registrationAuthority is required with a RAID"):
            ivms101.parse(data, today=TODAY)

        person["nationalIdentification"]["registrationAuthority"] = "RA000553"
        assert ivms101.parse(data, today=TODAY)

    def test_an_lei_must_not_name_a_registration_authority(self):
        nid = {
            "nationalIdentifier": "506700T7Z685VUOZL877",
            "nationalIdentifierType": "LEIX",
            "registrationAuthority": "RA000585",
        }

        with pytest.raises(ivms101.InvalidIvms, match="C9: no registrationAuthority with an LEI"):
            self.parse_vasp_id(nid)

    def test_an_lei_with_a_bad_check_digit_breaks_c11(self):
        with pytest.raises(ivms101.InvalidIvms, match="C11"):
            self.parse_vasp_id({"nationalIdentifier": "506700T7Z685VUOZL878", "nationalIdentifierType": "LEIX"})

    def test_a_valid_lei_alone_is_accepted(self):
        payload = self.parse_vasp_id({"nationalIdentifier": "506700T7Z685VUOZL877", "nationalIdentifierType": "LEIX"})

        assert payload.beneficiaryVASP.beneficiaryVASP.legalPerson.nationalIdentification.nationalIdentifierType == (
            "LEIX"
        )

    @pytest.mark.parametrize("code", ["RA12345", "RA1234567", "ra000585", "XX000585"])
    def test_a_registration_authority_not_shaped_like_a_gleif_code_is_refused(self, code):
        nid = {"nationalIdentifier": "12345678", "nationalIdentifierType": "RAID", "registrationAuthority": code}

        with pytest.raises(ivms101.InvalidIvms, match="registrationAuthority"):
            self.parse_vasp_id(nid)

    def test_without_a_list_only_the_format_is_checked(self):
        nid = {"nationalIdentifier": "12345678", "nationalIdentifierType": "RAID", "registrationAuthority": "RA777777"}

        assert self.parse_vasp_id(nid, authorities=None)

    def test_with_a_list_the_code_must_be_on_it(self):
        nid = {"nationalIdentifier": "12345678", "nationalIdentifierType": "RAID", "registrationAuthority": "RA777777"}

        with pytest.raises(ivms101.InvalidIvms, match="C10: RA777777 is not on the GLEIF"):
            self.parse_vasp_id(nid, authorities=frozenset({"RA000585"}))
        assert self.parse_vasp_id({**nid, "registrationAuthority": "RA000585"}, authorities=frozenset({"RA000585"}))


class TestTransferPath:
    def test_intermediary_vasps_are_accepted_and_kept_in_sequence_order(self):
        data = with_transfer_path((1, legal_vasp("VASP F")), (0, legal_vasp("VASP E")))

        stored = ivms101.to_json(ivms101.parse(data, today=TODAY))

        hops = stored["transferPath"]["transferPath"]
        assert [
            (h["sequence"], h["intermediaryVASP"]["legalPerson"]["name"]["nameIdentifier"][0]["legalPersonName"])
            for h in hops
        ] == [(0, "VASP E"), (1, "VASP F")]

    @pytest.mark.parametrize("sequences", [(1,), (0, 2), (0, 0)])
    def test_sequences_must_start_at_zero_without_gaps_or_repeats(self, sequences):
        data = with_transfer_path(*[(s, legal_vasp(f"VASP {s}")) for s in sequences])

        with pytest.raises(ivms101.InvalidIvms, match="C12"):
            ivms101.parse(data, today=TODAY)

    def test_an_intermediary_is_held_to_the_person_constraints(self):
        vasp = legal_vasp("VASP E", {"nationalIdentifier": "506700T7Z685VUOZL878", "nationalIdentifierType": "LEIX"})

        with pytest.raises(ivms101.InvalidIvms) as refused:
            ivms101.parse(with_transfer_path((0, vasp)), today=TODAY)

        assert refused.value.problems == [
            ("transferPath.transferPath[0].intermediaryVASP.legalPerson.nationalIdentification", "C11: not a valid LEI")
        ]

    @pytest.mark.parametrize(
        "hop",
        [
            {"intermediaryVASP": legal_vasp("VASP E")},
            {"intermediaryVASP": legal_vasp("VASP E"), "sequence": -1},
            {"intermediaryVASP": legal_vasp("VASP E"), "sequence": "0"},
            {"intermediaryVASP": legal_vasp("VASP E"), "sequence": 0, "hop": "first"},
            {"sequence": 0},
        ],
    )
    def test_a_malformed_hop_is_refused(self, hop):
        data = fixture("identity_payload.json")
        data["transferPath"] = {"transferPath": [hop]}

        with pytest.raises(ivms101.InvalidIvms):
            ivms101.parse(data, today=TODAY)

    def test_both_editions_of_the_message_carry_the_transfer_path(self):
        vasp = legal_vasp("VASP E", {"nationalIdentifier": "506700T7Z685VUOZL877", "nationalIdentifierType": "LEIX"})
        vasp["legalPerson"]["customerNumber"] = "E-1"
        stored = ivms101.to_json(ivms101.parse(with_transfer_path((0, vasp)), today=TODAY))

        v2020 = ivms101.message(stored, version="101")
        v2023 = ivms101.message(stored, version="101.2023")

        assert v2020["transferPath"]["transferPath"][0]["intermediaryVASP"]["legalPerson"]["customerNumber"] == "E-1"
        hop = v2023["transferPath"]["transferPath"][0]
        assert hop["sequence"] == 0
        assert hop["intermediaryVASP"]["legalPerson"]["customerIdentification"] == "E-1"
        assert "customerNumber" not in hop["intermediaryVASP"]["legalPerson"]

    def test_the_summary_names_every_party_in_order(self):
        stored = ivms101.to_json(
            ivms101.parse(with_transfer_path((1, legal_vasp("VASP F")), (0, legal_vasp("VASP E"))), today=TODAY)
        )

        summary = ivms101.summary(stored)

        assert summary["originating_vasp"] == "AliceCoin, Inc."
        assert summary["beneficiary_vasp"] == "Bob's Discount VASP, PLC"
        assert summary["intermediaries"] == [{"sequence": 0, "name": "VASP E"}, {"sequence": 1, "name": "VASP F"}]
        assert summary["originators"] == ["Jane Howard"]
