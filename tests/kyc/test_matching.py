from datetime import date

import pytest

from kyc import matching
from kyc.matching import Listed, NameIndex, Subject


class TestTokens:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("José Álvarez", ("jose", "alvarez")),
            ("O'BRIEN, Patrick-John", ("obrien", "patrick", "john")),
            ("Mohammed AL-Rahman", ("muhammad", "rahman")),
            ("MUHAMMAD Abdel Karim", ("muhammad", "abd", "karim")),
            ("Владимир Путин", ("vladimir", "putin")),
            ("Müller", ("muller",)),
            ("习近平", ("xi", "jin", "ping")),
            ("AL", ("al",)),
        ],
    )
    def test_folds_case_accents_punctuation_scripts_and_common_variants(self, name, expected):
        assert matching.tokens(name) == expected

    def test_drops_legal_forms_for_companies_only(self):
        assert matching.tokens("CIMEX, S.A.", is_person=False) == ("cimex",)
        assert matching.tokens("Ltd Smith") == ("ltd", "smith")


class TestDisplayOrder:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("YAN, Xiaobing", "Xiaobing YAN"),
            ("CIMEX, S.A.", "S.A. CIMEX"),
            ("BANCO NACIONAL DE CUBA", "BANCO NACIONAL DE CUBA"),
            ("SMITH, John, Jr.", "SMITH, John, Jr."),
        ],
    )
    def test_puts_given_names_first(self, name, expected):
        assert matching.display_order(name) == expected


class TestNameScore:
    @pytest.mark.parametrize(
        ("a", "b", "low", "high"),
        [
            ("Xiaobing Yan", "YAN, Xiaobing", 100, 100),
            ("Attiqullah Akhund", "Attiiqullah Akhund", 95, 99.9),
            ("Markovic Mirjana", "xARKOVIC, Mirjana", 92, 95),
            ("Janan Agha", "Janan Agha Mohammad", 80, 92),
            ("John Smith", "Joan Smythe", 0, 87),
            ("Kim Jong Un", "Kang Chol Su", 0, 50),
            ("Jesús García", "Jesus Miguel VIBANCO GARCIA", 0, 87),
            ("Anthony Adams", "Anthony Anthony", 0, 87),
        ],
    )
    def test_scores_order_free_and_typo_tolerant(self, a, b, low, high):
        score = matching.name_score(matching.normalised(a), matching.normalised(b))

        assert low <= score <= high


class TestSupport:
    LISTED = Listed(1, ("X",), birth_dates=("1969-06-16", "1970"), countries=("IQ",))

    @pytest.mark.parametrize(
        ("born", "country", "points"),
        [
            (date(1969, 6, 16), "IQ", 8),
            (date(1970, 1, 1), "", 3),
            (date(1971, 1, 1), "", 0),
            (date(1990, 1, 1), "", -8),
            (None, "DE", -2),
            (None, "", 0),
        ],
    )
    def test_date_of_birth_and_country_move_the_score(self, born, country, points):
        assert matching.support(Subject("x", born, country), self.LISTED)[0] == points


class TestNameIndex:
    INDEX = NameIndex(
        [
            Listed(1, ("MUTHANNA HARITH SALMAN AL-DARI",), ("1969-06-16",), ("IQ",)),
            Listed(2, ("KANG CHOL SU",), ("1969-02-13",), ("KP",)),
            Listed(3, ("CIMEX, S.A.",), is_person=False),
        ]
    )

    @pytest.mark.parametrize(
        ("subject", "entry_id"),
        [
            (Subject("Muthanna Harith Salman al-Dari"), 1),
            (Subject("Al Dari Muthanna Harith Salman"), 1),
            (Subject("MUTHANA HARITH SALMAN AL-DARI", date(1969, 7, 16)), 1),
            (Subject("Kang Chol Su", date(1969, 2, 13), "KP"), 2),
            (Subject("Cimex Ltd", is_person=False), 3),
        ],
    )
    def test_finds_the_listed_entry(self, subject, entry_id):
        assert [m.entry_id for m in self.INDEX.screen(subject, threshold=88)] == [entry_id]

    @pytest.mark.parametrize(
        "subject",
        [
            Subject("Maria Alice Nathan Leao", date(1940, 12, 15)),
            Subject("Kang Chul Su", date(1990, 1, 1), "DE"),
            Subject("Muthanna Smith"),
        ],
    )
    def test_does_not_flag_other_people(self, subject):
        assert self.INDEX.screen(subject, threshold=88) == []

    def test_an_exact_name_still_alerts_with_another_date_of_birth_and_country(self):
        match = self.INDEX.screen(Subject("Kang Chol Su", date(1990, 1, 1), "DE"), threshold=88)[0]

        assert (match.entry_id, match.score) == (2, 90)

    def test_explains_the_score(self):
        match = self.INDEX.screen(Subject("Kang Chol Su", date(1969, 2, 13), "KP"), threshold=88)[0]

        assert (match.score, match.name_score, match.matched_name) == (100, 100, "KANG CHOL SU")
        assert match.reasons == (
            "name 100.0 against 'KANG CHOL SU'",
            "date of birth 1969-02-13 matches",
            "country KP matches",
        )

    def test_blocks_candidates_on_shared_token_keys_despite_a_typo(self):
        words = matching.tokens("Amghomed Harith")

        assert self.INDEX.candidates(words) == [0]

    def test_a_name_of_several_tokens_needs_two_shared_keys(self):
        assert self.INDEX.candidates(matching.tokens("Kangaroo Smith")) == []
        assert self.INDEX.candidates(matching.tokens("Kangaroo")) == [1]
