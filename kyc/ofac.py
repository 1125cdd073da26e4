"""Reading OFAC's legacy CSV files and the public sanctioned-address lists into plain records.

The CSV family (sdn.csv / cons_prim.csv with alt, add and comments files) has no header row, writes
null as "-0-" and ends with a Ctrl-Z byte. Remarks are cut at 1,000 characters and continue, mid-token,
in the comments file, so the two are joined before anything is read out of them.
"""

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pycountry

NULL = "-0-"
PRIMARY_COLUMNS = 12
REMARKS_CUT = 1000
ADDRESS_TICKER = re.compile(r"Digital Currency Address - ([A-Z0-9]+)\s+([A-Za-z0-9:]+)")
_DOB = re.compile(r"(?:^|;\s*)(?:alt\. )?DOB ([^;]+)")
_NATIONALITY = re.compile(r"(?:^|;\s*)(?:alt\. )?(?:nationality|citizen) ([^;]+)")
_AKA = re.compile(r"[afn]\.k\.a\. '([^']+)'")
_DAY_MONTH_YEAR = "%d %b %Y"
_COUNTRY_ALIASES = {
    "iran": "IR",
    "russia": "RU",
    "syria": "SY",
    "korea, north": "KP",
    "korea, south": "KR",
    "burma": "MM",
    "venezuela": "VE",
    "bolivia": "BO",
    "tanzania": "TZ",
    "vietnam": "VN",
    "laos": "LA",
    "moldova": "MD",
    "palestinian": "PS",
    "region: gaza": "PS",
    "west bank": "PS",
    "turkey": "TR",
    "kosovo": "XK",
    "congo, democratic republic of the": "CD",
    "congo, republic of the": "CG",
    "micronesia": "FM",
    "north macedonia, the republic of": "MK",
    "macau": "MO",
    "taiwan": "TW",
    "cabo verde": "CV",
    "the bahamas": "BS",
    "the gambia": "GM",
    "czech republic": "CZ",
    "cote d ivoire": "CI",
    "brunei": "BN",
}


class ListFormatError(ValueError):
    """The file is not what the loader expects; nothing was loaded."""


@dataclass(frozen=True)
class ParsedEntry:
    ent_num: str
    kind: str  # INDIVIDUAL, ENTITY, VESSEL, AIRCRAFT
    name: str
    aliases: tuple[str, ...]
    programs: tuple[str, ...]
    remarks: str
    birth_dates: tuple[str, ...]
    countries: tuple[str, ...]
    addresses: tuple[tuple[str, str], ...] = field(default=())  # (ticker, address)

    @property
    def fingerprint(self) -> str:
        """Changes whenever anything screening looks at changes; false-match memory is keyed on it."""
        content = [
            self.kind,
            self.name,
            sorted(self.aliases),
            sorted(self.birth_dates),
            sorted(self.countries),
            sorted(self.addresses),
        ]
        return hashlib.sha256(json.dumps(content).encode()).hexdigest()


def read_rows(path: Path, columns: int) -> list[list[str]]:
    """The rows of one legacy OFAC CSV, nulls as empty strings; ListFormatError if it is not one."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise ListFormatError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ListFormatError(f"{path}: not UTF-8 text") from None
    rows = []
    for number, row in enumerate(csv.reader(io.StringIO(text.rstrip("\x1a\r\n "))), start=1):
        if not row or row == ["\x1a"]:
            continue
        if len(row) != columns or not row[0].strip().isdigit():
            raise ListFormatError(f"{path}: line {number} is not an OFAC row of {columns} columns")
        rows.append([_value(v) for v in row])
    if not rows:
        raise ListFormatError(f"{path}: no rows")
    return rows


def _value(raw: str) -> str:
    # Kept unstripped: a remark cut at 1,000 characters may end in the space its continuation needs.
    return "" if raw.strip() == NULL else raw


def parse_ofac(primary: Path, *, alt: Path | None = None, comments: Path | None = None) -> list[ParsedEntry]:
    """Entries of an OFAC list (SDN or consolidated) from its primary file and, when given, its alias and
    remarks-overflow files."""
    aliases: dict[str, list[str]] = {}
    for row in read_rows(alt, 5) if alt else ():
        aliases.setdefault(row[0].strip(), []).append(row[3].strip())
    extended = {row[0].strip(): row[1] for row in read_rows(comments, 2)} if comments else {}
    rows = read_rows(primary, PRIMARY_COLUMNS)
    return [
        _entry(
            [v.strip() for v in row[:11]] + [row[11]], aliases.get(row[0].strip(), []), extended.get(row[0].strip(), "")
        )
        for row in rows
    ]


def _entry(row: list[str], alt_names: list[str], overflow: str) -> ParsedEntry:
    # The overflow continues mid-word: join without a separator. A remark shorter than the cut was not
    # cut, so an overflow for it belongs to another publication of the list and is left out.
    remarks = (row[11] + overflow if len(row[11]) >= REMARKS_CUT else row[11]).strip()
    kind = {"individual": "INDIVIDUAL", "vessel": "VESSEL", "aircraft": "AIRCRAFT"}.get(row[2].lower(), "ENTITY")
    named_in_remarks = _AKA.findall(remarks)
    return ParsedEntry(
        ent_num=row[0],
        kind=kind,
        name=row[1],
        aliases=tuple(dict.fromkeys(n for n in alt_names + named_in_remarks if n and n != row[1])),
        programs=tuple(p.strip("[] ") for p in row[3].split("] [") if p.strip("[] ")),
        remarks=remarks,
        birth_dates=tuple(dict.fromkeys(d for raw in _DOB.findall(remarks) for d in birth_dates(raw))),
        countries=tuple(dict.fromkeys(c for raw in _NATIONALITY.findall(remarks) if (c := country_code(raw)))),
        addresses=tuple(dict.fromkeys((t, a.rstrip(".")) for t, a in ADDRESS_TICKER.findall(remarks))),
    )


def birth_dates(text: str) -> list[str]:
    """ "25 Mar 1977" → ["1977-03-25"]; "1958", "circa 1958", "Mar 1958" → ["1958"]; "1960 to 1962" → each year."""
    text = text.strip().rstrip(".")
    try:
        return [datetime.strptime(text, _DAY_MONTH_YEAR).date().isoformat()]
    except ValueError:
        pass
    years = [int(y) for y in re.findall(r"\b(1[89]\d\d|20\d\d)\b", text)]
    if " to " in text and len(years) == 2 and 0 <= years[1] - years[0] <= 20:
        years = list(range(years[0], years[1] + 1))
    return [str(y) for y in years]


def country_code(name: str) -> str:
    """ISO 3166-1 alpha-2 for an OFAC country name, or "" when it is not a country we know."""
    key = name.strip().rstrip(".").lower()
    if key in _COUNTRY_ALIASES:
        return _COUNTRY_ALIASES[key]
    return _COUNTRIES.get(key, "")


def _country_table() -> dict[str, str]:
    table = {}
    for country in pycountry.countries:
        for attribute in ("name", "official_name", "common_name"):
            if value := getattr(country, attribute, None):
                table[value.lower()] = country.alpha_2
    return table


_COUNTRIES = _country_table()


# ---- sanctioned-address lists ------------------------------------------------------------------------
def parse_address_list(path: Path) -> list[tuple[str, str]]:
    """(ticker, address) pairs from a 0xB10C `sanctioned_addresses_<TICKER>.txt|json` or an
    ultrasoundmoney `address,name` CSV."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ListFormatError(f"{path}: cannot read ({exc})") from None
    if match := re.fullmatch(r"sanctioned_addresses_([A-Z0-9]+)\.(txt|json)", path.name):
        return [(match[1], a) for a in _addresses(path, text, match[2])]
    if path.suffix == ".csv":
        rows = list(csv.reader(io.StringIO(text)))
        if not rows or [c.strip().lower() for c in rows[0][:1]] != ["address"]:
            raise ListFormatError(f"{path}: expected a CSV with an 'address' column first")
        return [("ETH", r[0].strip()) for r in rows[1:] if r and r[0].strip()]
    raise ListFormatError(f"{path}: not a known address list (sanctioned_addresses_<TICKER>.txt|json or .csv)")


def _addresses(path: Path, text: str, kind: str) -> list[str]:
    if kind == "txt":
        return [line.strip() for line in text.splitlines() if line.strip()]
    try:
        values = json.loads(text)
    except json.JSONDecodeError:
        raise ListFormatError(f"{path}: not valid JSON") from None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ListFormatError(f"{path}: expected a JSON list of addresses")
    return values
