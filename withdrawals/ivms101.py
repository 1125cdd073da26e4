"""Travel-rule data in the IVMS101 model: decode, check the standard's constraints, emit for a counterparty.

The stored form is the IVMS101 (2020) JSON that TRISA and TRP exchange (`originatorPersons`,
`nameIdentifierType`, `accountNumber` beside the persons), with the intermediary VASPs of the transfer
path when there are any. `message()` emits it as 101 or as 101.2023, whose names differ
(`originatorPerson`, `naturalPersonNameIdentifierType`, `accountNumber` inside the person,
`customerIdentification` for a legal person). The constraints C1–C12 of the standard are code, because
no schema language captures them. C10 (a registration authority on the GLEIF Registration Authorities
List) checks the format always and membership when the caller passes the loaded list.
Pure functions; `today` and the list are passed in.
"""

import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Literal

import msgspec
import pycountry


def _text(n: int):
    return Annotated[str, msgspec.Meta(min_length=1, max_length=n)]


class _S(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    pass


class NameIdentifier(_S):
    primaryIdentifier: _text(100)
    nameIdentifierType: Literal["ALIA", "BIRT", "MAID", "LEGL", "MISC"]
    secondaryIdentifier: _text(100) | None = None


class NaturalPersonName(_S):
    nameIdentifier: Annotated[list[NameIdentifier], msgspec.Meta(min_length=1)]
    localNameIdentifier: list[NameIdentifier] = []
    phoneticNameIdentifier: list[NameIdentifier] = []


class Address(_S):
    addressType: Literal["HOME", "BIZZ", "GEOG"]
    townName: _text(35)
    country: _text(2)
    department: _text(50) | None = None
    subDepartment: _text(70) | None = None
    streetName: _text(70) | None = None
    buildingNumber: _text(16) | None = None
    buildingName: _text(35) | None = None
    floor: _text(70) | None = None
    postBox: _text(16) | None = None
    room: _text(70) | None = None
    postCode: _text(16) | None = None
    townLocationName: _text(35) | None = None
    districtName: _text(35) | None = None
    countrySubDivision: _text(35) | None = None
    addressLine: Annotated[list[_text(70)], msgspec.Meta(max_length=7)] = []


class NationalIdentification(_S):
    nationalIdentifier: _text(35)
    nationalIdentifierType: Literal["ARNU", "CCPT", "RAID", "DRLC", "FIIN", "TXID", "SOCS", "IDCD", "LEIX", "MISC"]
    countryOfIssue: _text(2) | None = None
    registrationAuthority: _text(8) | None = None


class DateAndPlaceOfBirth(_S):
    dateOfBirth: date
    placeOfBirth: _text(70)


class NaturalPerson(_S):
    name: NaturalPersonName
    geographicAddress: list[Address] = []
    nationalIdentification: NationalIdentification | None = None
    customerIdentification: _text(50) | None = None
    dateAndPlaceOfBirth: DateAndPlaceOfBirth | None = None
    countryOfResidence: _text(2) | None = None


class LegalPersonNameIdentifier(_S):
    legalPersonName: _text(100)
    legalPersonNameIdentifierType: Literal["LEGL", "SHRT", "TRAD"]


class LegalPersonName(_S):
    nameIdentifier: Annotated[list[LegalPersonNameIdentifier], msgspec.Meta(min_length=1)]
    localNameIdentifier: list[LegalPersonNameIdentifier] = []
    phoneticNameIdentifier: list[LegalPersonNameIdentifier] = []


class LegalPerson(_S):
    name: LegalPersonName
    geographicAddress: list[Address] = []
    customerNumber: _text(50) | None = None
    nationalIdentification: NationalIdentification | None = None
    countryOfRegistration: _text(2) | None = None


class Person(_S):
    naturalPerson: NaturalPerson | None = None
    legalPerson: LegalPerson | None = None


Persons = Annotated[list[Person], msgspec.Meta(min_length=1)]
AccountNumbers = list[_text(512)]


class Originator(_S):
    originatorPersons: Persons
    accountNumber: AccountNumbers = []


class Beneficiary(_S):
    beneficiaryPersons: Persons
    accountNumber: AccountNumbers = []


class OriginatingVasp(_S):
    originatingVASP: Person


class BeneficiaryVasp(_S):
    beneficiaryVASP: Person


class IntermediaryVasp(_S):
    """A VASP in a serial chain that receives and retransmits the transfer; `sequence` counts from 0."""

    intermediaryVASP: Person
    sequence: Annotated[int, msgspec.Meta(ge=0, le=999_999_999_999_999_999)]


class TransferPath(_S):
    transferPath: list[IntermediaryVasp] = []


class IdentityPayload(_S):
    """Originator and beneficiary (required for a withdrawal), the two VASPs and the transfer path when known."""

    originator: Originator
    beneficiary: Beneficiary
    originatingVASP: OriginatingVasp | None = None
    beneficiaryVASP: BeneficiaryVasp | None = None
    transferPath: TransferPath | None = None


class InvalidIvms(ValueError):
    """The data breaks the IVMS101 model; `problems` lists (path, message)."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(f"{p}: {m}" for p, m in problems))
        self.problems = problems


def parse(data, *, today: date, registration_authorities: frozenset[str] | None = None) -> IdentityPayload:
    """The payload as typed IVMS101, or InvalidIvms naming every problem.

    `registration_authorities`: the codes of the GLEIF Registration Authorities List, when one is loaded;
    without it (None) a registrationAuthority is checked for its format only.
    """
    try:
        payload = msgspec.convert(data, IdentityPayload)
    except msgspec.ValidationError as exc:
        raise InvalidIvms([("", str(exc))]) from None
    problems = list(constraint_problems(payload, today=today, registration_authorities=registration_authorities))
    if problems:
        raise InvalidIvms(problems)
    if payload.transferPath is not None:  # stored and sent in the order the transfer takes
        payload.transferPath.transferPath.sort(key=lambda hop: hop.sequence)
    return payload


def to_json(payload: IdentityPayload) -> dict:
    return msgspec.to_builtins(payload)


# ---- the standard's constraints ------------------------------------------------------------------------
@dataclass(frozen=True)
class _Context:
    today: date
    registration_authorities: frozenset[str] | None


def constraint_problems(
    payload: IdentityPayload, *, today: date, registration_authorities: frozenset[str] | None = None
):
    ctx = _Context(today, registration_authorities)
    yield from _persons("originator.originatorPersons", payload.originator.originatorPersons, ctx, originator=True)
    yield from _persons("beneficiary.beneficiaryPersons", payload.beneficiary.beneficiaryPersons, ctx)
    for name, vasp in (("originatingVASP", payload.originatingVASP), ("beneficiaryVASP", payload.beneficiaryVASP)):
        if vasp is not None:
            yield from _persons(f"{name}.{name}", [getattr(vasp, name)], ctx, single=True)
    if payload.transferPath is not None:
        yield from _transfer_path("transferPath.transferPath", payload.transferPath.transferPath, ctx)


def _transfer_path(path: str, hops: list[IntermediaryVasp], ctx: _Context):
    for i, hop in enumerate(hops):
        yield from _persons(f"{path}[{i}].intermediaryVASP", [hop.intermediaryVASP], ctx, single=True)
    sequences = sorted(hop.sequence for hop in hops)
    if sequences != list(range(len(hops))):
        yield path, f"C12: sequences must run 0, 1, 2 … without gaps or repeats, got {sequences}"


def _persons(path: str, persons: list[Person], ctx: _Context, *, originator: bool = False, single: bool = False):
    for i, person in enumerate(persons):
        where = path if single else f"{path}[{i}]"
        if (person.naturalPerson is None) == (person.legalPerson is None):
            yield where, "exactly one of naturalPerson and legalPerson"
        elif person.naturalPerson is not None:
            yield from _natural(f"{where}.naturalPerson", person.naturalPerson, ctx, originator)
        else:
            yield from _legal(f"{where}.legalPerson", person.legalPerson, ctx, originator)


def _natural(path: str, p: NaturalPerson, ctx: _Context, originator: bool):
    today = ctx.today
    if originator and not (
        p.geographicAddress or p.customerIdentification or p.nationalIdentification or p.dateAndPlaceOfBirth
    ):
        yield path, "C1: an originator needs an address, customer, national identification or birth data"
    if p.dateAndPlaceOfBirth and p.dateAndPlaceOfBirth.dateOfBirth >= today:
        yield f"{path}.dateAndPlaceOfBirth.dateOfBirth", "C2: must be in the past"
    if not any(n.nameIdentifierType == "LEGL" for n in p.name.nameIdentifier):
        yield f"{path}.name", "C6: needs a LEGL name"
    yield from _countries(path, [p.countryOfResidence], p.geographicAddress)
    if p.nationalIdentification:
        yield from _national_id(f"{path}.nationalIdentification", p.nationalIdentification, ctx, legal=False)


def _legal(path: str, p: LegalPerson, ctx: _Context, originator: bool):
    has_geog = any(a.addressType == "GEOG" for a in p.geographicAddress)
    if originator and not (has_geog or p.customerNumber or p.nationalIdentification):
        yield path, "C4: an originator needs a GEOG address, customer number or national identification"
    if not any(n.legalPersonNameIdentifierType == "LEGL" for n in p.name.nameIdentifier):
        yield f"{path}.name", "C5: needs a LEGL name"
    yield from _countries(path, [p.countryOfRegistration], p.geographicAddress)
    if p.nationalIdentification:
        yield from _national_id(f"{path}.nationalIdentification", p.nationalIdentification, ctx, legal=True)


def _countries(path: str, countries: list[str | None], addresses: list[Address]):
    for i, address in enumerate(addresses):
        if not (address.addressLine or (address.streetName and (address.buildingName or address.buildingNumber))):
            yield f"{path}.geographicAddress[{i}]", "C8: needs addressLine or streetName with building"
        countries.append(address.country)
    for country in countries:
        if country is not None and not is_country(country):
            yield path, f"C3: {country!r} is not an ISO 3166-1 alpha-2 code or XX"


def _national_id(path: str, nid: NationalIdentification, ctx: _Context, *, legal: bool):
    kind, authority = nid.nationalIdentifierType, nid.registrationAuthority
    if legal and kind not in ("RAID", "MISC", "LEIX", "TXID"):
        yield path, "C7: a legal person's identifier is RAID, MISC, LEIX or TXID"
    if legal and nid.countryOfIssue:
        yield path, "C9: a legal person's identifier has no countryOfIssue"
    if legal and kind == "LEIX" and nid.registrationAuthority:
        yield path, "C9: no registrationAuthority with an LEI"
    if legal and kind != "LEIX" and not authority:
        yield path, "C9: registrationAuthority is required unless the identifier is an LEI"
    elif kind == "RAID" and not authority:  # a registration number means nothing without its register
        yield path, "C9: registrationAuthority is required with a RAID identifier"
    if authority and not _RA.fullmatch(authority):
        yield path, "C10: registrationAuthority is a GLEIF code, RA and six digits"
    elif authority and ctx.registration_authorities is not None and authority not in ctx.registration_authorities:
        yield path, f"C10: {authority} is not on the GLEIF Registration Authorities List"
    if kind == "LEIX" and not is_lei(nid.nationalIdentifier):
        yield path, "C11: not a valid LEI"
    if nid.countryOfIssue and not is_country(nid.countryOfIssue):
        yield path, f"C3: {nid.countryOfIssue!r} is not an ISO 3166-1 alpha-2 code"


_RA = re.compile(r"RA\d{6}")
_LEI = re.compile(r"[0-9A-Z]{18}[0-9]{2}")


def is_country(code: str) -> bool:
    return code == "XX" or pycountry.countries.get(alpha_2=code) is not None


def is_lei(value: str) -> bool:
    """ISO 17442: 20 characters whose ISO 7064 MOD 97-10 check gives 1."""
    if not _LEI.fullmatch(value):
        return False
    return int("".join(str(int(c, 36)) for c in value)) % 97 == 1


# ---- what a counterparty receives ----------------------------------------------------------------------
def message(payload: dict, *, version: str = "101") -> dict:
    """The stored payload as an IVMS101 message of `version` "101" (2020) or "101.2023"."""
    if version == "101":
        return payload
    if version != "101.2023":
        raise ValueError(f"unknown IVMS101 version {version!r}")
    out = {
        "originator": {"originatorPerson": _persons_2023(payload["originator"], "originatorPersons")},
        "beneficiary": {"beneficiaryPerson": _persons_2023(payload["beneficiary"], "beneficiaryPersons")},
    }
    for vasp in ("originatingVASP", "beneficiaryVASP"):
        if vasp in payload:
            out[vasp] = {vasp: _person_2023(payload[vasp][vasp])}
    if payload.get("transferPath", {}).get("transferPath"):
        out["transferPath"] = {
            "transferPath": [
                {"intermediaryVASP": _person_2023(hop["intermediaryVASP"]), "sequence": hop["sequence"]}
                for hop in payload["transferPath"]["transferPath"]
            ]
        }
    out["payloadMetadata"] = {"payloadVersion": "101.2023"}
    return out


def _persons_2023(party: dict, key: str) -> list[dict]:
    persons = [_person_2023(p) for p in party[key]]
    if party.get("accountNumber"):
        persons[0] = {**persons[0], "accountNumber": party["accountNumber"]}
    return persons


def _person_2023(person: dict) -> dict:
    if "legalPerson" in person:  # 2023 calls the legal person's customerNumber customerIdentification
        return {**person, "legalPerson": _rename(person["legalPerson"], "customerNumber", "customerIdentification")}
    if "naturalPerson" not in person:
        return person
    natural = person["naturalPerson"]
    name = {
        part: [_rename(n, "nameIdentifierType", "naturalPersonNameIdentifierType") for n in ids]
        for part, ids in natural["name"].items()
    }
    return {**person, "naturalPerson": {**natural, "name": name}}


def _rename(d: dict, old: str, new: str) -> dict:
    return {(new if k == old else k): v for k, v in d.items()}


def trp_inquiry(payload: dict, *, asset: str, amount: str, callback: str) -> dict:
    """A TRP (OpenVASP) transfer inquiry carrying the payload."""
    return {"asset": {"slip0044": asset}, "amount": amount, "callback": callback, "IVMS101": payload}


# ---- what a reviewer reads first -----------------------------------------------------------------------
def summary(payload: dict) -> dict:
    """Names of the parties in a stored payload: originators, beneficiaries, the VASPs and the transfer path."""

    def name(person: dict) -> str:
        if "legalPerson" in person:
            ids = person["legalPerson"]["name"]["nameIdentifier"]
            legal = next((n for n in ids if n["legalPersonNameIdentifierType"] == "LEGL"), ids[0])
            return legal["legalPersonName"]
        ids = person["naturalPerson"]["name"]["nameIdentifier"]
        legal = next((n for n in ids if n["nameIdentifierType"] == "LEGL"), ids[0])
        return " ".join(p for p in (legal.get("secondaryIdentifier"), legal["primaryIdentifier"]) if p)

    def vasp(key: str) -> str | None:
        return name(payload[key][key]) if key in payload else None

    return {
        "originators": [name(p) for p in payload["originator"]["originatorPersons"]],
        "originator_accounts": payload["originator"].get("accountNumber", []),
        "beneficiaries": [name(p) for p in payload["beneficiary"]["beneficiaryPersons"]],
        "beneficiary_accounts": payload["beneficiary"].get("accountNumber", []),
        "originating_vasp": vasp("originatingVASP"),
        "beneficiary_vasp": vasp("beneficiaryVASP"),
        "intermediaries": [
            {"sequence": hop["sequence"], "name": name(hop["intermediaryVASP"])}
            for hop in payload.get("transferPath", {}).get("transferPath", [])
        ],
    }
