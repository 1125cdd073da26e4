"""The trading desk does the first KYC review; its permissions are applied by accounts.roles."""

from django.db import migrations


def create(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name="trading desk")


def remove(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="trading desk").delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_notification_templates")]

    operations = [migrations.RunPython(create, remove)]
