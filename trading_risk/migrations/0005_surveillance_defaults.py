"""Defaults for trade surveillance: extra risk parameters, customer notices and announcement templates."""

from datetime import UTC, datetime

from django.db import migrations

BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)

# (key, section, kind, unit, default, min, max, scoped, description)
PARAMETERS = [
    ("surveillance.anomaly_baseline_days", "Trading risk", "INTEGER", "days", "30", 3, 365, False,
     "Days of an account's own history that form its behaviour baseline."),
    ("surveillance.anomaly_min_history_days", "Trading risk", "INTEGER", "days", "7", 2, 365, False,
     "An account needs at least this many active days in its baseline before it can be flagged."),
    ("surveillance.anomaly_min_volume_btc", "Trading risk", "DECIMAL", "BTC", "10", 0, None, False,
     "A day below this volume is never a behaviour anomaly, however unusual (keeps small accounts quiet)."),
    ("surveillance.rule_restriction_hours", "Trading risk", "INTEGER", "hours", "24", 1, 8760, False,
     "How long a restriction imposed by a surveillance rule's action lasts (staff may lift it earlier)."),
    ("surveillance.event_retention_days", "Trading risk", "INTEGER", "days", "1825", 30, 36500, False,
     "Trades and order events are kept this long (whole daily partitions are dropped after it)."),
]

WARNING = ("Dear {{ name }},\n\nour surveillance noticed {{ finding }} on your account {{ account }}"
           "{% if symbol %} in {{ symbol }}{% endif %}. Please review your trading; continued activity of this "
           "kind may lead to restrictions.\n\nYour exchange risk team")
LADDER = ("Dear {{ name }},\n\nyour account {{ account }} placed and cancelled {{ events }} orders in {{ symbol }} "
          "within 24 hours (warning {{ step }} of 3).{% if until %} Opening{% if step == 3 %} and closing{% endif %} "
          "positions in your account is restricted until {{ until }}.{% endif %}\n\nYour exchange risk team")
NOTICES = [
    ("surveillance_warning", "SMS", "", "Risk notice: {{ finding }} on account {{ account }}. See your e-mail."),
    ("surveillance_warning", "EMAIL", "A risk notice about your trading", WARNING),
    ("order_cancel_warning", "SMS", "",
     "Warning {{ step }}/3: too many orders and cancels in {{ symbol }}.{% if until %} Restricted until "
     "{{ until }}.{% endif %}"),
    ("order_cancel_warning", "EMAIL", "Warning {{ step }} of 3: frequent orders and cancels", LADDER),
    ("order_cancel_warning", "CALL", "",
     "Call script: explain warning {{ step }} of 3 for frequent order/cancel in {{ symbol }} and the restriction "
     "until {{ until }}."),
    ("risk_warning_letter", "EMAIL", "Risk warning letter",
     "Dear {{ name }},\n\nthis letter is a formal risk warning about the activity of your accounts: {{ findings }}.\n\n"
     "Such activity breaches our trading rules. We ask you to stop it immediately. If it continues we will "
     "restrict opening and closing positions or ban trading on your accounts.\n\n"
     "Case reference: {{ case }}\n\nYour exchange risk team"),
]

ANNOUNCEMENTS = [
    ("trading_halt", "Trading in {{ scope }} is halted",
     "Trading in {{ scope }} is halted from {{ at }} UTC: {{ reason }}. Open orders stay on the book; "
     "we will announce the resumption here."),
    ("close_only", "{{ scope }} is in close-only mode",
     "From {{ at }} UTC, {{ scope }} accepts only orders that reduce a position: {{ reason }}."),
    ("trading_resumed", "Trading in {{ scope }} has resumed", "Trading in {{ scope }} resumed at {{ at }} UTC."),
    ("maintenance_margin_raise", "Higher maintenance margin for {{ scope }}",
     "From {{ at }} UTC the base maintenance margin rate of {{ scope }} is {{ value }}: {{ reason }}. "
     "Please check your positions' margin."),
    ("system_upgrade", "Scheduled system upgrade", "We will upgrade our systems from {{ at }} UTC. {{ reason }}"),
    ("phishing_incident", "Beware of phishing", "We have seen phishing attempts: {{ reason }}. We never ask for your "
     "password or 2FA codes."),
    ("hack", "Security incident", "We are investigating a security incident: {{ reason }}. Funds are safe; "
     "withdrawals are paused."),
    ("access_outage", "Access disruption", "Some users cannot reach the exchange since {{ at }} UTC: {{ reason }}."),
    ("fork", "Network fork of {{ scope }}", "We will support the {{ scope }} fork as follows: {{ reason }}."),
    ("token_risk", "Risk warning for {{ scope }}", "{{ scope }} shows elevated risk: {{ reason }}."),
    ("abnormal_liquidations", "Abnormal liquidations in {{ scope }}",
     "Unusual liquidations occurred in {{ scope }} at {{ at }} UTC: {{ reason }}."),
    ("delays", "Processing delays", "Deposits or withdrawals are delayed: {{ reason }}."),
    ("early_delivery", "Early delivery of {{ scope }}", "{{ scope }} will be delivered early at {{ at }} UTC: "
     "{{ reason }}."),
    ("otc_risk", "OTC trading risk", "Beware of OTC offers in our name: {{ reason }}."),
    ("deposit_suspension", "Deposits of {{ scope }} suspended", "Deposits of {{ scope }} are suspended from "
     "{{ at }} UTC: {{ reason }}."),
    ("new_business", "New on the exchange", "{{ reason }}"),
]


def load(apps, schema_editor):
    Definition = apps.get_model("backoffice", "ParameterDefinition")
    Value = apps.get_model("backoffice", "ParameterValue")
    for key, section, kind, unit, default, low, high, scoped, description in PARAMETERS:
        definition, _ = Definition.objects.get_or_create(key=key, defaults=dict(
            section=section, kind=kind, unit=unit, description=description, scoped=scoped, min_value=low,
            max_value=high, choices=[]))
        Value.objects.get_or_create(definition=definition, scope="", effective_from=BEGINNING,
                                    defaults={"value": default, "created_at": BEGINNING})
    Template = apps.get_model("accounts", "NotificationTemplate")
    for code, channel, subject, body in NOTICES:
        Template.objects.get_or_create(code=code, channel=channel,
                                       defaults={"subject": subject, "body": body, "updated_at": BEGINNING})
    Announcement = apps.get_model("trading_risk", "AnnouncementTemplate")
    for code, title, body in ANNOUNCEMENTS:
        Announcement.objects.get_or_create(code=code, defaults={"title": title, "body": body})


def unload(apps, schema_editor):
    keys = [row[0] for row in PARAMETERS]
    apps.get_model("backoffice", "ParameterValue").objects.filter(definition_id__in=keys).delete()
    apps.get_model("backoffice", "ParameterDefinition").objects.filter(key__in=keys).delete()
    Template = apps.get_model("accounts", "NotificationTemplate")
    for code, channel, _, _ in NOTICES:
        Template.objects.filter(code=code, channel=channel).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0003_risk_parameter_defaults"),
        ("accounts", "0004_notification_templates"),
        ("trading_risk", "0004_partitioned_events"),
    ]

    operations = [migrations.RunPython(load, unload)]
