"""Default wording of the customer notices the back office sends itself; staff edit it in the admin."""

from datetime import UTC, datetime

from django.db import migrations

TEMPLATES = [
    ("account_locked", "SMS", "", "Your account has been locked for your protection. Contact support to unlock it."),
    ("account_locked", "EMAIL", "Your account has been locked",
     "Dear {{ name }},\n\nwe have locked your account for your protection: {{ reason }}.\n"
     "No login or operation is possible until it is unlocked. To unlock it, contact support; we will verify "
     "your identity and ask you to choose a new password.\n\nYour exchange risk team"),
    ("account_unlocked", "SMS", "", "Your account has been unlocked. Please choose a new password at your next login."),
    ("account_unlocked", "EMAIL", "Your account has been unlocked",
     "Dear {{ name }},\n\nyour account has been unlocked after verification. You must choose a new password "
     "at your next login.\n\nYour exchange risk team"),
    ("restriction_added", "EMAIL", "A restriction was placed on your account",
     "Dear {{ name }},\n\na restriction ({{ code }}) was placed on your account{% if until %} until {{ until }}"
     "{% endif %}: {{ reason }}\n\nYour exchange risk team"),
]


def load(apps, schema_editor):
    Template = apps.get_model("accounts", "NotificationTemplate")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for code, channel, subject, body in TEMPLATES:
        Template.objects.get_or_create(code=code, channel=channel,
                                       defaults={"subject": subject, "body": body, "updated_at": now})


def unload(apps, schema_editor):
    Template = apps.get_model("accounts", "NotificationTemplate")
    for code, channel, _, _ in TEMPLATES:
        Template.objects.filter(code=code, channel=channel).delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_account_security")]

    operations = [migrations.RunPython(load, unload)]
