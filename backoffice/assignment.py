"""Work assigned to a person: object permissions (django-guardian) on a KYC case, an alert, a break …

Assigning grants the assignee the given permission on that one object; reassigning moves it. The
queue pages list what a person may work on with `assigned_objects`.
"""

from datetime import datetime

from django.db import transaction
from django.db.models import Model, QuerySet
from guardian.shortcuts import assign_perm, get_objects_for_user, get_users_with_perms, remove_perm

from backoffice import audit
from backoffice.errors import DomainError


class CannotAssign(DomainError):
    """This person cannot be given the work."""

    code = "cannot_assign"


@transaction.atomic
def assign_work(*, obj: Model, assignee, permission: str, actor: audit.Actor, now: datetime, reason: str = "") -> None:
    """Give `assignee` (and only them) `permission` on `obj`; whoever held it before loses it."""
    if not (assignee.is_active and assignee.is_staff):
        raise CannotAssign(f"{assignee} is not an active staff member.")
    codename = permission.split(".", 1)[1]
    previous = [u for u in get_users_with_perms(obj, only_with_perms_in=[codename]) if u.pk != assignee.pk]
    for user in previous:
        remove_perm(permission, user, obj)
    assign_perm(permission, assignee, obj)
    audit.record(
        actor=actor,
        action="work.assign",
        target=obj,
        now=now,
        reason=reason,
        before={"assignees": sorted(u.get_username() for u in previous)},
        after={"assignee": assignee.get_username(), "permission": permission},
    )


def assigned_objects(user, permission: str, queryset: QuerySet) -> QuerySet:
    """The objects of `queryset` on which `user` holds `permission` for that object itself."""
    return get_objects_for_user(
        user, permission, klass=queryset, use_groups=False, with_superuser=False, accept_global_perms=False
    )
