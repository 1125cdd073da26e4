"""The idempotency keys are looked up by equality only, and their "C" collation lets the primary key serve any
prefix search too, so the varchar_pattern_ops index Django adds beside a character primary key is dead weight:
about a quarter of the cost of inserting a batch's keys."""

from django.db import migrations

_INDEXES = [
    ("trading_risk_tradekey", "trade_id", "trading_risk_tradekey_trade_id_589ca990_like"),
    ("trading_risk_ordereventkey", "event_id", "trading_risk_ordereventkey_event_id_1bd573e5_like"),
]


class Migration(migrations.Migration):
    dependencies = [("trading_risk", "0008_liquidation")]

    operations = [
        migrations.RunSQL(
            sql=f"DROP INDEX IF EXISTS {index}",
            reverse_sql=f"CREATE INDEX {index} ON {table} ({column} varchar_pattern_ops)",
        )
        for table, column, index in _INDEXES
    ]
