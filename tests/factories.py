"""Test data builders: keyword-only, sensible defaults; a test overrides only what it is about."""

from datetime import UTC, datetime
from itertools import count

import pyotp
from django.contrib.auth.models import Group, Permission

from accounts.models import Account, Customer, User
from backoffice import api_clients
from backoffice.audit import Actor

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SYSTEM = Actor.system("tests")
_serial = count(1)


def make_staff(
    *,
    roles: tuple[str, ...] = (),
    perms: tuple[str, ...] = (),
    username: str | None = None,
    password: str = "correct horse battery staple",
    enrolled: bool = True,
) -> User:
    n = next(_serial)
    user = User.objects.create_user(username=username or f"staff{n}", password=password, is_staff=True)
    if enrolled:
        user.totp_secret = pyotp.random_base32()
        user.totp_confirmed_at = NOW
        user.save(update_fields=["totp_secret", "totp_confirmed_at"])
    for role in roles:
        user.groups.add(Group.objects.get(name=role))
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return User.objects.get(pk=user.pk)  # fresh, so permission caches are empty


def make_customer(**fields) -> Customer:
    n = next(_serial)
    defaults = {
        "external_id": f"C{n}",
        "type": Customer.Type.INDIVIDUAL,
        "name": f"Customer {n}",
        "country": "DE",
        "email": f"c{n}@example.com",
        "phone": "+49 30 1234567",
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Customer.objects.create(**(defaults | fields))


def make_account(*, customer: Customer | None = None, **fields) -> Account:
    n = next(_serial)
    defaults = {"external_id": f"A{n}", "kind": Account.Kind.SPOT, "created_at": NOW, "updated_at": NOW}
    return Account.objects.create(customer=customer or make_customer(), **(defaults | fields))


def make_api_client(*, scopes: tuple[str, ...] = api_clients.DEFAULT_SCOPES, name: str | None = None):
    """An API client and its bearer token."""
    return api_clients.create_api_client(
        name=name or f"engine-{next(_serial)}", scopes=list(scopes), actor=SYSTEM, now=NOW
    )
