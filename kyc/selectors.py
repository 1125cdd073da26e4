"""Reads with business meaning: KYC level gates, address risk, checklists, the review queue, the screening index."""

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Count, Max, Min, Q
from guardian.shortcuts import get_users_with_perms

from accounts.models import Customer
from backoffice.parameters import param
from kyc import addresses, checklist, matching
from kyc.models import KycCase, ListEntry, Requirement, SanctionedAddress, SanctionsList, ScreeningHit, Track

CUSTOMER_FIELDS = ("name", "email", "country", "date_of_birth", "phone", "type")


# ---- KYC level gate ----------------------------------------------------------------------------------
def meets_level(customer: Customer, required_level: int) -> bool:
    """Whether the customer's verified KYC level allows an action that needs `required_level`."""
    return customer.kyc_level >= required_level


def required_level(action: str, *, at: datetime | None = None) -> int:
    """The KYC level `action` needs (risk parameter kyc.min_level_<action>: withdrawal, trading, margin)."""
    return param(f"kyc.min_level_{action}", at=at)


def level_reasons(customer: Customer, action: str, *, at: datetime | None = None) -> list[str]:
    """The API reason codes the KYC level gives for `action`: ["kyc_level_insufficient"] or []."""
    return [] if meets_level(customer, required_level(action, at=at)) else ["kyc_level_insufficient"]


# ---- addresses -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AddressMatch:
    chain: str
    address: str
    source: str
    origin: str
    listed_name: str
    reason: str


def address_risk(*, network: str, address: str) -> AddressMatch | None:
    """The sanctions-list or staff high-risk entry for this address on this network, or None.

    Exact match after the chain's own normalisation; EVM networks share one address space. An unknown
    network raises addresses.UnknownNetwork rather than answering "no risk".
    """
    chain, normalised = addresses.normalise_address(network, address)
    row = (
        SanctionedAddress.objects.filter(chain=chain, address=normalised, removed_at__isnull=True)
        .select_related("entry")
        .order_by("origin", "pk")
        .first()
    )
    if row is None:
        return None
    listed = row.entry.name if row.entry else ""
    return AddressMatch(row.chain, row.address, row.source, row.origin, listed, row.reason)


# ---- dossiers ------------------------------------------------------------------------------------------
def track_of(customer: Customer) -> str:
    return Track.INDIVIDUAL if customer.type == Customer.Type.INDIVIDUAL else Track.CORPORATE


def needs_second_review(case: KycCase) -> bool:
    """Corporate and market-maker cases always; individual ones from the configured level."""
    return case.track == Track.CORPORATE or case.requested_level >= param("kyc.second_review_min_level")


def dossier_of(case: KycCase) -> checklist.Dossier:
    customer = case.customer
    fields = {name: getattr(customer, name) for name in CUSTOMER_FIELDS} | case.data
    documents = tuple(case.documents.order_by("pk").values_list("document_type", "named_person"))
    return checklist.Dossier(fields, frozenset(case.checks), documents)


def case_checklist(case: KycCase) -> checklist.Checklist:
    """What the case's dossier has and lacks for its requested level."""
    needs = [
        checklist.Need(r.kind, r.code, r.label, r.level)
        for r in Requirement.objects.filter(track=case.track, active=True)
    ]
    return checklist.checklist(
        needs, dossier_of(case), level=case.requested_level, corporate=case.track == Track.CORPORATE
    )


def case_assignees(case: KycCase) -> set[int]:
    """Ids of the staff the case is assigned to (object permission kyc.work_case); empty when unassigned."""
    return {u.pk for u in get_users_with_perms(case, only_with_perms_in=["work_case"], with_group_users=False)}


def dossier_snapshot(case: KycCase) -> dict:
    """The dossier as it stands, in the canonical form a decision signs."""
    customer = case.customer
    return {
        "case": case.pk,
        "customer": {"external_id": customer.external_id, **{f: _text(getattr(customer, f)) for f in CUSTOMER_FIELDS}},
        "requested_level": case.requested_level,
        "track": case.track,
        "data": case.data,
        "checks": sorted(case.checks),
        "documents": [
            {"id": pk, "type": t, "sha256": h, "named_person": p}
            for pk, t, h, p in case.documents.order_by("pk").values_list(
                "pk", "document_type", "sha256", "named_person"
            )
        ],
    }


def dossier_hash(snapshot: dict) -> str:
    return hashlib.sha256(_canonical(snapshot).encode()).hexdigest()


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _text(value):
    return value.isoformat() if isinstance(value, date) else value


# ---- the queue -----------------------------------------------------------------------------------------
def queue_summary(*, now: datetime) -> dict:
    """Backlog per status, overdue cases and the oldest open case's age, for the queue page."""
    open_cases = KycCase.objects.filter(closed_at__isnull=True)
    # A case waiting on the customer is not the desk's backlog, so it is never overdue.
    waiting_on_us = Q(due_at__lt=now) & ~Q(status=KycCase.Status.SENT_BACK)
    totals = open_cases.aggregate(total=Count("pk"), overdue=Count("pk", filter=waiting_on_us), oldest=Min("opened_at"))
    by_status = dict(open_cases.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    oldest = totals["oldest"]
    return {
        "total": totals["total"],
        "overdue": totals["overdue"],
        "oldest_age_hours": round((now - oldest).total_seconds() / 3600, 1) if oldest else None,
        "by_status": [
            (label, by_status.get(value, 0))
            for value, label in KycCase.Status.choices
            if value in (KycCase.Status.OPEN, KycCase.Status.SECOND_REVIEW, KycCase.Status.SENT_BACK)
        ],
        "open_hits": ScreeningHit.objects.filter(status=ScreeningHit.Status.OPEN).count(),
    }


# ---- screening -----------------------------------------------------------------------------------------
def subject_of(name: str, date_of_birth: date | None, country: str, customer_type: str) -> matching.Subject:
    return matching.Subject(
        name=name, birth_date=date_of_birth, country=country, is_person=customer_type == Customer.Type.INDIVIDUAL
    )


def customer_fingerprint(name: str, date_of_birth: date | None, country: str, customer_type: str) -> str:
    """Changes when anything screening uses changes; a remembered false match holds only while it does not."""
    content = [name, date_of_birth.isoformat() if date_of_birth else None, country, customer_type]
    return hashlib.sha256(json.dumps(content).encode()).hexdigest()


def list_state() -> tuple:
    """Identifies the loaded lists: the newest version id and the number of versions."""
    state = SanctionsList.objects.aggregate(last=Max("pk"), n=Count("pk"))
    return state["last"], state["n"]


class _IndexCache:
    def __init__(self):
        self.lock = threading.Lock()
        self.state = None
        self.index: matching.NameIndex | None = None


_index_cache = _IndexCache()


def screening_index() -> matching.NameIndex:
    """The name index of every listed entry, built once per process and rebuilt when a list version changes."""
    state = list_state()
    with _index_cache.lock:
        if _index_cache.index is None or _index_cache.state != state:
            _index_cache.index = build_index()
            _index_cache.state = state
        return _index_cache.index


def build_index() -> matching.NameIndex:
    rows = ListEntry.objects.filter(removed_at__isnull=True).values_list(
        "pk", "name", "aliases", "birth_dates", "countries", "kind"
    )
    return matching.NameIndex(
        matching.Listed(
            pk,
            (matching.display_order(name), *(matching.display_order(a) for a in aliases)),
            tuple(births),
            tuple(countries),
            kind == "INDIVIDUAL",
        )
        for pk, name, aliases, births, countries, kind in rows.iterator(chunk_size=5000)
    )


def forget_index() -> None:
    """Drop the cached index (tests; a list load rebuilds it anyway)."""
    with _index_cache.lock:
        _index_cache.index = None
        _index_cache.state = None
