"""Sanctions and PEP screening of customers, decisions on hits, and staff high-risk addresses.

Scoring happens outside any transaction against the per-process index; only a customer whose hits
change is locked and written (customer row, then hit rows). A customer stays restricted (`sanctions_hit`)
while any hit is open or confirmed; resolving every hit as a false match lifts it. A false match is
remembered for that customer and entry until either one changes (their fingerprints).
"""

from datetime import datetime

from django.db import transaction

from accounts import restrictions
from accounts.models import Customer, Restriction
from backoffice import audit, parameters
from backoffice.errors import DomainError, InvalidInput
from kyc import addresses, matching, selectors
from kyc.models import ListEntry, SanctionedAddress, ScreeningHit

RESTRICTION_SOURCE = "kyc.screening"
RESTRICTION_RULE = "sanctions_screening"
CUSTOMER_ROW = ("pk", "name", "date_of_birth", "country", "type")


class HitAlreadyDecided(DomainError):
    """This screening hit has already been decided."""

    code = "not_pending"


def screen_customer(*, customer: Customer, actor: audit.Actor, now: datetime) -> list[ScreeningHit]:
    """Screen one customer against the loaded lists; returns the hits it opened."""
    index, threshold = selectors.screening_index(), _threshold(now)
    row = Customer.objects.values_list(*CUSTOMER_ROW).get(pk=customer.pk)
    matches = _matches(index, row, threshold)
    if not matches and not ScreeningHit.objects.filter(customer_id=row[0], status=ScreeningHit.Status.OPEN).exists():
        return []  # the usual case: nothing found, nothing to clear, so nothing is locked or written
    return _apply(row, matches, actor=actor, now=now)


def rescreen_all(*, actor: audit.Actor, now: datetime) -> dict:
    """Screen every customer in one pass; only customers whose hits change are written."""
    index, threshold = selectors.screening_index(), _threshold(now)
    found = {}
    for row in Customer.objects.values_list(*CUSTOMER_ROW).order_by().iterator(chunk_size=5000):
        if matches := _matches(index, row, threshold):
            found[row[0]] = (row, matches)
    changed = _customers_with_changes(found)
    opened = sum(len(_apply(row, matches, actor=actor, now=now)) for row, matches in changed.values())
    summary = {
        "customers": Customer.objects.count(),
        "matched": len(found),
        "changed": len(changed),
        "opened": opened,
        "list_entries": len(index),
    }
    with transaction.atomic():
        audit.record(actor=actor, action="kyc.rescreen", target=("kyc.screening", "all"), now=now, after=summary)
    return summary


def _threshold(now: datetime) -> float:
    return float(parameters.param("kyc.name_match_threshold", at=now))


def _matches(index: matching.NameIndex, row: tuple, threshold: float) -> list[matching.Match]:
    _, name, born, country, customer_type = row
    return index.screen(selectors.subject_of(name, born, country, customer_type), threshold=threshold)


def _customers_with_changes(found: dict) -> dict:
    """Customers to write: those matched to a pair not yet settled, and those with an open hit that no
    longer matches. Values are (customer row, matches)."""
    changed = {customer_id: found[customer_id] for customer_id in _with_unsettled_pairs(found)}
    for customer_id, entry_id in ScreeningHit.objects.filter(status=ScreeningHit.Status.OPEN).values_list(
        "customer_id", "entry_id"
    ):
        row, matches = found.get(customer_id, (None, []))
        if customer_id not in changed and entry_id not in {m.entry_id for m in matches}:
            changed[customer_id] = (row or Customer.objects.values_list(*CUSTOMER_ROW).get(pk=customer_id), matches)
    return changed


def _with_unsettled_pairs(found: dict) -> list[int]:
    """Matched customers with a (customer, entry) pair neither open nor decided for the same data."""
    entry_ids = {m.entry_id for _, matches in found.values() for m in matches}
    entry_prints = dict(ListEntry.objects.filter(pk__in=entry_ids).values_list("pk", "fingerprint"))
    settled = set()  # (customer, entry, customer print, entry print); prints None for an open hit
    hits = ScreeningHit.objects.filter(customer_id__in=found).values_list(
        "customer_id", "entry_id", "status", "customer_fingerprint", "entry_fingerprint"
    )
    for customer_id, entry_id, status, c_print, e_print in hits:
        open_hit = status == ScreeningHit.Status.OPEN
        settled.add((customer_id, entry_id, None, None) if open_hit else (customer_id, entry_id, c_print, e_print))
    unsettled = []
    for customer_id, (row, matches) in found.items():
        c_print = selectors.customer_fingerprint(*row[1:])
        pairs = [(m.entry_id, entry_prints.get(m.entry_id)) for m in matches]
        if any({(customer_id, e, None, None), (customer_id, e, c_print, p)}.isdisjoint(settled) for e, p in pairs):
            unsettled.append(customer_id)
    return unsettled


@transaction.atomic
def _apply(row: tuple, matches: list[matching.Match], *, actor: audit.Actor, now: datetime) -> list[ScreeningHit]:
    customer = Customer.objects.select_for_update(no_key=True).get(pk=row[0])
    c_print = selectors.customer_fingerprint(*row[1:])
    hits = list(ScreeningHit.objects.select_for_update(no_key=True).filter(customer=customer))
    entries = ListEntry.objects.in_bulk([m.entry_id for m in matches])
    opened = [
        _open_hit(customer, m, entries[m.entry_id], c_print, hits, actor=actor, now=now)
        for m in matches
        if m.entry_id in entries
    ]
    matched = {m.entry_id for m in matches}
    for hit in hits:
        if hit.status == ScreeningHit.Status.OPEN and hit.entry_id not in matched:
            _close(
                hit, ScreeningHit.Status.CLEARED, reason="no longer scores above the threshold", actor=actor, now=now
            )
    _sync_restriction(customer, actor=actor, now=now)
    return [hit for hit in opened if hit is not None]


def _open_hit(customer, match, entry, c_print, hits, *, actor, now) -> ScreeningHit | None:
    for hit in hits:
        if hit.entry_id != entry.pk:
            continue
        if hit.status == ScreeningHit.Status.OPEN:
            return None
        if hit.status in (ScreeningHit.Status.FALSE_MATCH, ScreeningHit.Status.TRUE_MATCH) and (
            hit.customer_fingerprint,
            hit.entry_fingerprint,
        ) == (c_print, entry.fingerprint):
            return None  # decided for exactly this customer data and list entry
    hit = ScreeningHit.objects.create(
        customer=customer,
        entry=entry,
        score=match.score,
        name_score=match.name_score,
        matched_name=match.matched_name[:350],
        screened_name=customer.name,
        reasons=list(match.reasons),
        customer_fingerprint=c_print,
        entry_fingerprint=entry.fingerprint,
        created_at=now,
    )
    audit.record(
        actor=actor,
        action="kyc.hit.open",
        target=hit,
        now=now,
        after={
            "customer": customer.external_id,
            "entry": f"{entry.source}:{entry.ent_num}",
            "score": match.score,
            "reasons": list(match.reasons),
        },
    )
    return hit


def _close(hit: ScreeningHit, status: str, *, reason: str, actor: audit.Actor, now: datetime) -> None:
    hit.status, hit.decided_at, hit.decided_by, hit.decision_reason = status, now, actor.label, reason
    hit.save(update_fields=["status", "decided_at", "decided_by", "decision_reason"])
    audit.record(
        actor=actor,
        action="kyc.hit.decide",
        target=hit,
        now=now,
        reason=reason,
        before={"status": ScreeningHit.Status.OPEN},
        after={"status": status},
    )


def _sync_restriction(customer: Customer, *, actor: audit.Actor, now: datetime) -> None:
    blocking = ScreeningHit.objects.filter(
        customer=customer, status__in=(ScreeningHit.Status.OPEN, ScreeningHit.Status.TRUE_MATCH)
    ).exists()
    standing = Restriction.objects.filter(
        restrictions.in_force(now), customer=customer, source=RESTRICTION_SOURCE
    ).exists()
    if blocking and not standing:
        restrictions.add_restriction(
            customer=customer,
            code="sanctions_hit",
            rule=RESTRICTION_RULE,
            actor=actor,
            now=now,
            source=RESTRICTION_SOURCE,
            reason="sanctions screening hit awaiting a compliance decision",
        )
    elif standing and not blocking:
        restrictions.lift_restrictions_from(
            source=RESTRICTION_SOURCE,
            customer=customer,
            actor=actor,
            now=now,
            reason="every screening hit resolved as a false match",
        )


@transaction.atomic
def decide_hit(*, hit: ScreeningHit, true_match: bool, reason: str, actor: audit.Actor, now: datetime) -> ScreeningHit:
    """A person marks a hit a true or a false match, with a reason; a false match is remembered for this data."""
    if not reason.strip():
        raise InvalidInput("Give a reason for the decision.", details=[{"field": "reason", "message": "required"}])
    if actor.user is None or not actor.user.has_perm("kyc.decide_screening_hit"):
        raise DomainError("You need the permission 'kyc.decide_screening_hit' for this.")
    customer = Customer.objects.select_for_update(no_key=True).get(pk=hit.customer_id)
    hit = ScreeningHit.objects.select_for_update(no_key=True).get(pk=hit.pk)
    if hit.status != ScreeningHit.Status.OPEN:
        raise HitAlreadyDecided()
    status = ScreeningHit.Status.TRUE_MATCH if true_match else ScreeningHit.Status.FALSE_MATCH
    _close(hit, status, reason=reason.strip(), actor=actor, now=now)
    _sync_restriction(customer, actor=actor, now=now)
    return hit


# ---- staff high-risk addresses -------------------------------------------------------------------------
@transaction.atomic
def add_high_risk_address(
    *, network: str, address: str, reason: str, actor: audit.Actor, now: datetime
) -> SanctionedAddress:
    """Add an address staff consider high risk (e.g. a reported scam wallet); withdrawals and deposits check it."""
    if not reason.strip():
        raise InvalidInput("Give a reason.", details=[{"field": "reason", "message": "required"}])
    try:
        chain, normalised = addresses.normalise_address(network, address)
    except addresses.UnknownNetwork as exc:
        raise InvalidInput(f"{exc}.", details=[{"field": "network", "message": "unknown"}]) from None
    row, created = SanctionedAddress.objects.get_or_create(
        chain=chain,
        address=normalised,
        source="staff",
        removed_at__isnull=True,
        defaults={
            "network": network.upper(),
            "origin": SanctionedAddress.Origin.STAFF,
            "reason": reason.strip(),
            "added_by": actor.label,
            "added_at": now,
        },
    )
    if created:
        audit.record(
            actor=actor,
            action="kyc.address.add",
            target=row,
            now=now,
            reason=reason,
            after={"chain": chain, "address": normalised, "network": row.network},
        )
    return row


@transaction.atomic
def remove_high_risk_address(*, row: SanctionedAddress, reason: str, actor: audit.Actor, now: datetime) -> None:
    """Take a staff-added address off the high-risk list (list addresses leave only with their list)."""
    if row.origin != SanctionedAddress.Origin.STAFF:
        raise DomainError("Addresses from a sanctions list leave it only when the list drops them.")
    if not SanctionedAddress.objects.filter(pk=row.pk, removed_at__isnull=True).update(removed_at=now):
        return
    audit.record(
        actor=actor,
        action="kyc.address.remove",
        target=row,
        now=now,
        reason=reason,
        before={"chain": row.chain, "address": row.address},
    )
