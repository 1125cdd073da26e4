"""The documented default of every risk parameter (domain.md), in force from the beginning of time.

Risk officers change them in the admin through maker-checker; a change adds a new version and never
edits these rows.
"""

from datetime import UTC, datetime

from django.db import migrations

BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)
ACTIONS = ["NO_ACTION", "WARN", "RESTRICT_OPEN", "RESTRICT_OPEN_CLOSE", "BAN_TRADING"]

# (key, section, kind, unit, default, min, max, scoped, description)
DEFAULTS = [
    # Staff access and maker-checker
    ("staff.login_max_failures", "Staff access", "INTEGER", "attempts", "5", 1, 100, False,
     "Failed staff logins in a row before the login is locked."),
    ("staff.login_lockout_minutes", "Staff access", "INTEGER", "minutes", "15", 1, 1440, False,
     "How long a staff login stays locked after too many failures."),
    ("maker_checker.request_expiry_hours", "Staff access", "INTEGER", "hours", "72", 1, 720, False,
     "A change request not approved within this time expires."),
    ("maker_checker.parameter_change_approvals", "Staff access", "INTEGER", "approvers", "1", 1, 2, False,
     "How many people other than the requester must approve a risk parameter change."),
    # 1. Accounts and access risk [002 §4.1]
    ("security.unusual_ip_window_days", "Accounts and access", "INTEGER", "days", "90", 1, 3650, False,
     "A login from an IP not seen for the customer within this window is unusual (notify by SMS and e-mail)."),
    ("security.failed_login_window_minutes", "Accounts and access", "INTEGER", "minutes", "15", 1, 1440, False,
     "Window in which failed logins are counted for takeover and credential-stuffing detection."),
    ("security.failed_logins_per_customer", "Accounts and access", "INTEGER", "attempts", "5", 1, 1000, False,
     "Failed logins against one customer within the window that lock the customer (industry practice)."),
    ("security.failed_login_customers_per_ip", "Accounts and access", "INTEGER", "customers", "10", 2, 10000, False,
     "Distinct customers one IP fails against within the window: credential stuffing (industry practice)."),
    ("security.registration_cap_per_ip_per_day", "Accounts and access", "INTEGER", "requests", "100", 1, 1000000, False,
     "Registration requests allowed per IP or hardware address per day."),
    ("security.registration_cap_per_cookie_per_day", "Accounts and access", "INTEGER", "requests", "20", 1, 1000000,
     False, "Registration requests allowed per cookie per day (a separate cap; industry practice)."),
    ("security.account_checks_per_second_per_cookie", "Accounts and access", "INTEGER", "checks", "1", 1, 1000, False,
     "Account checks per second allowed from one cookie before it is blocked."),
    ("security.cookie_block_seconds", "Accounts and access", "INTEGER", "seconds", "30", 1, 86400, False,
     "How long a cookie is blocked after too many account checks ('too frequent')."),
    ("security.unlock_face_min_kyc_level", "Accounts and access", "INTEGER", "level", "3", 1, 3, False,
     "From this KYC level up, unlocking an account also needs face verification."),
    # 2. Trading risk [002 §4.2]
    ("surveillance.wash_trade_threshold_btc", "Trading risk", "DECIMAL", "BTC", "1000", 0, None, True,
     "Volume between linked accounts of one beneficial owner within the window that raises a wash-trading alert."),
    ("surveillance.wash_trade_window_hours", "Trading risk", "INTEGER", "hours", "24", 1, 720, False,
     "Window over which wash-trading and self-trade volume is summed."),
    ("surveillance.wash_trade_action", "Trading risk", "CHOICE", "", "NO_ACTION", None, None, True,
     "What a wash-trading alert does to the accounts (the customer gets a risk call either way)."),
    ("surveillance.self_trade_threshold_btc", "Trading risk", "DECIMAL", "BTC", "1000", 0, None, True,
     "Volume with the same account on both sides within the window that raises a self-trade alert."),
    ("surveillance.self_trade_action", "Trading risk", "CHOICE", "", "NO_ACTION", None, None, True,
     "What a self-trade alert does to the account."),
    ("surveillance.excessive_trading_warn_btc", "Trading risk", "DECIMAL", "BTC", "1000", 0, None, False,
     "Rolling 24 h volume of one account that raises an excessive-trading warning."),
    ("surveillance.excessive_trading_warn_action", "Trading risk", "CHOICE", "", "WARN", None, None, False,
     "What crossing the excessive-trading warning line does."),
    ("surveillance.excessive_trading_ban_btc", "Trading risk", "DECIMAL", "BTC", "5000", 0, None, False,
     "Rolling 24 h volume of one account at which trading is banned."),
    ("surveillance.excessive_trading_ban_action", "Trading risk", "CHOICE", "", "BAN_TRADING", None, None, False,
     "What crossing the excessive-trading ban line does."),
    ("surveillance.order_cancel_events_per_24h", "Trading risk", "INTEGER", "events", "500", 1, 10000000, True,
     "Order and cancel events per account per symbol in 24 h that count as one frequent order/cancel hit."),
    ("surveillance.order_cancel_ladder_window_hours", "Trading risk", "INTEGER", "hours", "24", 1, 720, False,
     "A further hit within this time of the previous warning climbs the escalation ladder."),
    ("surveillance.order_cancel_restriction_minutes", "Trading risk", "INTEGER", "minutes", "30", 1, 10080, False,
     "How long the 2nd and 3rd steps of the order/cancel ladder restrict the account."),
    ("surveillance.anomaly_min_deviations", "Trading risk", "DECIMAL", "σ", "4", 1, 100, False,
     "Standard deviations above an account's own baseline that flag a behaviour anomaly (industry practice)."),
    ("surveillance.anomaly_action", "Trading risk", "CHOICE", "", "WARN", None, None, False,
     "What a behaviour-anomaly alert does to the account."),
    ("price_band.new_listing_minutes", "Trading risk", "INTEGER", "minutes", "15", 0, 10080, True,
     "How long after listing the new-listing price band applies."),
    ("price_band.new_listing_percent", "Trading risk", "DECIMAL", "%", "5", 0, 100, True,
     "Orders priced further than this from the spot index are refused during the new-listing band."),
    # 3. Position risk [002 §4.3]
    ("position.limit_btc", "Position risk", "DECIMAL", "BTC", "5000", 0, None, True,
     "Position limit per customer, aggregated across all of its accounts."),
    ("position.delivery_month_limit_factor", "Position risk", "DECIMAL", "×", "0.5", 0, 1, True,
     "The limit in the delivery month as a share of the normal limit (stricter; industry practice)."),
    ("position.broker_limit_review_days", "Position risk", "INTEGER", "days", "14", 1, 365, False,
     "Broker-member limits are reviewed against net capital this often."),
    ("large_trader.threshold_btc", "Position risk", "DECIMAL", "BTC", "5000", 0, None, False,
     "Aggregated position (or total assets) of one beneficial owner that puts it in the large-trader report."),
    ("margin.base_maintenance_rate", "Position risk", "DECIMAL", "rate", "0.005", 0, 1, True,
     "Base maintenance margin rate of a new risk-limit table (0.5 %)."),
    ("margin.base_initial_rate", "Position risk", "DECIMAL", "rate", "0.01", 0, 1, True,
     "Base initial margin rate of a new risk-limit table (1.0 %)."),
    ("margin.step_rate_increment", "Position risk", "DECIMAL", "rate", "0.005", 0, 1, True,
     "Maintenance and initial rates rise by this much per risk-limit step (0.5 %)."),
    # 4. Funds and withdrawals [002 §4.4]
    ("withdrawal.password_change_lock_hours", "Withdrawals", "INTEGER", "hours", "24", 0, 720, False,
     "Withdrawals are rejected within this time of a password set or change."),
    ("withdrawal.large_threshold_btc", "Withdrawals", "DECIMAL", "BTC", "1000", 0, None, False,
     "Withdrawals worth more than this are held and need manual confirmation."),
    ("withdrawal.large_hold_hours", "Withdrawals", "INTEGER", "hours", "24", 0, 720, False,
     "How long a large withdrawal is held before it goes to review."),
    ("withdrawal.dormant_after_days", "Withdrawals", "INTEGER", "days", "180", 1, 3650, False,
     "An account with no activity for this long is dormant (industry practice)."),
    ("withdrawal.dormant_large_btc", "Withdrawals", "DECIMAL", "BTC", "1", 0, None, False,
     "A dormant account moving more than this goes to manual review (industry practice)."),
    ("withdrawal.travel_rule_threshold_usd", "Withdrawals", "DECIMAL", "USD", "1000", 0, None, False,
     "Transfers at or above this value need originator and beneficiary data (FATF; EU: 0; US: 3000)."),
    # 6. Financing desk [001, 002 §5.4.4]
    ("financing.forced_reduction_margin_level", "Financing", "DECIMAL", "ratio", "1.10", 1, 10, False,
     "Total assets / liabilities at or below which a margin loan is forcibly reduced (110 %)."),
    ("financing.min_leverage", "Financing", "DECIMAL", "×", "0.5", 0, 100, False,
     "Lowest margin-lending leverage offered by user level."),
    ("financing.max_leverage", "Financing", "DECIMAL", "×", "3", 0, 100, False,
     "Highest margin-lending leverage offered by user level."),
    # 8. Risk events and listing assessment [002 §2, §5.1.1]
    ("risk_event.general_report_working_days", "Risk events", "INTEGER", "working days", "1", 0, 30, False,
     "A general risk event is reported within this many working days."),
    ("listing.market_cap_rank_high_above", "Listing assessment", "INTEGER", "rank", "200", 1, 100000, False,
     "A market-cap rank above this is a high-risk indicator."),
    ("listing.market_cap_rank_low_below", "Listing assessment", "INTEGER", "rank", "50", 1, 100000, False,
     "A market-cap rank below this is a low-risk indicator."),
    ("listing.circulating_share_high_below_percent", "Listing assessment", "DECIMAL", "%", "20", 0, 100, False,
     "A circulating share below this is a high-risk indicator."),
    ("listing.circulating_share_low_above_percent", "Listing assessment", "DECIMAL", "%", "60", 0, 100, False,
     "A circulating share above this is a low-risk indicator."),
    ("listing.exchanges_high_at_most", "Listing assessment", "INTEGER", "exchanges", "2", 0, 1000, False,
     "Listed on at most this many exchanges is a high-risk indicator."),
    ("listing.exchanges_low_above", "Listing assessment", "INTEGER", "exchanges", "6", 0, 1000, False,
     "Listed on more than this many exchanges is a low-risk indicator."),
    ("listing.disclosures_high_below", "Listing assessment", "INTEGER", "per month", "1", 0, 1000, False,
     "Fewer development disclosures per month than this is a high-risk indicator."),
    ("listing.disclosures_low_above", "Listing assessment", "INTEGER", "per month", "5", 0, 1000, False,
     "More development disclosures per month than this is a low-risk indicator."),
    ("listing.community_high_below", "Listing assessment", "INTEGER", "members", "100", 0, 100000000, False,
     "A community smaller than this is a high-risk indicator."),
    ("listing.community_low_above", "Listing assessment", "INTEGER", "members", "1000", 0, 100000000, False,
     "A community larger than this is a low-risk indicator."),
    ("listing.indicators_for_level", "Listing assessment", "INTEGER", "indicators", "3", 1, 5, False,
     "Indicators at one level that put a token at that level (or higher)."),
]


def load(apps, schema_editor):
    Definition = apps.get_model("backoffice", "ParameterDefinition")
    Value = apps.get_model("backoffice", "ParameterValue")
    for key, section, kind, unit, default, low, high, scoped, description in DEFAULTS:
        definition = Definition.objects.create(
            key=key, section=section, kind=kind, unit=unit, description=description, scoped=scoped,
            min_value=low, max_value=high, choices=ACTIONS if kind == "CHOICE" else [],
        )
        Value.objects.create(definition=definition, scope="", value=default, effective_from=BEGINNING,
                             created_at=BEGINNING)


def unload(apps, schema_editor):
    keys = [row[0] for row in DEFAULTS]
    apps.get_model("backoffice", "ParameterValue").objects.filter(definition_id__in=keys).delete()
    apps.get_model("backoffice", "ParameterDefinition").objects.filter(key__in=keys).delete()


class Migration(migrations.Migration):
    dependencies = [("backoffice", "0002_operations_log_append_only")]

    operations = [migrations.RunPython(load, unload)]
