"""The frequent order/cancel ladder, evaluated in the request that stored the order events.

Redis keeps per-minute counts per (account, symbol): a cheap filter that tells which pairs may have
crossed the line. Counts are added after the events commit, so the batch that adds last sees the whole
total in Redis and, in the database, every event of every batch that added before it. Only for pairs
over the line is the ladder row locked and the exact count taken from the event table. One crossing is
one hit: events up to a hit never count towards the next one, and the row lock makes two concurrent
batches see each other's hit.
"""

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from redis import RedisError

from accounts import notifications, restrictions
from accounts.models import Account
from backoffice import audit, parameters
from trading_risk import rules, surveillance
from trading_risk.models import OrderCancelLadder
from trading_risk.services import open_alert

logger = logging.getLogger(__name__)
RULE = "frequent_order_cancel"
WINDOW = timedelta(hours=24)
SYSTEM = audit.Actor.system(RULE)

# Per key: add the batch's per-minute counts, drop minutes older than the window, return the window's sum.
# ARGV: window in minutes, key expiry in seconds, then per key: n, then n * (minute, count).
_COUNT = """
local window, ttl, a = tonumber(ARGV[1]), tonumber(ARGV[2]), 3
local out = {}
for i, k in ipairs(KEYS) do
  local n, newest = tonumber(ARGV[a]), 0
  a = a + 1
  for j = 1, n do
    local m, c = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
    a = a + 2
    redis.call('HINCRBY', k, m, c)
    if m > newest then newest = m end
  end
  redis.call('EXPIRE', k, ttl)
  local total, all = 0, redis.call('HGETALL', k)
  for j = 1, #all, 2 do
    local m = tonumber(all[j])
    if m < newest - window then redis.call('HDEL', k, all[j])
    elseif m <= newest then total = total + tonumber(all[j + 1]) end
  end
  out[i] = total
end
return out
"""
_CHUNK = 500


def counter_key(account_id: int, symbol: str) -> str:
    from backoffice.redis_client import key

    return key("surv", "oc", account_id, symbol)


def count_events(*, buckets: list[tuple], now: datetime) -> list[int]:
    """Count newly stored events (rows of account, symbol, minute, count, newest time) and climb the ladder
    for every pair that crossed its line; returns the ladder ids that moved."""
    pairs: dict[tuple[int, str], list] = defaultdict(lambda: [[], None])
    for account_id, symbol, minute, n, newest in buckets:
        entry = pairs[(account_id, symbol)]
        entry[0].append((minute, n))
        entry[1] = newest if entry[1] is None or newest > entry[1] else entry[1]
    try:
        totals = _redis_totals(pairs)
    except RedisError:
        # Without the counters, the database counts the batch's pairs itself: slower, never skipped.
        logger.warning("order/cancel counters unavailable; counting %d pair(s) in the database", len(pairs))
        totals = _database_totals(pairs)
    moved = []
    for (account_id, symbol), total in totals.items():
        newest = pairs[(account_id, symbol)][1]
        if total >= parameters.param("surveillance.order_cancel_events_per_24h", scope=symbol, at=newest):
            step = evaluate(account_id=account_id, symbol=symbol, now=now)
            if step is not None:
                moved.append(step)
    return moved


def _redis_totals(pairs: dict) -> dict[tuple[int, str], int]:
    from backoffice.redis_client import get_redis

    client = get_redis()
    script = client.register_script(_COUNT)
    items = list(pairs.items())
    totals = {}
    # +1 minute: minute buckets must never undercount the exact 24 h window the database checks.
    window = int(WINDOW.total_seconds() // 60) + 1
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        args = [window, int(WINDOW.total_seconds()) + 3600]
        for _, (minutes, _newest) in chunk:
            args.append(len(minutes))
            for minute, n in minutes:
                args += [minute, n]
        counts = script(keys=[counter_key(a, s) for (a, s), _ in chunk], args=args)
        totals.update({pair: int(c) for (pair, _), c in zip(chunk, counts, strict=True)})
    return totals


def _database_totals(pairs: dict) -> dict[tuple[int, str], int]:
    """Each pair's events in the 24 h before its newest event in this batch, from the event table."""
    keys = list(pairs)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.account_id, p.symbol, (SELECT count(*) FROM trading_risk_orderevent e "
            "WHERE e.account_id = p.account_id AND e.symbol = p.symbol AND e.at > p.newest - interval '24 hours' "
            "AND e.at <= p.newest) FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[]) "
            "AS p(account_id, symbol, newest)",
            [[a for a, _ in keys], [s for _, s in keys], [pairs[k][1] for k in keys]],
        )
        return {(a, s): n for a, s, n in cursor.fetchall()}


@transaction.atomic
def evaluate(*, account_id: int, symbol: str, now: datetime) -> int | None:
    """Under the ladder row's lock, count exactly up to the pair's newest stored event and climb a step if
    the line is crossed; returns the row id when it moved."""
    if surveillance.is_snoozed(account_id=account_id, rule=RULE, now=now):
        return None
    row = _locked_row(account_id, symbol, now)
    state = rules.LadderState(row.step, row.last_hit_at)
    at, events = _newest_and_count(account_id, symbol, state)
    if at is None:
        return None
    limits = _limits(symbol, at)
    step = rules.frequent_order_cancel(state=state, events=events, at=at, limits=limits)
    if step is None:
        return None
    row.step, row.last_hit_at, row.updated_at = step.step, at, now
    row.save(update_fields=["step", "last_hit_at", "updated_at"])
    _act(row, step, events=events, at=at, now=now, restriction=limits.restriction)
    return row.pk


def _locked_row(account_id: int, symbol: str, now: datetime) -> OrderCancelLadder:
    OrderCancelLadder.objects.bulk_create(
        [OrderCancelLadder(account_id=account_id, symbol=symbol, updated_at=now)], ignore_conflicts=True
    )
    return OrderCancelLadder.objects.select_for_update(no_key=True).get(account_id=account_id, symbol=symbol)


def _limits(symbol: str, at: datetime) -> rules.LadderLimits:
    return rules.LadderLimits(
        events=parameters.param("surveillance.order_cancel_events_per_24h", scope=symbol, at=at),
        ladder_window=timedelta(hours=parameters.param("surveillance.order_cancel_ladder_window_hours", at=at)),
        restriction=timedelta(minutes=parameters.param("surveillance.order_cancel_restriction_minutes", at=at)),
    )


def _newest_and_count(account_id: int, symbol: str, state: rules.LadderState) -> tuple[datetime | None, int]:
    """The pair's newest event time T and the events in the window ending at T, cut at the previous hit."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT max(at) FROM trading_risk_orderevent WHERE account_id = %s AND symbol = %s", [account_id, symbol]
        )
        newest = cursor.fetchone()[0]
        if newest is None:
            return None, 0
        start = rules.ladder_window_start(state=state, at=newest, window=WINDOW)
        cursor.execute(
            "SELECT count(*) FROM trading_risk_orderevent WHERE account_id = %s AND symbol = %s AND at > %s "
            "AND at <= %s",
            [account_id, symbol, start, newest],
        )
        return newest, cursor.fetchone()[0]


def _act(
    row: OrderCancelLadder, step: rules.LadderStep, *, events: int, at: datetime, now: datetime, restriction: timedelta
) -> None:
    account = Account.objects.select_related("customer").get(pk=row.account_id)
    until = max(now, at) + restriction if step.restriction_code else None
    alert, _ = open_alert(
        rule=RULE,
        severity=rules.MAJOR if step.restriction_code else rules.GENERAL,
        customer=account.customer,
        account=account,
        symbol=row.symbol,
        actor=SYSTEM,
        now=now,
        summary=f"Frequent order/cancel: {events} events in 24 h, warning {step.step} of 3",
        dedup_key=f"{RULE}:{account.pk}:{row.symbol}:{at.astimezone(UTC).isoformat()}",
        details={
            "events": events,
            "step": step.step,
            "hit_at": at,
            "until": until,
            "window_start": at - WINDOW,
            "window_end": at,
        },
    )
    audit.record(
        actor=SYSTEM,
        action="order_cancel_ladder.step",
        target=row,
        now=now,
        after={"step": step.step, "hit_at": at, "events": events, "alert": alert.pk},
    )
    if step.restriction_code:
        restrictions.add_restriction(
            customer=account.customer,
            account=account,
            code=step.restriction_code,
            rule=RULE,
            actor=SYSTEM,
            now=now,
            until=until,
            source=f"alert:{alert.pk}",
            reason=f"Frequent order/cancel in {row.symbol}: {events} events in 24 h (warning {step.step} of 3)",
        )
    notifications.notify_customer(
        customer=account.customer,
        template_code="order_cancel_warning",
        channels_=step.channels,
        now=now,
        context={
            "account": account.external_id,
            "symbol": row.symbol,
            "events": events,
            "step": step.step,
            "until": until.isoformat() if until else "",
        },
        related=f"alert:{alert.pk}",
    )
