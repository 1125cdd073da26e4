"""Suspicious IPs and devices: staff flag, limit or ban them (with a reason and an expiry)."""

import csv
import io
import ipaddress
from datetime import datetime

from django.db import transaction
from django.db.models import Q

from accounts.models import SuspiciousEntry
from backoffice import audit
from backoffice.errors import InvalidInput


def normalise(kind: str, value: str) -> str:
    """The canonical spelling of an IP (so ::1 and 0:0::1 are one entry) or a device id."""
    value = value.strip()
    if kind == SuspiciousEntry.Kind.IP:
        try:
            return ipaddress.ip_address(value).compressed
        except ValueError:
            raise InvalidInput(
                f"{value!r} is not an IP address.", details=[{"field": "value", "message": "not an IP"}]
            ) from None
    if not value or len(value) > 128:
        raise InvalidInput("A device id is 1–128 characters.", details=[{"field": "value", "message": "length"}])
    return value


def active(now: datetime) -> Q:
    return Q(removed_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))


@transaction.atomic
def mark_suspicious(
    *,
    kind: str,
    value: str,
    status: str,
    reason: str,
    actor: audit.Actor,
    now: datetime,
    expires_at: datetime | None = None,
) -> SuspiciousEntry:
    """Flag, limit or ban an IP or device; an existing entry for it is changed (and the change logged)."""
    if status not in SuspiciousEntry.Status.values:
        raise InvalidInput("Choose flagged, limited or banned.", details=[{"field": "status", "message": status}])
    if not reason.strip():
        raise InvalidInput("Give a reason.", details=[{"field": "reason", "message": "required"}])
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("The expiry must be in the future.", details=[{"field": "expires_at", "message": "past"}])
    value = normalise(kind, value)
    entry = (
        SuspiciousEntry.objects.select_for_update(no_key=True)
        .filter(kind=kind, value=value, removed_at__isnull=True)
        .first()
    )
    before = audit.snapshot(entry, ("status", "reason", "expires_at")) if entry else None
    if entry is None:
        entry = SuspiciousEntry(kind=kind, value=value, created_at=now, created_by=actor.label)
    entry.status, entry.reason, entry.expires_at = status, reason, expires_at
    entry.save()
    audit.record(
        actor=actor,
        action="suspicious.mark",
        target=entry,
        now=now,
        reason=reason,
        before=before,
        after={"kind": kind, "value": value, "status": status, "expires_at": expires_at},
    )
    return entry


@transaction.atomic
def remove_suspicious(*, entry: SuspiciousEntry, actor: audit.Actor, reason: str, now: datetime) -> SuspiciousEntry:
    """Take an entry off the list."""
    if SuspiciousEntry.objects.filter(pk=entry.pk, removed_at__isnull=True).update(removed_at=now):
        audit.record(
            actor=actor,
            action="suspicious.remove",
            target=entry,
            now=now,
            reason=reason,
            before={"status": entry.status},
            after={"removed_at": now},
        )
    entry.refresh_from_db()
    return entry


def statuses(*, ips: set[str], devices: set[str], now: datetime) -> dict[tuple[str, str], SuspiciousEntry]:
    """The entries in force for these IPs and devices, keyed by (kind, value)."""
    found = SuspiciousEntry.objects.filter(
        active(now),
        Q(kind=SuspiciousEntry.Kind.IP, value__in=ips) | Q(kind=SuspiciousEntry.Kind.DEVICE, value__in=devices),
    )
    return {(e.kind, e.value): e for e in found}


def export_csv(*, now: datetime) -> str:
    """The list in force as CSV, for the daily review."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["kind", "value", "status", "reason", "created_at", "created_by", "expires_at"])
    for e in SuspiciousEntry.objects.filter(active(now)).order_by("kind", "value"):
        writer.writerow(
            [
                e.kind,
                e.value,
                e.status,
                e.reason,
                e.created_at.isoformat(),
                e.created_by,
                e.expires_at.isoformat() if e.expires_at else "",
            ]
        )
    return out.getvalue()
