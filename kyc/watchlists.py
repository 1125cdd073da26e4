"""Reading a simple person watchlist (e.g. a PEP list) into the same records as the OFAC lists.

The format is a CSV with a header: `full_name` required; `id`, `date_of_birth` (YYYY or YYYY-MM-DD),
`nationality` (ISO 3166-1 alpha-2 or a country name), `aliases` (separated by ";") and `program`
optional. Without an `id` column an entry is identified by its name and date of birth.
"""

import csv
import hashlib
from pathlib import Path

from kyc.ofac import ListFormatError, ParsedEntry, country_code


def parse_people_csv(path: Path) -> list[ParsedEntry]:
    """The persons of a watchlist CSV; ListFormatError when it is not one."""
    try:
        with Path(path).open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError) as exc:
        raise ListFormatError(f"{path}: cannot read ({exc})") from None
    if not rows or "full_name" not in rows[0]:
        raise ListFormatError(f"{path}: expected a CSV with a full_name column")
    entries = [_entry(path, number, row) for number, row in enumerate(rows, start=2)]
    return list({e.ent_num: e for e in entries}.values())


def _entry(path: Path, number: int, row: dict) -> ParsedEntry:
    name = (row.get("full_name") or "").strip()
    if not name:
        raise ListFormatError(f"{path}: line {number} has no full_name")
    born = (row.get("date_of_birth") or "").strip()
    nationality = (row.get("nationality") or "").strip()
    country = nationality.upper() if len(nationality) == 2 else country_code(nationality)
    identity = (row.get("id") or "").strip() or hashlib.sha256(f"{name}|{born}".encode()).hexdigest()[:20]
    return ParsedEntry(
        ent_num=identity[:20],
        kind="INDIVIDUAL",
        name=name,
        aliases=tuple(a.strip() for a in (row.get("aliases") or "").split(";") if a.strip()),
        programs=tuple(p for p in [(row.get("program") or "").strip()] if p),
        remarks="",
        birth_dates=(born,) if born[:4].isdigit() else (),
        countries=(country,) if country else (),
    )
