"""Position limits, hedging exemptions and broker-member limits, with the risk parameter the broker limit
is checked against (the other position-risk defaults are in backoffice 0003)."""

from datetime import UTC, datetime

import django.db.models.deletion
from django.db import migrations, models

BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)
BTC = {"decimal_places": 18, "max_digits": 38}
CUSTOMER_TYPES = [("INDIVIDUAL", "Individual"), ("CORPORATE", "Corporate"), ("MARKET_MAKER", "Market maker")]

# (key, section, kind, unit, default, min, max, scoped, description)
PARAMETERS = [
    (
        "position.broker_limit_capital_multiple",
        "Position risk",
        "DECIMAL",
        "×",
        "1",
        0,
        100,
        False,
        "A broker member's position limit may be at most its net capital times this (industry practice).",
    ),
]


# What a pre-trade check needs to know about position limits, as one function: PL/pgSQL keeps the plan of its
# query per connection, which saves re-planning six joins on every check (trading_risk/pretrade.py).
LIMIT_STATE = """
CREATE OR REPLACE FUNCTION trading_risk_limit_state(
    p_customer bigint, p_account bigint, p_product text, p_month date, p_month_end date, p_now timestamptz,
    p_priced boolean
) RETURNS TABLE (r_kind text, r_a text, r_b text) LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT 'X'::text, ''::text, ''::text WHERE EXISTS (
        SELECT 1 FROM trading_risk_hedgingexemption e WHERE e.account_id = p_account AND e.revoked_at IS NULL
          AND e.starts_at <= p_now AND e.expires_at > p_now AND e.product IN ('', p_product))
    UNION ALL
    SELECT 'P', COALESCE(SUM(CASE WHEN p.side = 'LONG' THEN p.qty ELSE -p.qty END), 0)::text,
           COALESCE(SUM(CASE WHEN p.side = 'LONG' THEN p.qty ELSE -p.qty END)
                    FILTER (WHERE i.expires_at >= p_month AND i.expires_at < p_month_end), 0)::text
    FROM trading_risk_position p JOIN accounts_account acc ON acc.id = p.account_id
    JOIN trading_risk_instrument i ON i.id = p.instrument_id
    WHERE acc.customer_id = p_customer AND i.base = p_product AND i.kind <> 'SPOT'
      AND NOT EXISTS (SELECT 1 FROM trading_risk_hedgingexemption e WHERE e.account_id = p.account_id
          AND e.revoked_at IS NULL AND e.starts_at <= p_now AND e.expires_at > p_now AND e.product IN ('', p_product))
    UNION ALL
    SELECT 'L', l.limit_btc::text || '|' || COALESCE(l.delivery_month_limit_btc::text, ''),
           (l.contract_month IS NOT NULL)::text || '|' || l.customer_type::text
    FROM trading_risk_positionlimit l
    WHERE l.product = p_product AND (l.contract_month IS NULL OR l.contract_month = p_month)
      AND l.effective_from <= p_now AND (l.ended_at IS NULL OR l.ended_at > p_now)
    UNION ALL
    SELECT 'C', c.type::text, COALESCE(m.limit_btc::text, '') FROM accounts_customer c
    LEFT JOIN trading_risk_brokermember m ON m.customer_id = c.id WHERE c.id = p_customer
    UNION ALL
    (SELECT 'U', ap.usd::text, 'P' FROM trading_risk_assetprice ap WHERE p_priced AND ap.asset = p_product
       AND ap.at <= p_now ORDER BY ap.at DESC LIMIT 1)
    UNION ALL
    (SELECT 'U', ap.usd::text, 'B' FROM trading_risk_assetprice ap WHERE p_priced AND ap.asset = 'BTC'
       AND ap.at <= p_now ORDER BY ap.at DESC LIMIT 1);
END $$;
"""
DROP_LIMIT_STATE = (
    "DROP FUNCTION IF EXISTS trading_risk_limit_state(bigint, bigint, text, date, date, timestamptz, boolean)"
)


def load(apps, schema_editor):
    Definition = apps.get_model("backoffice", "ParameterDefinition")
    Value = apps.get_model("backoffice", "ParameterValue")
    for key, section, kind, unit, default, low, high, scoped, description in PARAMETERS:
        definition, _ = Definition.objects.get_or_create(
            key=key,
            defaults=dict(
                section=section,
                kind=kind,
                unit=unit,
                description=description,
                scoped=scoped,
                min_value=low,
                max_value=high,
                choices=[],
            ),
        )
        Value.objects.get_or_create(
            definition=definition,
            scope="",
            effective_from=BEGINNING,
            defaults={"value": default, "created_at": BEGINNING},
        )


def unload(apps, schema_editor):
    keys = [row[0] for row in PARAMETERS]
    apps.get_model("backoffice", "ParameterValue").objects.filter(definition_id__in=keys).delete()
    apps.get_model("backoffice", "ParameterDefinition").objects.filter(key__in=keys).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_trading_desk_role"),
        ("backoffice", "0004_operations_log_no_truncate"),
        ("trading_risk", "0006_margin"),
    ]

    operations = [
        migrations.CreateModel(
            name="PositionLimit",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("product", models.CharField(help_text="base asset of the contracts, e.g. BTC or ETH", max_length=16)),
                (
                    "contract_month",
                    models.DateField(
                        blank=True,
                        help_text="first day of the expiry month of dated futures; empty: all contracts",
                        null=True,
                    ),
                ),
                (
                    "customer_type",
                    models.CharField(blank=True, choices=CUSTOMER_TYPES, help_text="empty: all", max_length=12),
                ),
                ("limit_btc", models.DecimalField(**BTC)),
                (
                    "delivery_month_limit_btc",
                    models.DecimalField(
                        blank=True,
                        help_text="stricter limit in the delivery month; empty: the limit × factor",
                        null=True,
                        **BTC,
                    ),
                ),
                ("effective_from", models.DateTimeField()),
                ("ended_at", models.DateTimeField(blank=True, help_text="replaced or removed then", null=True)),
                ("created_at", models.DateTimeField()),
                (
                    "change_request",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="backoffice.changerequest"
                    ),
                ),
            ],
            options={
                "permissions": [
                    ("approve_position_limit", "Can approve position limits, hedging exemptions and member limits")
                ],
                "constraints": [
                    models.CheckConstraint(condition=models.Q(("limit_btc__gt", 0)), name="position_limit_positive"),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("delivery_month_limit_btc__isnull", True),
                            models.Q(
                                ("delivery_month_limit_btc__gt", 0),
                                ("delivery_month_limit_btc__lte", models.F("limit_btc")),
                            ),
                            _connector="OR",
                        ),
                        name="position_limit_delivery_stricter",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("ended_at__isnull", True)),
                        fields=("product", "contract_month", "customer_type"),
                        name="position_limit_one_in_force",
                        nulls_distinct=False,
                    ),
                ],
                "indexes": [models.Index(fields=["product", "contract_month"], name="position_limit_lookup_idx")],
            },
        ),
        migrations.CreateModel(
            name="HedgingExemption",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("product", models.CharField(blank=True, help_text="empty: every product", max_length=16)),
                ("reason", models.TextField()),
                ("starts_at", models.DateTimeField()),
                ("expires_at", models.DateTimeField()),
                ("requested_by", models.CharField(max_length=150)),
                ("approved_by", models.CharField(max_length=150)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                ("revoked_by", models.CharField(blank=True, max_length=150)),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="hedging_exemptions",
                        to="accounts.account",
                    ),
                ),
                (
                    "change_request",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="backoffice.changerequest"
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("expires_at__gt", models.F("starts_at"))),
                        name="hedging_exemption_expires_later",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("requested_by", models.F("approved_by")), _negated=True),
                        name="hedging_exemption_four_eyes",
                    ),
                ],
                "indexes": [
                    models.Index(
                        condition=models.Q(("revoked_at__isnull", True)),
                        fields=["account", "expires_at"],
                        name="hedging_in_force_idx",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="BrokerMember",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("member_number", models.CharField(max_length=32, unique=True)),
                ("net_capital_btc", models.DecimalField(**BTC)),
                ("limit_btc", models.DecimalField(**BTC)),
                ("last_reviewed_at", models.DateTimeField(blank=True, null=True)),
                ("next_review_date", models.DateField()),
                ("created_at", models.DateTimeField()),
                ("updated_at", models.DateTimeField()),
                (
                    "change_request",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="backoffice.changerequest"
                    ),
                ),
                (
                    "customer",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="broker_member",
                        to="accounts.customer",
                    ),
                ),
            ],
            options={
                "permissions": [("review_broker_limit", "Can record broker-member limit reviews")],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("limit_btc__gt", 0), ("net_capital_btc__gte", 0)),
                        name="broker_member_amounts",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="BrokerLimitReview",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("reviewed_at", models.DateTimeField()),
                ("reviewed_by", models.CharField(max_length=150)),
                ("net_capital_btc", models.DecimalField(**BTC)),
                ("limit_btc", models.DecimalField(**BTC)),
                (
                    "within_capital",
                    models.BooleanField(help_text="the limit was within net capital × the allowed multiple"),
                ),
                ("notes", models.TextField(blank=True)),
                ("next_review_date", models.DateField()),
                (
                    "member",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="reviews",
                        to="trading_risk.brokermember",
                    ),
                ),
            ],
            options={"ordering": ["-reviewed_at"]},
        ),
        migrations.RunPython(load, unload),
        migrations.RunSQL(LIMIT_STATE, DROP_LIMIT_STATE),
    ]
