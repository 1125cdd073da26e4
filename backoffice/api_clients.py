"""API clients: creating, revoking and recognising bearer tokens. Only a SHA-256 of a token is stored.

Tokens are 256 random bits, so a plain SHA-256 is enough (a slow password hash would only slow every
API request without adding safety against guessing).
"""

import hashlib
import secrets
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from backoffice import audit
from backoffice.errors import DomainError, InvalidInput
from backoffice.models import ApiClient

SCOPES = {
    "reference": "instruments, prices, customers and accounts",
    "events": "security events, trades, order events, positions and balances",
    "decisions": "restrictions, the restriction feed and pre-trade checks",
    "withdrawals": "withdrawal requests and their status",
    "kyc_import": "importing KYC levels decided before the back office (never lowers a decided level)",
}
DEFAULT_SCOPES = ("reference", "events", "decisions", "withdrawals")
_PREFIX = "bo_"


class NameTaken(DomainError):
    """An API client with this name exists already."""

    code = "name_taken"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# token hash -> (client, monotonic time the entry was read). Every API request authenticates, so a
# client is read from the database at most every API_TOKEN_CACHE_SECONDS per process; a revocation
# reaches this process at once and every other process within that time.
_recent: dict[str, tuple[ApiClient, float]] = {}


def client_for_token(token: str) -> ApiClient | None:
    """The active client holding this token, or None."""
    digest = hash_token(token)
    cached = _recent.get(digest)
    if cached is not None and time.monotonic() - cached[1] < settings.API_TOKEN_CACHE_SECONDS:
        return cached[0]
    client = ApiClient.objects.filter(token_hash=digest, revoked_at__isnull=True).first()
    if client is None:
        _recent.pop(digest, None)
    else:
        _recent[digest] = (client, time.monotonic())
    return client


def forget_cached_tokens() -> None:
    _recent.clear()


def note_use(client: ApiClient, *, now: datetime) -> None:
    """Keep last_used_at roughly current (at most one write a minute per client; usage, not a state change)."""
    if client.last_used_at is None or now - client.last_used_at > timedelta(minutes=1):
        ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
        client.last_used_at = now


@transaction.atomic
def create_api_client(*, name: str, scopes: list[str], actor: audit.Actor, now: datetime) -> tuple[ApiClient, str]:
    """A new client and its token; the token is returned once and never stored."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("The name must be 1–100 characters.")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise InvalidInput(
            f"Unknown scope(s): {', '.join(unknown)}; choose from {', '.join(SCOPES)}."
            if unknown
            else "Give at least one scope."
        )
    if ApiClient.objects.filter(name=name).exists():
        raise NameTaken(f"An API client called {name!r} exists already.")
    token = _PREFIX + secrets.token_urlsafe(32)
    client = ApiClient.objects.create(
        name=name, token_prefix=token[:10], token_hash=hash_token(token), scopes=sorted(set(scopes)), created_at=now
    )
    audit.record(
        actor=actor, action="api_client.create", target=client, now=now, after={"name": name, "scopes": client.scopes}
    )
    return client, token


@transaction.atomic
def revoke_api_client(*, client: ApiClient, actor: audit.Actor, reason: str, now: datetime) -> ApiClient:
    """Revoke a client's token at once; idempotent."""
    updated = ApiClient.objects.filter(pk=client.pk, revoked_at__isnull=True).update(revoked_at=now)
    forget_cached_tokens()
    if updated:
        audit.record(
            actor=actor,
            action="api_client.revoke",
            target=client,
            now=now,
            before={"revoked_at": None},
            after={"revoked_at": now},
            reason=reason,
        )
    client.refresh_from_db(fields=["revoked_at"])
    return client
