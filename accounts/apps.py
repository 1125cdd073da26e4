from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and access"

    def ready(self):
        from accounts import roles

        post_migrate.connect(roles.sync_role_permissions, dispatch_uid="accounts.sync_role_permissions")
