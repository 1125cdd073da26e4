"""The GLEIF Registration Authorities List, loaded from the CSV file an operator downloads from gleif.org.

The back office runs offline, so the list is a table filled by `manage.py load_gleif_registration_authorities`.
IVMS101 constraint C10 then checks that a registrationAuthority is on it; while no list is loaded, only
the code's format (RA and six digits) is checked.

GLEIF publishes the list comma-separated (older editions semicolon-separated), with a header row whose
first column is "Registration Authority Code" (earlier: "RA List Code"). A load replaces the whole list.
"""

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from backoffice import audit
from backoffice.errors import InvalidInput
from withdrawals.models import RegistrationAuthority

CODE = re.compile(r"RA[0-9]{6}")
CODE_COLUMNS = ("registration authority code", "ra list code", "ra code")
COLUMNS = {
    "country_code": ("country code",),
    "jurisdiction": ("jurisdiction (country or region)", "jurisdiction"),
    "register_name": ("international name of register",),
    "organisation": ("international name of organisation responsible for the register",),
    "website": ("website",),
    "end_date": ("end date",),
}
LIMITS = {f.name: f.max_length for f in RegistrationAuthority._meta.fields if f.name in COLUMNS}


@dataclass(frozen=True)
class Entry:
    code: str
    country_code: str = ""
    jurisdiction: str = ""
    register_name: str = ""
    organisation: str = ""
    website: str = ""
    end_date: str = ""


def _refused(line: int, message: str) -> InvalidInput:
    return InvalidInput(f"line {line}: {message}", details=[{"index": line, "field": "code", "message": message}])


def parse_csv(text: str) -> list[Entry]:
    """The entries of a GLEIF RA list CSV; a file without the code column or with a malformed code is refused."""
    text = text.lstrip("\ufeff")
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip().lower() for h in next(rows, [])]
    code_at = next((header.index(c) for c in CODE_COLUMNS if c in header), None)
    if code_at is None:
        raise InvalidInput(
            "Not a GLEIF Registration Authorities List: no 'Registration Authority Code' column.",
            details=[{"field": "header", "message": "no Registration Authority Code column"}],
        )
    at = {field: next((header.index(n) for n in names if n in header), None) for field, names in COLUMNS.items()}
    entries: dict[str, Entry] = {}
    for line, row in enumerate(rows, start=2):
        code = row[code_at].strip() if len(row) > code_at else ""
        if not code or code.startswith("#"):
            continue  # blank and comment rows
        if not CODE.fullmatch(code):
            raise _refused(line, f"{code[:20]!r} is not a registration authority code (RA and six digits)")
        values = {f: _cell(row, i)[: LIMITS[f]] for f, i in at.items()}
        entries.setdefault(code, Entry(code=code, **values))  # a code listed twice: the first row counts
    if not entries:
        raise InvalidInput(
            "The file lists no registration authorities.", details=[{"field": "rows", "message": "empty"}]
        )
    return list(entries.values())


def _cell(row: list[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


@transaction.atomic
def replace_list(*, entries: Iterable[Entry], source: str, actor: audit.Actor, now: datetime) -> int:
    """Swap in a whole new list (all or nothing) and record which codes came and went."""
    entries = list(entries)
    before = set(RegistrationAuthority.objects.values_list("code", flat=True))
    RegistrationAuthority.objects.all().delete()
    RegistrationAuthority.objects.bulk_create(
        [RegistrationAuthority(**vars(e), source=source[:200], loaded_at=now) for e in entries], batch_size=1000
    )
    after = {e.code for e in entries}
    audit.record(
        actor=actor,
        action="travel_rule.registration_authorities_load",
        target=("withdrawals.registrationauthority", source[:100]),
        now=now,
        before={"entries": len(before)},
        after={
            "entries": len(after),
            "source": source,
            "added": sorted(after - before)[:50],
            "removed": sorted(before - after)[:50],
        },
    )
    return len(entries)
