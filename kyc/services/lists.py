"""Loading sanctions lists: OFAC's CSV sets and the sanctioned-address lists.

Files are parsed completely before anything is written, so a bad file changes nothing. A load whose files
hash to the version already loaded is a no-op; otherwise a new version is recorded, entries are added,
changed (new fingerprint) or marked removed, the list's addresses follow, and everyone is re-screened
once the load commits. Loads of one source serialise on an advisory lock.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.db import connection, transaction

from backoffice import audit
from kyc import addresses, ofac, watchlists
from kyc.models import ListEntry, SanctionedAddress, SanctionsList

ENTRY_FIELDS = ("kind", "name", "aliases", "programs", "birth_dates", "countries", "remarks", "fingerprint")
_LOAD_LOCK_KEY = 0x4B59_C11575  # pg_advisory_xact_lock key for list loads; no other code uses it


@dataclass(frozen=True)
class LoadResult:
    version: SanctionsList
    changed: bool


def load_ofac_list(
    *,
    source: str,
    primary: Path,
    alt: Path | None = None,
    comments: Path | None = None,
    actor: audit.Actor,
    now: datetime,
) -> LoadResult:
    """Load an OFAC list (e.g. source OFAC_SDN from sdn.csv + alt.csv + sdn_comments.csv)."""
    files = [Path(p) for p in (primary, alt, comments) if p]
    parsed = ofac.parse_ofac(primary, alt=alt, comments=comments)
    located = [
        (*_chain_address(f"entry {e.ent_num}", ticker, address), e.ent_num)
        for e in parsed
        for ticker, address in e.addresses
    ]
    return _store(source=source, files=files, parsed=parsed, located=located, actor=actor, now=now)


def load_people_list(*, source: str, path: Path, actor: audit.Actor, now: datetime) -> LoadResult:
    """Load a person watchlist CSV (e.g. a PEP list) as its own source."""
    return _store(
        source=source, files=[Path(path)], parsed=watchlists.parse_people_csv(path), located=[], actor=actor, now=now
    )


def load_address_lists(*, source: str, paths: list[Path], actor: audit.Actor, now: datetime) -> LoadResult:
    """Load sanctioned-address lists (0xB10C per-ticker files, the ultrasoundmoney CSV) as one source."""
    files = sorted(Path(p) for p in paths)
    if not files:
        raise ofac.ListFormatError("no files given")
    located = [
        (*_chain_address(path.name, ticker, address), None)
        for path in files
        for ticker, address in ofac.parse_address_list(path)
    ]
    if not located:
        raise ofac.ListFormatError("the files hold no addresses")
    return _store(source=source, files=files, parsed=[], located=located, actor=actor, now=now)


def _chain_address(where: str, ticker: str, address: str) -> tuple[str, str, str]:
    try:
        chain, normalised = addresses.normalise_address(ticker, address)
    except addresses.UnknownNetwork as exc:
        raise ofac.ListFormatError(f"{where}: {exc}") from None
    return chain, normalised, ticker


def version_of(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@transaction.atomic
def _store(*, source, files, parsed, located, actor, now) -> LoadResult:
    from kyc import tasks

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOAD_LOCK_KEY])
    version = version_of(files)
    latest = SanctionsList.objects.filter(source=source).order_by("-pk").first()
    if latest is not None and latest.version == version:
        return LoadResult(latest, False)
    row = SanctionsList.objects.create(
        source=source,
        version=version,
        files=[p.name for p in files],
        loaded_at=now,
        loaded_by=actor.label,
        entries=len(parsed) or len(located),
    )
    counts = _sync_entries(row, parsed, now=now) if parsed else {"added": 0, "changed": 0, "removed": 0}
    ids = dict(ListEntry.objects.filter(source=source).values_list("ent_num", "pk")) if parsed else {}
    wanted = {(chain, address): (network, ids.get(ent_num)) for chain, address, network, ent_num in located}
    counts["addresses"] = _sync_addresses(source, wanted, actor=actor, now=now)
    row.added, row.changed, row.removed = counts["added"], counts["changed"], counts["removed"]
    row.save(update_fields=["added", "changed", "removed"])
    audit.record(
        actor=actor,
        action="kyc.list.load",
        target=row,
        now=now,
        after={"source": source, "version": version, "files": row.files, "entries": row.entries, **counts},
    )
    tasks.rescreen_all.delay_on_commit()
    return LoadResult(row, True)


def _sync_entries(row: SanctionsList, parsed: list[ofac.ParsedEntry], *, now: datetime) -> dict:
    current = {e.ent_num: e for e in ListEntry.objects.filter(source=row.source)}
    new, changed = [], []
    for item in parsed:
        values = _values(item)
        existing = current.get(item.ent_num)
        if existing is None:
            new.append(ListEntry(source=row.source, ent_num=item.ent_num, changed_in=row, **values))
        elif existing.fingerprint != values["fingerprint"] or existing.removed_at is not None:
            for name, value in values.items():
                setattr(existing, name, value)
            existing.changed_in, existing.removed_at = row, None
            changed.append(existing)
    ListEntry.objects.bulk_create(new, batch_size=2000)
    ListEntry.objects.bulk_update(changed, [*ENTRY_FIELDS, "changed_in", "removed_at"], batch_size=2000)
    gone = set(current) - {item.ent_num for item in parsed}
    removed = ListEntry.objects.filter(source=row.source, ent_num__in=gone, removed_at__isnull=True).update(
        removed_at=now, changed_in=row
    )
    return {"added": len(new), "changed": len(changed), "removed": removed}


def _values(item: ofac.ParsedEntry) -> dict:
    return {
        "kind": item.kind,
        "name": item.name[:350],
        "aliases": list(item.aliases),
        "programs": list(item.programs),
        "birth_dates": list(item.birth_dates),
        "countries": list(item.countries),
        "remarks": item.remarks,
        "fingerprint": item.fingerprint,
    }


def _sync_addresses(source: str, wanted: dict, *, actor: audit.Actor, now: datetime) -> int:
    active = {(a.chain, a.address): a for a in SanctionedAddress.objects.filter(source=source, removed_at__isnull=True)}
    SanctionedAddress.objects.filter(pk__in=[a.pk for key, a in active.items() if key not in wanted]).update(
        removed_at=now
    )
    SanctionedAddress.objects.bulk_create(
        [
            SanctionedAddress(
                chain=chain,
                address=address,
                network=network,
                origin=SanctionedAddress.Origin.LIST,
                source=source,
                entry_id=entry_id,
                added_by=actor.label,
                added_at=now,
            )
            for (chain, address), (network, entry_id) in wanted.items()
            if (chain, address) not in active
        ]
    )
    return len(wanted)
