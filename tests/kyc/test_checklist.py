from kyc.checklist import Dossier, Need, checklist

INDIVIDUAL = [
    Need("FIELD", "name", "Full name", 1),
    Need("DOCUMENT", "ID_DOCUMENT", "ID document", 1),
    Need("CHECK", "AUTHENTICATOR", "Authenticator", 2),
    Need("CHECK", "FACE_MATCH", "Face match", 3),
]
CORPORATE = [
    Need("FIELD", "authorised_person", "Authorised person", 1),
    Need("DOCUMENT", "BOARD_RESOLUTION", "Board resolution", 1),
    Need("DOCUMENT", "POWER_OF_ATTORNEY", "Power of attorney", 1),
]


class TestChecklist:
    def test_a_level_needs_its_own_and_every_lower_levels_requirements(self):
        dossier = Dossier({"name": "Ann"}, frozenset({"AUTHENTICATOR"}), (("ID_DOCUMENT", ""),))

        table = [
            (level, [i.need.code for i in checklist(INDIVIDUAL, dossier, level=level, corporate=False).missing])
            for level in (1, 2, 3)
        ]

        assert table == [(1, []), (2, []), (3, ["FACE_MATCH"])]

    def test_lists_blank_fields_and_absent_documents_as_missing(self):
        dossier = Dossier({"name": ""}, frozenset(), ())

        found = checklist(INDIVIDUAL, dossier, level=1, corporate=False)

        assert [i.need.code for i in found.missing] == ["name", "ID_DOCUMENT"]
        assert not found.complete

    def test_corporate_authorised_person_must_match_resolution_and_attorney(self):
        documents = (("BOARD_RESOLUTION", "JANE DOE"), ("POWER_OF_ATTORNEY", "John Doe"))
        dossier = Dossier({"authorised_person": "Doe, Jane"}, frozenset(), documents)

        found = checklist(CORPORATE, dossier, level=1, corporate=True)

        assert found.problems == ("POWER_OF_ATTORNEY: names 'John Doe', but the authorised person is 'Doe, Jane'",)
        assert not found.complete

    def test_corporate_dossier_with_matching_names_is_complete(self):
        documents = (("BOARD_RESOLUTION", "Jane Doe"), ("POWER_OF_ATTORNEY", "DOE Jane"))
        dossier = Dossier({"authorised_person": "Jane Doe"}, frozenset(), documents)

        assert checklist(CORPORATE, dossier, level=1, corporate=True).complete

    def test_a_document_without_a_recorded_name_is_a_problem(self):
        dossier = Dossier({"authorised_person": "Jane Doe"}, frozenset(), (("BOARD_RESOLUTION", ""),))

        assert checklist(CORPORATE, dossier, level=1, corporate=True).problems == (
            "BOARD_RESOLUTION: the name of the authorised person it gives is not recorded",
        )
