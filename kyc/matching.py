"""Name screening as pure functions: normalisation, candidate blocking and scoring. No ORM, no clock.

A `NameIndex` is built once from plain `Listed` records and answers `screen(subject, threshold)`.
Scores run 0 to 100. The name score is rapidfuzz's ratio over normalised tokens sorted alphabetically
or by length, whichever aligns better (so token order and small typos, even in a first letter, cost
little), raised by the token-set ratio when one name is the other plus extra given names. Date of
birth and country then move it up or down as supporting evidence. Blocking keeps it fast: only list
names sharing token prefixes or suffixes with the subject are scored.
"""

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from itertools import chain

from anyascii import anyascii
from rapidfuzz import fuzz, process

# Honorifics and joining particles carry no identity; legal forms only distinguish companies weakly.
STOP_TOKENS = frozenset(
    (
        "al",
        "el",
        "ul",
        "bin",
        "ibn",
        "bint",
        "ben",
        "de",
        "da",
        "del",
        "der",
        "den",
        "di",
        "du",
        "la",
        "le",
        "van",
        "von",
        "mr",
        "mrs",
        "ms",
        "dr",
        "haji",
        "hajji",
        "sheikh",
        "shaikh",
    )
)
LEGAL_FORMS = frozenset(
    (
        "inc",
        "incorporated",
        "llc",
        "ltd",
        "limited",
        "co",
        "corp",
        "corporation",
        "company",
        "plc",
        "gmbh",
        "ag",
        "sa",
        "sas",
        "sarl",
        "srl",
        "spa",
        "bv",
        "nv",
        "oy",
        "ab",
        "as",
        "jsc",
        "ojsc",
        "cjsc",
        "pjsc",
        "ooo",
        "zao",
        "oao",
        "llp",
        "lp",
        "pte",
        "pvt",
        "sdn",
        "bhd",
        "fze",
        "fzco",
        "fzc",
        "kg",
        "de",
        "cv",
    )
)
# Common transliteration variants of the same name, folded onto one spelling before scoring.
_VARIANTS = {
    "muhammad": "mohammed mohamed mohammad muhammed mohamad muhamad mohamud mohammod muhammet mehmet mahomed",
    "abd": "abdul abdel abdal abdoul abdu abdoulaye",
    "ahmad": "ahmed ahmet achmad akhmad",
    "yusuf": "yousef youssef yousif yusef yosef yussuf",
    "husayn": "hussein husain hussain hossein hosein husein",
    "hasan": "hassan hasen",
    "usama": "osama",
    "umar": "omar",
    "uthman": "othman osman usman",
    "abu": "abou",
    "ali": "aly",
    "khalid": "khaled",
    "said": "saeed saied sayed sayyid",
    "aleksandr": "alexander aleksander alexandr oleksandr",
    "sergey": "sergei serhiy",
    "yuriy": "yuri yury iurii",
    "dmitriy": "dmitri dmitry",
    "evgeniy": "evgeny yevgeny yevgeniy",
}
VARIANTS = {spelling: canonical for canonical, spellings in _VARIANTS.items() for spelling in spellings.split()}
_NOT_WORD = re.compile(r"[^a-z0-9]+")
# Each Han, kana or Hangul character is a syllable; spaced out, it transliterates to one token per syllable.
_SYLLABIC = re.compile(r"([\u4e00-\u9fff\u3040-\u30ff\uac00-\ud7af])")
# The most date of birth and country can add: names scoring this much below the threshold are still judged.
_SUPPORT_MAX = 8
# One name contained in the other (extra given names) counts, less than the same name, and less again for
# every further extra name: "Janan Agha" is close to "Janan Agha Mohammad", "Jesus Garcia" is not close to
# "Jesus Miguel Vibanco Garcia".
SUBSET_PENALTY = 8


@dataclass(frozen=True)
class Listed:
    """One list entry as the matcher sees it."""

    entry_id: int
    names: tuple[str, ...]
    birth_dates: tuple[str, ...] = ()  # "1958" or "1969-06-16"
    countries: tuple[str, ...] = ()  # ISO 3166-1 alpha-2, upper case
    is_person: bool = True


@dataclass(frozen=True)
class Subject:
    """Who is screened."""

    name: str
    birth_date: date | None = None
    country: str = ""
    is_person: bool = True


@dataclass(frozen=True)
class Match:
    entry_id: int
    score: float
    name_score: float
    matched_name: str
    reasons: tuple[str, ...] = field(default=())


def tokens(name: str, *, is_person: bool = True) -> tuple[str, ...]:
    """Lower-case ASCII tokens without accents, punctuation, particles or legal forms, variants folded."""
    # Apostrophes and dots join (O'Brien, S.A.); every other mark separates words.
    text = anyascii(_SYLLABIC.sub(r" \1 ", unicodedata.normalize("NFKC", name)))
    text = text.lower().replace("'", "").replace(".", "")
    drop = STOP_TOKENS if is_person else STOP_TOKENS | LEGAL_FORMS
    words = [VARIANTS.get(w, w) for w in _NOT_WORD.split(text) if w]
    kept = tuple(w for w in words if w not in drop)
    return kept or tuple(words)


def normalised(name: str, *, is_person: bool = True) -> str:
    """The comparable form of a name: its tokens, sorted, space-joined."""
    return " ".join(sorted(tokens(name, is_person=is_person)))


def display_order(name: str) -> str:
    """OFAC writes individuals "SURNAME, Given"; show them "Given SURNAME"."""
    surname, comma, given = name.partition(", ")
    return f"{given} {surname}" if comma and "," not in given else name


def blocking_keys(words: Iterable[str]) -> set[str]:
    """Prefix and suffix keys of every token, so one typo in a token still leaves a shared key."""
    keys = set()
    for w in words:
        if len(w) < 3:
            keys.add("=" + w)
        else:
            keys.update(("<" + w[:3], ">" + w[-3:]))
    return keys


def name_score(query: str, candidate: str) -> float:
    """Similarity of two normalised (token-sorted) names, 0 to 100; the same figure `NameIndex.screen` uses."""
    score = max(fuzz.ratio(query, candidate), fuzz.ratio(by_length(query.split()), by_length(candidate.split())))
    return max(score, subset_score(fuzz.token_set_ratio(query, candidate), distinct(query), distinct(candidate)))


def by_length(words: Iterable[str]) -> str:
    """The tokens longest first (ties alphabetical), space-joined."""
    return " ".join(sorted(words, key=lambda w: (-len(w), w)))


def distinct(text: str) -> int:
    return len(set(text.split()))


def subset_score(set_ratio: float, query_tokens: int, candidate_tokens: int) -> float:
    """The token-set ratio, less the penalty for extra names; 0 unless both names have two distinct tokens."""
    if min(query_tokens, candidate_tokens) < 2:
        return 0
    return set_ratio - SUBSET_PENALTY * max(1, abs(query_tokens - candidate_tokens))


def support(subject: Subject, listed: Listed) -> tuple[float, list[str]]:
    """Points that date of birth and country add or take away, and why."""
    points, reasons = 0.0, []
    if subject.birth_date and listed.birth_dates:
        points, reason = _birth_points(subject.birth_date, listed.birth_dates)
        reasons.append(reason)
    if subject.country and listed.countries:
        if subject.country.upper() in listed.countries:
            points += 3
            reasons.append(f"country {subject.country.upper()} matches")
        else:
            points -= 2
            reasons.append(f"country {subject.country.upper()} not in {', '.join(listed.countries)}")
    return points, reasons


def _birth_points(born: date, listed: tuple[str, ...]) -> tuple[float, str]:
    if born.isoformat() in listed:
        return 5, f"date of birth {born.isoformat()} matches"
    years = {int(d[:4]) for d in listed if d[:4].isdigit()}
    if born.year in years:
        return 3, f"year of birth {born.year} matches"
    if any(abs(born.year - y) <= 1 for y in years):
        return 0, f"year of birth {born.year} within a year of {', '.join(sorted(map(str, years)))}"
    # Not more than an exact name loses with a wrong country too: listed people do use false dates of birth.
    return -8, f"date of birth {born.isoformat()} differs from {', '.join(listed)}"


class NameIndex:
    """The names of a list, blocked by token keys; build once, screen many."""

    def __init__(self, entries: Iterable[Listed], *, common_key_share: float = 0.02):
        self.entries: dict[int, Listed] = {}
        self.texts: list[str] = []
        self.by_length: list[str] = []
        self.raw: list[str] = []
        self.owner: list[int] = []
        self.distinct: list[int] = []
        postings: dict[str, list[int]] = defaultdict(list)
        for entry in entries:
            self.entries[entry.entry_id] = entry
            for raw in dict.fromkeys(entry.names):
                words = tokens(raw, is_person=entry.is_person)
                position = len(self.texts)
                self.texts.append(" ".join(sorted(words)))
                self.by_length.append(by_length(words))
                self.distinct.append(len(set(words)))
                self.raw.append(raw)
                self.owner.append(entry.entry_id)
                for key in blocking_keys(words):
                    postings[key].append(position)
        self.postings = {k: tuple(v) for k, v in postings.items()}
        # Keys on many names ("abd", "ali") say little; they are used only when a name has nothing rarer.
        self.common_limit = max(50, int(len(self.texts) * common_key_share))

    def __len__(self) -> int:
        return len(self.entries)

    def candidates(self, words: tuple[str, ...]) -> list[int]:
        """Positions of list names worth scoring against these tokens.

        A name of several tokens must share two keys with a candidate: one typo leaves a token's other
        key and the other tokens' keys, while a stranger sharing one common prefix is not scored.
        """
        keys = blocking_keys(words)
        lists = [self.postings[k] for k in keys if k in self.postings]
        rare = [p for p in lists if len(p) <= self.common_limit]
        chosen = rare or sorted(lists, key=len)[:1]
        shared = Counter(chain.from_iterable(chosen))
        needed = 2 if len(keys) >= 3 and len(chosen) >= 2 else 1
        return sorted(position for position, n in shared.items() if n >= needed)

    def screen(self, subject: Subject, *, threshold: float) -> list[Match]:
        """Every list entry scoring at least `threshold` against the subject, best first."""
        words = tokens(subject.name, is_person=subject.is_person)
        query = " ".join(sorted(words))
        positions = self.candidates(words)
        if not query or not positions:
            return []
        choices = [self.texts[p] for p in positions]
        cutoff = threshold - _SUPPORT_MAX
        raw_scores = {
            i: s for _, s, i in process.extract(query, choices, scorer=fuzz.ratio, score_cutoff=cutoff, limit=None)
        }
        # A typo in a first letter reorders alphabetically sorted tokens; ordered by length they still align.
        for _, s, i in process.extract(
            by_length(words),
            [self.by_length[p] for p in positions],
            scorer=fuzz.ratio,
            score_cutoff=cutoff,
            limit=None,
        ):
            raw_scores[i] = max(raw_scores.get(i, 0), s)
        query_tokens = distinct(query)
        if query_tokens >= 2:
            for _, s, i in process.extract(
                query, choices, scorer=fuzz.token_set_ratio, score_cutoff=cutoff + SUBSET_PENALTY, limit=None
            ):
                raw_scores[i] = max(raw_scores.get(i, 0), subset_score(s, query_tokens, self.distinct[positions[i]]))
        best: dict[int, Match] = {}
        for i, raw_score in raw_scores.items():
            match = self._judge(subject, positions[i], raw_score)
            if match.score >= threshold and (match.entry_id not in best or match.score > best[match.entry_id].score):
                best[match.entry_id] = match
        return sorted(best.values(), key=lambda m: -m.score)

    def _judge(self, subject: Subject, position: int, raw_score: float) -> Match:
        listed = self.entries[self.owner[position]]
        points, reasons = support(subject, listed)
        score = max(0.0, min(100.0, raw_score + points))
        reasons.insert(0, f"name {raw_score:.1f} against {self.raw[position]!r}")
        return Match(listed.entry_id, round(score, 1), round(raw_score, 1), self.raw[position], tuple(reasons))
