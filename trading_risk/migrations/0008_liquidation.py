"""Liquidations, ADL events and the insurance fund ledger; the ledger is append-only in the database."""

from datetime import UTC, datetime

import django.db.models.deletion
from django.db import migrations, models

BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)
_LEDGER_TABLES = (
    "trading_risk_liquidation",
    "trading_risk_insurancefundentry",
    "trading_risk_adlevent",
    "trading_risk_adlallocation",
)
APPEND_ONLY = """
CREATE FUNCTION trading_risk_refuse_ledger_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the liquidation ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
""" + "".join(
    f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
    "FOR EACH ROW EXECUTE FUNCTION trading_risk_refuse_ledger_change();\n"
    for table in _LEDGER_TABLES
)
DROP_APPEND_ONLY = "".join(f"DROP TRIGGER {table}_append_only ON {table};\n" for table in _LEDGER_TABLES) + (
    "DROP FUNCTION trading_risk_refuse_ledger_change();"
)

# (key, section, kind, unit, default, min, max, scoped, description)
PARAMETERS = [
    ("insurance_fund.floor", "Liquidation", "DECIMAL", "fund asset", "0", 0, None, True,
     "The insurance fund is never drawn below this balance (per settlement asset); a shortfall beyond it is "
     "auto-deleveraged at the bankruptcy price."),
    ("insurance_fund.manual_change_approvals", "Liquidation", "INTEGER", "approvers", "1", 1, 5, False,
     "How many people other than the requester must approve a manual top-up or withdrawal of the fund."),
    ("margin_dashboard.nearest_accounts", "Liquidation", "INTEGER", "accounts", "20", 5, 500, False,
     "How many accounts the margin dashboard lists as nearest to liquidation."),
]


def load_parameters(apps, schema_editor):
    Definition = apps.get_model("backoffice", "ParameterDefinition")
    Value = apps.get_model("backoffice", "ParameterValue")
    for key, section, kind, unit, default, low, high, scoped, description in PARAMETERS:
        definition, _ = Definition.objects.get_or_create(key=key, defaults=dict(
            section=section, kind=kind, unit=unit, description=description, scoped=scoped, min_value=low,
            max_value=high, choices=[]))
        Value.objects.get_or_create(definition=definition, scope="", effective_from=BEGINNING,
                                    defaults={"value": default, "created_at": BEGINNING})


def unload_parameters(apps, schema_editor):
    keys = [row[0] for row in PARAMETERS]
    apps.get_model("backoffice", "ParameterValue").objects.filter(definition_id__in=keys).delete()
    apps.get_model("backoffice", "ParameterDefinition").objects.filter(key__in=keys).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_trading_desk_role"),
        ("backoffice", "0004_operations_log_no_truncate"),
        ("trading_risk", "0007_position_limits"),
    ]

    operations = [
        migrations.CreateModel(
            name='AdlEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('side', models.CharField(choices=[('LONG', 'Long'), ('SHORT', 'Short')], help_text='the side deleveraged: opposite the liquidated position', max_length=5)),
                ('qty', models.DecimalField(decimal_places=18, max_digits=38)),
                ('price', models.DecimalField(decimal_places=18, help_text="the liquidated order's bankruptcy price", max_digits=38)),
                ('mark_price', models.DecimalField(blank=True, decimal_places=18, help_text='the mark the ranking used', max_digits=38, null=True)),
                ('fund_balance_at_trigger', models.DecimalField(decimal_places=18, max_digits=38)),
                ('uncovered', models.DecimalField(decimal_places=18, help_text='the shortfall the fund could not pay', max_digits=38)),
                ('unallocated_qty', models.DecimalField(decimal_places=18, default=0, help_text='quantity no counterparty was left to take (the queue ran out)', max_digits=38)),
                ('ranking', models.JSONField(help_text="the opposite side's ranking used: account, qty, score, quintile")),
                ('at', models.DateTimeField()),
                ('instrument', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='adl_events', to='trading_risk.instrument')),
            ],
        ),
        migrations.CreateModel(
            name='InsuranceFund',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('asset', models.CharField(max_length=16, unique=True)),
                ('balance', models.DecimalField(decimal_places=18, default=0, max_digits=38)),
                ('opened_at', models.DateTimeField()),
                ('updated_at', models.DateTimeField()),
            ],
            options={
                'permissions': [('approve_insurance_fund', 'Can approve manual insurance fund top-ups and withdrawals')],
                'constraints': [models.CheckConstraint(condition=models.Q(('balance__gte', 0)), name='insurance_fund_not_negative')],
            },
        ),
        migrations.CreateModel(
            name='Liquidation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('liquidation_id', models.CharField(max_length=64, unique=True)),
                ('side', models.CharField(choices=[('LONG', 'Long'), ('SHORT', 'Short')], help_text='the side of the liquidated position', max_length=5)),
                ('qty', models.DecimalField(decimal_places=18, max_digits=38)),
                ('bankruptcy_price', models.DecimalField(decimal_places=18, max_digits=38)),
                ('fill_price', models.DecimalField(decimal_places=18, max_digits=38)),
                ('at', models.DateTimeField()),
                ('received_at', models.DateTimeField()),
                ('settlement', models.CharField(help_text='LINEAR or INVERSE: how the fund change was computed', max_length=8)),
                ('contract_size', models.DecimalField(decimal_places=18, default=1, max_digits=38)),
                ('fund_change', models.DecimalField(decimal_places=18, help_text='surplus (+) or shortfall (−) of the fill against the bankruptcy price', max_digits=38)),
                ('fund_paid', models.DecimalField(decimal_places=18, help_text='what the fund actually took in (+) or paid (−)', max_digits=38)),
                ('adl_qty', models.DecimalField(decimal_places=18, default=0, help_text='quantity deleveraged because the fund ran short', max_digits=38)),
                ('result', models.JSONField(help_text='the answer given to the engine, repeated for a re-sent item')),
                ('account', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='liquidations', to='accounts.account')),
                ('fund', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='liquidations', to='trading_risk.insurancefund')),
                ('instrument', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='liquidations', to='trading_risk.instrument')),
            ],
        ),
        migrations.CreateModel(
            name='InsuranceFundEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('LIQUIDATION_SURPLUS', 'Liquidation surplus'), ('LIQUIDATION_SHORTFALL', 'Liquidation shortfall'), ('ADL', 'Shortfall drawn to the floor; the rest deleveraged'), ('TOP_UP', 'Manual top-up'), ('WITHDRAWAL', 'Manual withdrawal')], max_length=21)),
                ('amount', models.DecimalField(decimal_places=18, max_digits=38)),
                ('balance_after', models.DecimalField(decimal_places=18, max_digits=38)),
                ('at', models.DateTimeField()),
                ('created_at', models.DateTimeField()),
                ('note', models.CharField(blank=True, max_length=300)),
                ('adl_event', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='trading_risk.adlevent')),
                ('change_request', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='backoffice.changerequest')),
                ('fund', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='entries', to='trading_risk.insurancefund')),
                ('liquidation', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='fund_entries', to='trading_risk.liquidation')),
            ],
            options={
                'verbose_name_plural': 'insurance fund entries',
            },
        ),
        migrations.AddField(
            model_name='adlevent',
            name='liquidation',
            field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='adl_event', to='trading_risk.liquidation'),
        ),
        migrations.CreateModel(
            name='AdlAllocation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('rank', models.PositiveIntegerField()),
                ('score', models.DecimalField(decimal_places=18, max_digits=38)),
                ('position_qty', models.DecimalField(decimal_places=18, max_digits=38)),
                ('qty', models.DecimalField(decimal_places=18, max_digits=38)),
                ('entry_price', models.DecimalField(decimal_places=18, max_digits=38)),
                ('realised_pnl', models.DecimalField(decimal_places=18, help_text='closing qty at the ADL price against entry', max_digits=38)),
                ('account', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='adl_allocations', to='accounts.account')),
                ('position', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='trading_risk.position')),
                ('event', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='allocations', to='trading_risk.adlevent')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('event', 'rank'), name='adl_allocation_rank_unique'), models.CheckConstraint(condition=models.Q(('qty__gt', 0), ('qty__lte', models.F('position_qty'))), name='adl_allocation_within_position')],
            },
        ),
        migrations.AddIndex(
            model_name='liquidation',
            index=models.Index(fields=['instrument', '-at'], name='liquidation_symbol_idx'),
        ),
        migrations.AddIndex(
            model_name='liquidation',
            index=models.Index(fields=['account', '-at'], name='liquidation_account_idx'),
        ),
        migrations.AddConstraint(
            model_name='liquidation',
            constraint=models.CheckConstraint(condition=models.Q(('adl_qty__gte', 0), ('bankruptcy_price__gt', 0), ('fill_price__gt', 0), ('qty__gt', 0)), name='liquidation_positive'),
        ),
        migrations.AddConstraint(
            model_name='liquidation',
            constraint=models.CheckConstraint(condition=models.Q(('adl_qty__lte', models.F('qty'))), name='liquidation_adl_within_qty'),
        ),
        migrations.AddIndex(
            model_name='insurancefundentry',
            index=models.Index(fields=['fund', 'id'], name='insurance_fund_entry_fund_idx'),
        ),
        migrations.AddConstraint(
            model_name='insurancefundentry',
            constraint=models.CheckConstraint(condition=models.Q(('balance_after__gte', 0)), name='insurance_fund_entry_not_negative'),
        ),
        migrations.AddConstraint(
            model_name='insurancefundentry',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('amount__gt', 0), ('kind__in', ['LIQUIDATION_SURPLUS', 'TOP_UP'])), models.Q(('amount__lt', 0), ('kind__in', ['LIQUIDATION_SHORTFALL', 'WITHDRAWAL'])), models.Q(('amount__lte', 0), ('kind', 'ADL')), _connector='OR'), name='insurance_fund_entry_sign'),
        ),
        migrations.AddConstraint(
            model_name='insurancefundentry',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('change_request__isnull', False), ('kind__in', ['TOP_UP', 'WITHDRAWAL'])), models.Q(models.Q(('kind__in', ['TOP_UP', 'WITHDRAWAL']), _negated=True), ('liquidation__isnull', False)), _connector='OR'), name='insurance_fund_entry_source'),
        ),
        migrations.AddConstraint(
            model_name='insurancefundentry',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('kind', 'ADL'), _negated=True), ('adl_event__isnull', False), _connector='OR'), name='insurance_fund_entry_adl_event'),
        ),
        migrations.AddConstraint(
            model_name='adlevent',
            constraint=models.CheckConstraint(condition=models.Q(('price__gt', 0), ('qty__gt', 0)), name='adl_event_positive'),
        ),
        migrations.RunSQL(APPEND_ONLY, DROP_APPEND_ONLY),
        migrations.RunPython(load_parameters, unload_parameters),
    ]
