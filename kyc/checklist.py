"""What a dossier still lacks for the level it applies for. Pure: plain data in, plain data out.

A level needs every active requirement of its track at that level or below. Corporate dossiers must also
name the same authorised person in the data, the board resolution and the power of attorney.
"""

from dataclasses import dataclass

from kyc.matching import normalised

AUTHORISED_PERSON = "authorised_person"
NAMED_IN = ("BOARD_RESOLUTION", "POWER_OF_ATTORNEY", "ID_AUTHORISED_PERSON")


@dataclass(frozen=True)
class Need:
    kind: str  # DOCUMENT, FIELD, CHECK
    code: str
    label: str
    level: int


@dataclass(frozen=True)
class Dossier:
    fields: dict  # field name → value (customer data merged with the case's own data)
    checks: frozenset[str]
    documents: tuple[tuple[str, str], ...]  # (document type, named person)


@dataclass(frozen=True)
class Item:
    need: Need
    done: bool
    detail: str = ""


@dataclass(frozen=True)
class Checklist:
    items: tuple[Item, ...]
    problems: tuple[str, ...]

    @property
    def missing(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if not i.done)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.problems


def checklist(needs: list[Need], dossier: Dossier, *, level: int, corporate: bool) -> Checklist:
    """Each requirement up to `level`, whether the dossier meets it, and any inconsistency found."""
    items = tuple(_item(n, dossier) for n in needs if n.level <= level)
    problems = authorised_person_problems(dossier) if corporate else ()
    return Checklist(items, problems)


def _item(need: Need, dossier: Dossier) -> Item:
    if need.kind == "FIELD":
        value = dossier.fields.get(need.code)
        return Item(need, value not in (None, ""), "" if value in (None, "") else str(value))
    if need.kind == "CHECK":
        return Item(need, need.code in dossier.checks)
    count = sum(1 for doc_type, _ in dossier.documents if doc_type == need.code)
    return Item(need, count > 0, f"{count} file(s)" if count else "")


def authorised_person_problems(dossier: Dossier) -> tuple[str, ...]:
    """Where the authorised person's name differs between the data and the documents that name them."""
    declared = str(dossier.fields.get(AUTHORISED_PERSON) or "")
    if not declared:
        return ()
    wanted = normalised(declared)
    problems = []
    for doc_type, person in dossier.documents:
        if doc_type not in NAMED_IN:
            continue
        if not person:
            problems.append(f"{doc_type}: the name of the authorised person it gives is not recorded")
        elif normalised(person) != wanted:
            problems.append(f"{doc_type}: names {person!r}, but the authorised person is {declared!r}")
    return tuple(problems)
