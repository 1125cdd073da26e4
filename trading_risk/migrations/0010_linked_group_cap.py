"""The most customers one shared identifier may link: above it, the identifier is a café, a carrier NAT or a
company switchboard rather than one owner."""

from datetime import UTC, datetime

from django.db import migrations

BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)
KEY = "surveillance.linked_group_max_shared"


def load(apps, schema_editor):
    Definition = apps.get_model("backoffice", "ParameterDefinition")
    Value = apps.get_model("backoffice", "ParameterValue")
    definition, _ = Definition.objects.get_or_create(
        key=KEY,
        defaults=dict(
            section="Trading risk",
            kind="INTEGER",
            unit="customers",
            description="A device, IP, phone number or e-mail address shared by more customers than this links "
            "nobody (a café, a carrier NAT, a company switchboard).",
            scoped=False,
            min_value=2,
            max_value=1000,
            choices=[],
        ),
    )
    Value.objects.get_or_create(
        definition=definition, scope="", effective_from=BEGINNING, defaults={"value": "20", "created_at": BEGINNING}
    )


def unload(apps, schema_editor):
    apps.get_model("backoffice", "ParameterValue").objects.filter(definition_id=KEY).delete()
    apps.get_model("backoffice", "ParameterDefinition").objects.filter(key=KEY).delete()


class Migration(migrations.Migration):
    dependencies = [("trading_risk", "0009_drop_key_pattern_indexes"), ("backoffice", "0001_initial")]

    operations = [migrations.RunPython(load, unload)]
