"""Which permissions each staff role holds.

The groups themselves are created by migration; this table is applied after every `migrate`
(post_migrate), so permissions of models added later reach the right roles without another data
migration. Patterns are `app_label.codename` with shell wildcards.
"""

from fnmatch import fnmatch

from django.contrib.auth.models import Group, Permission

ALL_APPS = ("backoffice", "accounts", "kyc", "trading_risk", "withdrawals", "reconciliation", "financing", "reporting")
VIEW_EVERYTHING = tuple(f"{app}.view_*" for app in ALL_APPS)

ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "auditor": VIEW_EVERYTHING,
    "risk officer": VIEW_EVERYTHING
    + (
        "backoffice.request_change",
        "backoffice.approve_parameter_change",
        "backoffice.approve_*",
        "trading_risk.*",
        "accounts.manage_restriction",
        "accounts.unlock_customer",
        "accounts.manage_suspicious",
        "accounts.change_notificationtemplate",
        "withdrawals.review_*",
        "withdrawals.approve_*",
        "reporting.*",
    ),
    "compliance officer": VIEW_EVERYTHING
    + (
        "backoffice.request_change",
        "kyc.*",
        "withdrawals.review_*",
        "reporting.*",
    ),
    "trading desk": VIEW_EVERYTHING
    + (
        "kyc.first_review",
        "kyc.manage_dossier",
    ),
    "operations": VIEW_EVERYTHING
    + (
        "backoffice.request_change",
        "reconciliation.*",
        "financing.*",
        "withdrawals.*_wallet*",
    ),
    "administrator": VIEW_EVERYTHING
    + (
        "backoffice.request_change",
        "backoffice.add_apiclient",
        "backoffice.change_apiclient",
        "accounts.add_user",
        "accounts.change_user",
        "auth.*_group",
    ),
}


def sync_role_permissions(**kwargs) -> None:
    """Give every role exactly the permissions its patterns match (post_migrate handler)."""
    permissions = list(Permission.objects.select_related("content_type"))
    for name, patterns in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted = [p for p in permissions if _matches(p, patterns)]
        group.permissions.set(wanted)


def _matches(permission: Permission, patterns: tuple[str, ...]) -> bool:
    label = f"{permission.content_type.app_label}.{permission.codename}"
    return any(fnmatch(label, pattern) for pattern in patterns)
