"""Periodic surveillance detectors: set-based SQL over a time window of the partitioned event tables.

Each detector aggregates in the database (one scan of the window's partitions), hands the few rows over
the line to the rule's pure function, and acts on each finding in its own transaction. Alerts carry a
dedup key per (rule, account, symbol, day), so a rerun — after a crash, or the next hourly run over an
overlapping window — opens nothing twice. A DetectorRun row per (detector, window end) records finished
runs; an unfinished one is simply run again. Volumes are compared as NUMERIC, never as floats.
"""

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, F, Func, Value
from django.db.models.functions import Lower

from accounts.models import Account, Customer, KnownDevice, KnownIp
from backoffice import audit, parameters
from backoffice.models import ParameterValue
from trading_risk import rules, surveillance
from trading_risk.models import AccountDailyActivity, DetectorRun, LinkedGroup

logger = logging.getLogger(__name__)
SYSTEM = audit.Actor.system("surveillance")
DAY = timedelta(days=1)


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _lowest(key: str, *, at: datetime) -> Decimal:
    """The lowest value of a per-symbol parameter over all its scopes: the SQL pre-filter's line."""
    scopes = set(ParameterValue.objects.filter(definition_id=key).values_list("scope", flat=True))
    return min(parameters.param(key, scope=scope, at=at) for scope in scopes | {""})


def _act(findings: list[tuple[rules.Finding, int, str, str, dict]], *, rule: str, now: datetime) -> int:
    """Open alerts for (finding, account id, symbol, dedup key, details), skipping snoozed accounts."""
    snoozed = surveillance.snoozed_accounts(rule=rule, now=now)
    accounts = Account.objects.select_related("customer").in_bulk({f[1] for f in findings})
    created = 0
    for finding, account_id, symbol, dedup_key, details in findings:
        if account_id in snoozed:
            continue
        _, new = surveillance.act_on_finding(
            finding=finding,
            account=accounts[account_id],
            symbol=symbol,
            dedup_key=dedup_key,
            details=details,
            actor=SYSTEM,
            now=now,
        )
        created += new
    return created


# ---- self-trade ----------------------------------------------------------------------------------------
_SELF_TRADE = """
SELECT buy_account_id, symbol, sum(value_btc), count(*), min(executed_at), max(executed_at)
FROM trading_risk_trade
WHERE executed_at >= %s AND executed_at < %s AND buy_account_id = sell_account_id
GROUP BY buy_account_id, symbol
HAVING sum(value_btc) >= %s
"""


def self_trade(*, window_end: datetime, now: datetime) -> int:
    """Accounts on both sides of their own trades, per symbol, over the wash-trade window."""
    start = window_end - timedelta(hours=parameters.param("surveillance.wash_trade_window_hours", at=window_end))
    rows = _fetch(_SELF_TRADE, [start, window_end, _lowest("surveillance.self_trade_threshold_btc", at=window_end)])
    findings = []
    for account_id, symbol, volume, trades, first, last in rows:
        finding = rules.self_trade(
            volume_btc=volume,
            threshold_btc=parameters.param("surveillance.self_trade_threshold_btc", scope=symbol, at=window_end),
            action=parameters.param("surveillance.self_trade_action", scope=symbol, at=window_end),
        )
        if finding:
            details = {
                "volume_btc": volume,
                "trades": trades,
                "window_start": start,
                "window_end": window_end,
                "first_trade_at": first,
                "last_trade_at": last,
                "accounts": [account_id],
            }
            findings.append(
                (finding, account_id, symbol, f"self_trade:{account_id}:{symbol}:{window_end.date()}", details)
            )
    return _act(findings, rule="self_trade", now=now)


# ---- wash trading --------------------------------------------------------------------------------------
_WASH_TRADE = """
SELECT coalesce(cb.cluster, t.buy_customer_id) AS cluster, t.symbol, t.buy_account_id, t.sell_account_id,
       sum(t.value_btc), count(*), min(t.executed_at), max(t.executed_at)
FROM trading_risk_trade t
LEFT JOIN surveillance_cluster cb ON cb.customer_id = t.buy_customer_id
LEFT JOIN surveillance_cluster cs ON cs.customer_id = t.sell_customer_id
WHERE t.executed_at >= %s AND t.executed_at < %s AND t.buy_account_id <> t.sell_account_id
  AND coalesce(cb.cluster, t.buy_customer_id) = coalesce(cs.cluster, t.sell_customer_id)
GROUP BY 1, 2, 3, 4
"""


def wash_trading(*, window_end: datetime, now: datetime) -> int:
    """Trades between different accounts of one beneficial owner, or of customers in one linked group."""
    start = window_end - timedelta(hours=parameters.param("surveillance.wash_trade_window_hours", at=window_end))
    with transaction.atomic():
        _load_clusters()
        rows = _fetch(_WASH_TRADE, [start, window_end])
    groups: dict[tuple[int, str], list] = defaultdict(list)
    for cluster, symbol, buyer, seller, volume, trades, first, last in rows:
        groups[(cluster, symbol)].append((buyer, seller, volume or Decimal(0), trades, first, last))
    findings = []
    for (cluster, symbol), pairs in groups.items():
        finding = rules.wash_trading(
            volume_btc=sum(p[2] for p in pairs),
            threshold_btc=parameters.param("surveillance.wash_trade_threshold_btc", scope=symbol, at=window_end),
            action=parameters.param("surveillance.wash_trade_action", scope=symbol, at=window_end),
        )
        if finding is None:
            continue
        accounts = sorted({p[0] for p in pairs} | {p[1] for p in pairs})
        details = {
            "volume_btc": sum(p[2] for p in pairs),
            "trades": sum(p[3] for p in pairs),
            "accounts": accounts,
            "window_start": start,
            "window_end": window_end,
            "first_trade_at": min(p[4] for p in pairs),
            "last_trade_at": max(p[5] for p in pairs),
            "owner_cluster": cluster,
        }
        findings += [(finding, a, symbol, f"wash_trading:{a}:{symbol}:{window_end.date()}", details) for a in accounts]
    return _act(findings, rule="wash_trading", now=now)


def _load_clusters() -> None:
    """A temporary table customer → cluster for customers in linked groups (groups sharing a customer merge)."""
    parent: dict[int, int] = {}

    def root(c: int) -> int:
        while parent.setdefault(c, c) != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    members = defaultdict(list)
    for group_id, customer_id in LinkedGroup.customers.through.objects.values_list("linkedgroup_id", "customer_id"):
        members[group_id].append(customer_id)
    for customers in members.values():
        for other in customers[1:]:
            a, b = root(customers[0]), root(other)
            parent[max(a, b)] = min(a, b)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS surveillance_cluster (customer_id bigint PRIMARY KEY, "
            "cluster bigint NOT NULL) ON COMMIT DROP"
        )
        if parent:
            cursor.execute(
                "INSERT INTO surveillance_cluster SELECT * FROM unnest(%s::bigint[], %s::bigint[])",
                [list(parent), [root(c) for c in parent]],
            )
        cursor.execute("ANALYZE surveillance_cluster")


# ---- excessive trading ----------------------------------------------------------------------------------
_ACCOUNT_VOLUME = """
SELECT account_id, sum(v), count(*) FROM (
    SELECT buy_account_id AS account_id, value_btc AS v FROM trading_risk_trade
    WHERE executed_at >= %s AND executed_at < %s
    UNION ALL
    SELECT sell_account_id, value_btc FROM trading_risk_trade WHERE executed_at >= %s AND executed_at < %s
) sides GROUP BY account_id HAVING sum(v) >= %s
"""


def excessive_trading(*, window_end: datetime, now: datetime) -> int:
    """Rolling 24 h volume per account against the warning and ban lines."""
    limits = rules.ExcessiveLimits(
        warn_btc=parameters.param("surveillance.excessive_trading_warn_btc", at=window_end),
        warn_action=parameters.param("surveillance.excessive_trading_warn_action", at=window_end),
        ban_btc=parameters.param("surveillance.excessive_trading_ban_btc", at=window_end),
        ban_action=parameters.param("surveillance.excessive_trading_ban_action", at=window_end),
    )
    start = window_end - DAY
    rows = _fetch(_ACCOUNT_VOLUME, [start, window_end, start, window_end, min(limits.warn_btc, limits.ban_btc)])
    findings = []
    for account_id, volume, trades in rows:
        finding = rules.excessive_trading(volume_btc=volume, limits=limits)
        if finding:
            details = {
                "volume_btc": volume,
                "trades": trades,
                "window_start": start,
                "window_end": window_end,
                "accounts": [account_id],
            }
            key = f"excessive_trading:{finding.level}:{account_id}:{window_end.date()}"
            findings.append((finding, account_id, "", key, details))
    return _act(findings, rule="excessive_trading", now=now)


# ---- behaviour anomaly ----------------------------------------------------------------------------------
_ROLLUP_TRADES = """
INSERT INTO trading_risk_accountdailyactivity (account_id, day, volume_btc, trades, order_events)
SELECT account_id, %s, coalesce(sum(v), 0), count(*), 0 FROM (
    SELECT buy_account_id AS account_id, value_btc AS v FROM trading_risk_trade
    WHERE executed_at >= %s AND executed_at < %s
    UNION ALL
    SELECT sell_account_id, value_btc FROM trading_risk_trade WHERE executed_at >= %s AND executed_at < %s
) sides GROUP BY account_id
ON CONFLICT (account_id, day) DO UPDATE SET volume_btc = excluded.volume_btc, trades = excluded.trades
"""
_ROLLUP_EVENTS = """
INSERT INTO trading_risk_accountdailyactivity (account_id, day, volume_btc, trades, order_events)
SELECT account_id, %s, 0, 0, count(*) FROM trading_risk_orderevent WHERE at >= %s AND at < %s GROUP BY account_id
ON CONFLICT (account_id, day) DO UPDATE SET order_events = excluded.order_events
"""
_ANOMALY = """
SELECT d.account_id, d.volume_btc::float8, d.order_events, h.days, h.mean_v, h.sd_v, h.mean_o, h.sd_o
FROM trading_risk_accountdailyactivity d
JOIN LATERAL (
    SELECT count(*) AS days, avg(volume_btc)::float8 AS mean_v,
           coalesce(stddev_pop(volume_btc), 0)::float8 AS sd_v,
           avg(order_events)::float8 AS mean_o, coalesce(stddev_pop(order_events), 0)::float8 AS sd_o
    FROM trading_risk_accountdailyactivity h
    WHERE h.account_id = d.account_id AND h.day >= %s AND h.day < %s
) h ON h.days >= %s
WHERE d.day = %s
  AND (d.volume_btc > h.mean_v + %s * greatest(h.sd_v, h.mean_v * 0.1)
       OR d.order_events > h.mean_o + %s * greatest(h.sd_o, h.mean_o * 0.1))
"""


def daily_activity(*, window_end: datetime, now: datetime) -> int:
    """Roll the day before `window_end` up per account (volume, trades, order events): the anomaly baseline."""
    start = window_end - DAY
    day = start.date()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_ROLLUP_TRADES, [day, start, window_end, start, window_end])
        cursor.execute(_ROLLUP_EVENTS, [day, start, window_end])
    return AccountDailyActivity.objects.filter(day=day).count()


def behaviour_anomaly(*, window_end: datetime, now: datetime) -> int:
    """Accounts whose day departs sharply from their own baseline of previous days (needs daily_activity)."""
    day: date = (window_end - DAY).date()
    limits = rules.AnomalyLimits(
        min_deviations=float(parameters.param("surveillance.anomaly_min_deviations", at=window_end)),
        min_history_days=parameters.param("surveillance.anomaly_min_history_days", at=window_end),
        min_volume_btc=float(parameters.param("surveillance.anomaly_min_volume_btc", at=window_end)),
        action=parameters.param("surveillance.anomaly_action", at=window_end),
    )
    baseline_days = parameters.param("surveillance.anomaly_baseline_days", at=window_end)
    rows = _fetch(
        _ANOMALY,
        [
            day - timedelta(days=baseline_days),
            day,
            limits.min_history_days,
            day,
            limits.min_deviations,
            limits.min_deviations,
        ],
    )
    findings = []
    for account_id, volume, orders, days, mean_v, sd_v, mean_o, sd_o in rows:
        finding = rules.behaviour_anomaly(
            volume_btc=volume,
            order_events=orders,
            volume=rules.Baseline(days, mean_v, sd_v),
            orders=rules.Baseline(days, mean_o, sd_o),
            limits=limits,
        )
        if finding:
            details = {
                "day": day,
                "volume_btc": volume,
                "order_events": orders,
                "baseline_days": days,
                "mean_volume_btc": mean_v,
                "mean_order_events": mean_o,
                "window_start": window_end - DAY,
                "window_end": window_end,
                "accounts": [account_id],
            }
            findings.append((finding, account_id, "", f"behaviour_anomaly:{account_id}:{day}", details))
    return _act(findings, rule="behaviour_anomaly", now=now)


# ---- linked groups --------------------------------------------------------------------------------------
def link_shared_identifiers(*, now: datetime) -> int:
    """Put customers sharing a device, an IP, a phone number or an e-mail address into linked groups.

    Returns the number of groups created. Phone numbers and e-mail addresses are compared as people write
    them differently: phones by their digits, e-mail addresses without regard to case. An identifier shared
    by more customers than `surveillance.linked_group_max_shared` links nobody.
    """
    sources = [
        (LinkedGroup.Basis.DEVICE, "device_id", KnownDevice.objects.annotate(value=F("device_id"))),
        (LinkedGroup.Basis.IP, "ip", KnownIp.objects.annotate(value=F("ip"))),
        (
            LinkedGroup.Basis.KYC,
            "phone",
            Customer.objects.annotate(
                value=Func(F("phone"), Value(r"\D"), Value(""), Value("g"), function="regexp_replace")
            ),
        ),
        (LinkedGroup.Basis.KYC, "email", Customer.objects.annotate(value=Lower("email"))),
    ]
    created = 0
    most = parameters.param("surveillance.linked_group_max_shared", at=now)
    for basis, field, rows in sources:
        owner = "id" if rows.model is Customer else "customer_id"
        pairs = rows.exclude(value="").values_list("value", owner)
        shared: dict[str, set[int]] = {}
        for value, customer_id in pairs.filter(value__in=_shared_values(rows, owner, most)):
            shared.setdefault(value, set()).add(customer_id)
        for value, customers in shared.items():
            created += _link(basis=basis, evidence=f"{field}:{value}"[:200], customer_ids=customers, now=now)
    return created


def _shared_values(rows, owner: str, most: int):
    """The values held by at least two and at most `most` customers."""
    return rows.values("value").annotate(n=Count(owner, distinct=True)).filter(n__gte=2, n__lte=most).values("value")


@transaction.atomic
def _link(*, basis: str, evidence: str, customer_ids: set[int], now: datetime) -> int:
    group, created = LinkedGroup.objects.get_or_create(
        basis=basis,
        evidence=evidence,
        defaults={
            "name": f"{LinkedGroup.Basis(basis).label}: {evidence}",
            "created_at": now,
            "created_by": SYSTEM.label,
        },
    )
    before = set(group.customers.values_list("pk", flat=True))
    if customer_ids <= before:
        return 0
    group.customers.add(*customer_ids)
    audit.record(
        actor=SYSTEM,
        action="linked_group.link",
        target=group,
        now=now,
        before={"customers": sorted(before)},
        after={"customers": sorted(before | customer_ids)},
    )
    return int(created)


# ---- orchestration -----------------------------------------------------------------------------------------
HOURLY: dict[str, Callable[..., int]] = {
    "self_trade": self_trade,
    "wash_trading": wash_trading,
    "excessive_trading": excessive_trading,
}
DAILY: dict[str, Callable[..., int]] = {
    **HOURLY,
    "daily_activity": daily_activity,
    "behaviour_anomaly": behaviour_anomaly,
}


def run_detectors(*, detectors: dict[str, Callable[..., int]], window_end: datetime, now: datetime) -> dict[str, int]:
    """Run each detector over the window ending at `window_end` unless it already finished; returns findings."""
    results = {}
    for name, detector in detectors.items():
        with connection.cursor() as cursor:
            # Two workers on the same run would only duplicate work (alerts dedupe); the second one skips.
            cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [f"{name}@{window_end.isoformat()}"])
            if not cursor.fetchone()[0]:
                continue
        try:
            results[name] = _run_one(name, detector, window_end=window_end, now=now)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [f"{name}@{window_end.isoformat()}"])
    return results


def _run_one(name: str, detector: Callable[..., int], *, window_end: datetime, now: datetime) -> int:
    run, _ = DetectorRun.objects.get_or_create(detector=name, window_end=window_end, defaults={"started_at": now})
    if run.finished_at is not None:
        return run.findings
    started = time.perf_counter()
    findings = detector(window_end=window_end, now=now)
    seconds = time.perf_counter() - started
    DetectorRun.objects.filter(pk=run.pk).update(finished_at=now, findings=findings, seconds=seconds)
    logger.info("detector %s to %s: %d finding(s) in %.2f s", name, window_end, findings, seconds)
    return findings
