"""The operations log: one append-only, hash-chained record of every state change.

Every service that changes state calls `record()` inside its own transaction, so the entry commits or
rolls back with the change. Entries are chained: each carries the SHA-256 of its own content and the
previous entry's hash. Writers serialise on a transaction-scoped advisory lock, taken at the end of the
service, so the chain follows commit order and two writers never read the same "previous" row.
"""

import hashlib
import ipaddress
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from django.db import connection, models

from backoffice.models import OperationsLogEntry

GENESIS_HASH = "0" * 64
# pg_advisory_xact_lock key for the chain; any fixed 64-bit number no other code uses.
_CHAIN_LOCK_KEY = 0x0B0FF1CE_0A0D17


@dataclass(frozen=True)
class Actor:
    """Who is acting: a staff user, an API client or the system, and from which IP."""

    type: str
    label: str
    user: Any = None
    api_client: Any = None
    ip: str | None = None

    @classmethod
    def staff(cls, user, *, ip: str | None = None) -> "Actor":
        return cls(type=OperationsLogEntry.ActorType.STAFF, label=user.get_username(), user=user, ip=ip)

    @classmethod
    def api(cls, client, *, ip: str | None = None) -> "Actor":
        return cls(type=OperationsLogEntry.ActorType.API, label=f"api:{client.name}", api_client=client, ip=ip)

    @classmethod
    def system(cls, name: str) -> "Actor":
        return cls(type=OperationsLogEntry.ActorType.SYSTEM, label=f"system:{name}")


def actor_from_request(request) -> Actor:
    """The actor behind an HTTP request: the API client on /api/v1/, else the logged-in staff user."""
    ip = client_ip(request)
    auth = getattr(request, "auth", None)
    if auth is not None and auth.__class__.__name__ == "ApiClient":
        return Actor.api(auth, ip=ip)
    return Actor.staff(request.user, ip=ip)


def client_ip(request) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy rewrites REMOTE_ADDR.
    return request.META.get("REMOTE_ADDR") or None


def jsonable(value: Any) -> Any:
    """A JSON value that survives a round trip through jsonb unchanged (so hashes can be re-derived)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal | float | UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, models.Model):
        return jsonable(value.pk)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(jsonable(v) for v in value)
    return str(value)


def snapshot(instance: models.Model, fields: Iterable[str]) -> dict:
    """The named fields of a row as a JSON-safe dict, for the before/after columns."""
    return {name: jsonable(getattr(instance, name)) for name in fields}


def record(
    *,
    actor: Actor,
    action: str,
    target: models.Model | tuple[str, Any],
    now: datetime,
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
) -> OperationsLogEntry:
    """Append one entry to the operations log, in the caller's transaction (which must exist)."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit.record() must run inside the transaction that makes the change")
    target_type, target_id = _target(target)
    entry = OperationsLogEntry(
        at=now.astimezone(UTC),  # stored and hashed in UTC, as the database returns it
        actor_type=actor.type,
        actor_user=actor.user,
        actor=actor.label[:150],
        action=action,
        target_type=target_type,
        target_id=str(target_id)[:100],
        before=jsonable(before),
        after=jsonable(after),
        reason=reason,
        ip=_normalise_ip(actor.ip),
    )
    take_chain_lock()
    last = OperationsLogEntry.objects.order_by("-id").values_list("hash", flat=True).first()
    entry.prev_hash = last or GENESIS_HASH
    entry.hash = entry_hash(entry)
    entry.save(force_insert=True)
    return entry


def take_chain_lock() -> None:
    """Serialise with every other writer of the log until this transaction ends.

    Other commit-ordered feeds (the restriction change feed) take the same lock, so rows they number
    become visible in number order, and no two of these locks can deadlock.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])


def entry_hash(entry: OperationsLogEntry) -> str:
    """SHA-256 over the entry's content and its predecessor's hash."""
    content = {
        "prev": entry.prev_hash,
        "at": entry.at.isoformat(),
        "actor_type": entry.actor_type,
        "actor_user": entry.actor_user_id,
        "actor": entry.actor,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "before": entry.before,
        "after": entry.after,
        "reason": entry.reason,
        "ip": entry.ip,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class BrokenLink:
    entry_id: int
    problem: str


def first_broken_link(entries: Iterator[OperationsLogEntry] | None = None) -> BrokenLink | None:
    """Walk the chain oldest first; the first entry whose hash or link does not hold, or None."""
    if entries is None:
        entries = OperationsLogEntry.objects.order_by("id").iterator(chunk_size=5000)
    expected_prev = GENESIS_HASH
    for entry in entries:
        if entry.prev_hash != expected_prev:
            return BrokenLink(entry.pk, "its link to the previous entry does not match (an entry was removed)")
        if entry_hash(entry) != entry.hash:
            return BrokenLink(entry.pk, "its content does not match its hash (the entry was altered)")
        expected_prev = entry.hash
    return None


def _target(target) -> tuple[str, Any]:
    if isinstance(target, models.Model):
        return target._meta.label_lower, target.pk
    return target


def _normalise_ip(ip: str | None) -> str | None:
    if not ip:
        return None
    try:
        return ipaddress.ip_address(ip).compressed
    except ValueError:
        return None
