"""Trades and order events in tables partitioned by day on their time, each with a DEFAULT partition.

The model state is declared as usual; the tables themselves are created here, because Django cannot
declare partitioning. Neither table has a primary key in the database: idempotency lives in the *Key
tables (a unique constraint on a partitioned table would have to include the time).
"""

from datetime import UTC, datetime, timedelta

import django.db.models.deletion
from django.db import migrations, models

CREATE = """
CREATE TABLE trading_risk_trade (
    trade_id varchar(64) NOT NULL,
    symbol varchar(32) NOT NULL,
    price numeric(38, 18) NOT NULL,
    qty numeric(38, 18) NOT NULL,
    buy_account_id bigint NOT NULL,
    sell_account_id bigint NOT NULL,
    buy_customer_id bigint NOT NULL,
    sell_customer_id bigint NOT NULL,
    buy_order_id varchar(64) NOT NULL,
    sell_order_id varchar(64) NOT NULL,
    aggressor varchar(4) NOT NULL,
    executed_at timestamptz NOT NULL,
    value_btc numeric(38, 18),
    received_at timestamptz NOT NULL
) PARTITION BY RANGE (executed_at);
CREATE TABLE trading_risk_trade_default PARTITION OF trading_risk_trade DEFAULT;
CREATE INDEX trade_executed_brin ON trading_risk_trade USING brin (executed_at);

CREATE TABLE trading_risk_orderevent (
    event_id varchar(64) NOT NULL,
    order_id varchar(64) NOT NULL,
    account_id bigint NOT NULL,
    symbol varchar(32) NOT NULL,
    type varchar(9) NOT NULL,
    side varchar(4) NOT NULL,
    price numeric(38, 18) NOT NULL,
    qty numeric(38, 18) NOT NULL,
    at timestamptz NOT NULL,
    received_at timestamptz NOT NULL
) PARTITION BY RANGE (at);
CREATE TABLE trading_risk_orderevent_default PARTITION OF trading_risk_orderevent DEFAULT;
CREATE INDEX trade_key_time_brin ON trading_risk_tradekey USING brin (executed_at);
CREATE INDEX order_event_key_time_brin ON trading_risk_ordereventkey USING brin (at);
CREATE INDEX order_event_account_symbol_idx ON trading_risk_orderevent (account_id, symbol, at);
"""
DROP = "DROP TABLE trading_risk_trade; DROP TABLE trading_risk_orderevent;"


def create_partitions(apps, schema_editor):
    from trading_risk import partitions

    partitions.ensure_partitions(start=(datetime.now(UTC) - timedelta(days=1)).date(), days=9)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_notification_templates"),
        ("trading_risk", "0003_surveillance"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(CREATE, DROP)],
            state_operations=[
                migrations.CreateModel(
                    name='OrderEvent',
                    fields=[
                        ('pk', models.CompositePrimaryKey('at', 'event_id', blank=True, editable=False, primary_key=True, serialize=False)),
                        ('event_id', models.CharField(max_length=64)),
                        ('order_id', models.CharField(max_length=64)),
                        ('symbol', models.CharField(max_length=32)),
                        ('type', models.CharField(max_length=9)),
                        ('side', models.CharField(max_length=4)),
                        ('price', models.DecimalField(decimal_places=18, max_digits=38)),
                        ('qty', models.DecimalField(decimal_places=18, max_digits=38)),
                        ('at', models.DateTimeField()),
                        ('received_at', models.DateTimeField()),
                        ('account', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='accounts.account')),
                    ],
                ),
                migrations.CreateModel(
                    name='Trade',
                    fields=[
                        ('pk', models.CompositePrimaryKey('executed_at', 'trade_id', blank=True, editable=False, primary_key=True, serialize=False)),
                        ('trade_id', models.CharField(max_length=64)),
                        ('symbol', models.CharField(max_length=32)),
                        ('price', models.DecimalField(decimal_places=18, max_digits=38)),
                        ('qty', models.DecimalField(decimal_places=18, max_digits=38)),
                        ('buy_order_id', models.CharField(max_length=64)),
                        ('sell_order_id', models.CharField(max_length=64)),
                        ('aggressor', models.CharField(max_length=4)),
                        ('executed_at', models.DateTimeField()),
                        ('value_btc', models.DecimalField(decimal_places=18, max_digits=38, null=True)),
                        ('received_at', models.DateTimeField()),
                        ('buy_customer_id', models.BigIntegerField()),
                        ('sell_customer_id', models.BigIntegerField()),
                        ('buy_account', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='accounts.account')),
                        ('sell_account', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='accounts.account')),
                    ],
                ),
            ],
        ),
        migrations.RunPython(create_partitions, migrations.RunPython.noop),
    ]
