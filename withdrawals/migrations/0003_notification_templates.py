"""What customers are told when a withdrawal does not go out at once. A frozen withdrawal gets the same
neutral 'under review' notice as any other review, so a suspicion is never disclosed to its subject."""

from datetime import UTC, datetime

from django.db import migrations

TEMPLATES = [
    ("withdrawal_held", "SMS", "",
     "Your withdrawal of {{ amount }} {{ asset }} is held until {{ hold_until }} for a security check. We may call you."),
    ("withdrawal_held", "EMAIL", "Your withdrawal is held for a security check",
     "Dear {{ name }},\n\nyour withdrawal {{ request_id }} of {{ amount }} {{ asset }} is held until {{ hold_until }} "
     "(UTC) while we confirm it with you by phone or face verification.\n\nYour exchange risk team"),
    ("withdrawal_in_review", "EMAIL", "Your withdrawal is being reviewed",
     "Dear {{ name }},\n\nyour withdrawal {{ request_id }} of {{ amount }} {{ asset }} is being reviewed by our team. "
     "We will let you know the outcome.\n\nYour exchange risk team"),
    ("withdrawal_rejected", "SMS", "", "Your withdrawal of {{ amount }} {{ asset }} was not processed. Details by e-mail."),
    ("withdrawal_rejected", "EMAIL", "Your withdrawal was not processed",
     "Dear {{ name }},\n\nyour withdrawal {{ request_id }} of {{ amount }} {{ asset }} was not processed: "
     "{{ reason }}.\n\nYour exchange risk team"),
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
    dependencies = [("withdrawals", "0002_defaults"), ("accounts", "0004_notification_templates")]

    operations = [migrations.RunPython(load, unload)]
