"""The asset/network registry and the withdrawal parameters added by this app, in force from the beginning."""

from datetime import UTC, datetime

from django.db import migrations

BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)

# (asset, network, decimals): what each chain can move.
ASSETS = [
    ("BTC", "BTC", 8), ("ETH", "ETH", 18), ("USDT", "ETH", 6), ("USDT", "TRX", 6), ("USDC", "ETH", 6),
    ("TRX", "TRX", 6), ("LTC", "LTC", 8), ("XRP", "XRP", 6), ("SOL", "SOL", 9),
]

# Per KYC level, in BTC equivalent (industry practice: tiered allowances grow with verification).
LEVELS = {1: ("0.5", "1", "2", "20"), 2: ("2", "5", "100", "1000"), 3: ("10", "20", "2000", "20000")}
KINDS = [
    ("auto_single", "A single withdrawal up to this is approved without a person (other rules still apply)."),
    ("auto_daily", "Withdrawals in 24 h up to this total are approved without a person."),
    ("daily", "Most the customer may withdraw in 24 h."),
    ("monthly", "Most the customer may withdraw in 30 days."),
]

# (key, kind, unit, default, min, max, description)
DEFAULTS = [
    ("withdrawal.dual_approval_above_btc", "DECIMAL", "BTC", "1000", 0, None,
     "Withdrawals worth more than this need two approvers (the large tier)."),
    ("withdrawal.fee_large_change_percent", "DECIMAL", "%", "50", 0, 10000,
     "A network fee change by at least this share of the current fee needs a second approver."),
    ("withdrawal.flow_timeliness_hours", "INTEGER", "hours", "2", 1, 168,
     "A hot-wallet outflow later than this after payout is late in the daily flow review."),
] + [
    (f"withdrawal.level{level}_{kind}_btc", "DECIMAL", "BTC", LEVELS[level][i], 0, None, f"KYC level {level}: {text}")
    for level in LEVELS for i, (kind, text) in enumerate(KINDS)
]


def load(apps, schema_editor):
    Definition = apps.get_model("backoffice", "ParameterDefinition")
    Value = apps.get_model("backoffice", "ParameterValue")
    for key, kind, unit, default, low, high, description in DEFAULTS:
        definition = Definition.objects.create(key=key, section="Withdrawals", kind=kind, unit=unit,
                                               description=description, scoped=False, min_value=low, max_value=high)
        Value.objects.create(definition=definition, scope="", value=default, effective_from=BEGINNING,
                             created_at=BEGINNING)
    AssetNetwork = apps.get_model("withdrawals", "AssetNetwork")
    AssetNetwork.objects.bulk_create([AssetNetwork(asset=a, network=n, decimals=d) for a, n, d in ASSETS])


def unload(apps, schema_editor):
    keys = [row[0] for row in DEFAULTS]
    apps.get_model("backoffice", "ParameterValue").objects.filter(definition_id__in=keys).delete()
    apps.get_model("backoffice", "ParameterDefinition").objects.filter(key__in=keys).delete()
    apps.get_model("withdrawals", "AssetNetwork").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("withdrawals", "0001_initial"), ("backoffice", "0003_risk_parameter_defaults")]

    operations = [migrations.RunPython(load, unload)]
