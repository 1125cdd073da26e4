"""Position and balance snapshots in from the matching engine.

A snapshot's natural key is (account, symbol or asset, at). Its key goes into SnapshotKey first with a
digest of its payload (INSERT … ON CONFLICT DO NOTHING): a key seen before with an equal digest is a
duplicate, with another digest a conflict (409, nothing stored). A new snapshot replaces the stored one
only if it is newer, so a late older snapshot is accepted (and recorded) without undoing a newer one.

Each position is stored with what depends only on the snapshot: the maintenance and initial rates and
maintenance amount of its risk-limit tier at entry, and its isolated liquidation and bankruptcy prices
(trading_risk.margin). A quantity of zero closes the position: the row stays, flat, so its time still
decides which snapshot is the latest.
"""

import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from django.db import connection, transaction

from backoffice.errors import InvalidInput
from trading_risk import margin, risk_limits
from trading_risk.ingest import IngestConflict, accounts_cache
from trading_risk.models import Instrument, Position

SIDES = {"long": 1, "short": -1}


class PositionIn(Protocol):
    account_id: str
    symbol: str
    side: str
    qty: str
    entry_price: str
    margin: str
    at: datetime


class BalanceIn(Protocol):
    account_id: str
    asset: str
    total: str
    available: str
    at: datetime


@dataclass(frozen=True)
class PricedPosition:
    """What is stored with a position besides the snapshot itself."""

    maintenance_rate: Decimal | None
    initial_rate: Decimal | None
    maintenance_amount: Decimal
    liquidation_price: Decimal | None
    bankruptcy_price: Decimal | None


FLAT = PricedPosition(None, None, Decimal(0), None, None)


def price_position(
    limits: margin.RiskLimits, *, side: int, qty: Decimal, entry: Decimal, wallet: Decimal
) -> PricedPosition:
    """The tier at entry size and the isolated liquidation and bankruptcy prices of one position."""
    if qty == 0 or entry == 0:
        return FLAT
    tier = limits.tier(margin.position_size(limits, qty=qty, price=entry))
    if wallet == 0:  # cross margin: the prices depend on the whole account, not on this snapshot
        return PricedPosition(tier.maintenance_rate, tier.initial_rate, tier.maintenance_amount, None, None)
    return PricedPosition(
        maintenance_rate=tier.maintenance_rate,
        initial_rate=tier.initial_rate,
        maintenance_amount=tier.maintenance_amount,
        liquidation_price=_stored(margin.liquidation_price(limits, side=side, qty=qty, entry=entry, wallet=wallet)),
        bankruptcy_price=_stored(margin.bankruptcy_price(limits, side=side, qty=qty, entry=entry, wallet=wallet)),
    )


_PRICE_PLACES = Decimal("1e-18")
_PRICE_MAX = Decimal("1e20")


def _stored(price: Decimal | None) -> Decimal | None:
    """A price as NUMERIC(38, 18) holds it (None when it is out of that range)."""
    return price.quantize(_PRICE_PLACES) if price is not None and 0 < price < _PRICE_MAX else None


# ---- positions -----------------------------------------------------------------------------------------------
_POSITION_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS position_stage (
    idx int, account_id bigint, instrument_id bigint, symbol varchar(32) COLLATE "C", side varchar(5),
    qty numeric(38, 18), entry_price numeric(38, 18), margin numeric(38, 18), at timestamptz,
    risk_limit_id bigint, maintenance_rate numeric(12, 8), initial_rate numeric(12, 8),
    maintenance_amount numeric(38, 18), liquidation_price numeric(38, 18), bankruptcy_price numeric(38, 18)
) ON COMMIT DELETE ROWS
"""
_POSITION_COLUMNS = (
    "idx, account_id, instrument_id, symbol, side, qty, entry_price, margin, at, risk_limit_id, maintenance_rate, "
    "initial_rate, maintenance_amount, liquidation_price, bankruptcy_price"
)
_POSITION_DIGEST = "hash_record_extended(ROW(s.side, s.qty, s.entry_price, s.margin), 0)"
# Only new keys reach the positions, the newest per (account, instrument), and only if newer than stored.
_POSITION_UPSERT = f"""
WITH new_keys AS (
    INSERT INTO trading_risk_snapshotkey (kind, account_id, subject, at, digest)
    SELECT 'P', s.account_id, s.symbol, s.at, {_POSITION_DIGEST} FROM position_stage s
    ORDER BY s.account_id, s.symbol, s.at
    ON CONFLICT (kind, account_id, subject, at) DO NOTHING
    RETURNING account_id, subject, at
), latest AS (
    SELECT DISTINCT ON (s.account_id, s.instrument_id) s.*
    FROM position_stage s JOIN new_keys k ON k.account_id = s.account_id AND k.subject = s.symbol AND k.at = s.at
    ORDER BY s.account_id, s.instrument_id, s.at DESC
), upserted AS (
    INSERT INTO trading_risk_position AS p (account_id, instrument_id, side, qty, entry_price, margin, at,
        received_at, risk_limit_id, maintenance_rate, initial_rate, maintenance_amount, liquidation_price,
        bankruptcy_price)
    SELECT account_id, instrument_id, side, qty, entry_price, margin, at, %(now)s, risk_limit_id,
        maintenance_rate, initial_rate, maintenance_amount, liquidation_price, bankruptcy_price
    FROM latest ORDER BY account_id, instrument_id
    ON CONFLICT (account_id, instrument_id) DO UPDATE SET side = EXCLUDED.side, qty = EXCLUDED.qty,
        entry_price = EXCLUDED.entry_price, margin = EXCLUDED.margin, at = EXCLUDED.at,
        received_at = EXCLUDED.received_at, risk_limit_id = EXCLUDED.risk_limit_id,
        maintenance_rate = EXCLUDED.maintenance_rate, initial_rate = EXCLUDED.initial_rate,
        maintenance_amount = EXCLUDED.maintenance_amount, liquidation_price = EXCLUDED.liquidation_price,
        bankruptcy_price = EXCLUDED.bankruptcy_price
    WHERE p.at < EXCLUDED.at
    RETURNING 1
)
SELECT (SELECT count(*) FROM new_keys), (SELECT count(*) FROM upserted)
"""
_POSITION_CONFLICTS = f"""
SELECT s.idx FROM position_stage s JOIN trading_risk_snapshotkey k
    ON k.kind = 'P' AND k.account_id = s.account_id AND k.subject = s.symbol AND k.at = s.at
WHERE k.digest <> {_POSITION_DIGEST} ORDER BY s.idx
"""


def ingest_positions(*, positions: list[PositionIn], now: datetime) -> tuple[int, int]:
    """Store a batch of position snapshots; returns (accepted, duplicates). All or nothing: 400 for unknown
    accounts or instruments (or spot ones), 409 when a snapshot's key comes back with another payload."""
    accounts = accounts_cache.resolve({p.account_id for p in positions})
    instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in={p.symbol for p in positions})}
    _refuse_unknown(
        [(i, "account_id", "unknown account") for i, p in enumerate(positions) if p.account_id not in accounts]
        + [(i, "symbol", _symbol_problem(instruments.get(p.symbol))) for i, p in enumerate(positions)]
    )
    limits = risk_limits.limits_by_instrument(list(instruments.values()), at=now)
    rows = io.StringIO()
    rows.writelines(_position_line(i, p, accounts, instruments[p.symbol], limits) for i, p in enumerate(positions))
    rows.seek(0)
    return _copy_and_upsert(
        rows,
        _POSITION_STAGE,
        "position_stage",
        _POSITION_COLUMNS,
        _POSITION_UPSERT,
        _POSITION_CONFLICTS,
        len(positions),
        now,
    )


def _symbol_problem(instrument: Instrument | None) -> str | None:
    if instrument is None:
        return "unknown instrument"
    if instrument.kind == Instrument.Kind.SPOT:
        return "a spot instrument has no positions"
    return None


def _refuse_unknown(problems: Iterable[tuple[int, str, str | None]]) -> None:
    errors = [{"index": i, "field": f, "message": m} for i, f, m in problems if m]
    if errors:
        raise InvalidInput(
            f"{len({e['index'] for e in errors})} item(s) are invalid; nothing was stored.",
            details=sorted(errors, key=lambda e: e["index"]),
        )


def _position_line(i: int, p: PositionIn, accounts: dict, instrument: Instrument, limits: dict) -> str:
    table, instrument_limits = limits[instrument.pk]
    side, qty, entry, wallet = SIDES[p.side], Decimal(p.qty), Decimal(p.entry_price), Decimal(p.margin)
    priced = price_position(instrument_limits, side=side, qty=qty, entry=entry, wallet=wallet)
    values = (
        i,
        accounts[p.account_id][0],
        instrument.pk,
        instrument.symbol,
        p.side.upper(),
        p.qty,
        p.entry_price,
        p.margin,
        p.at.isoformat(),
        table.pk if table else None,
        priced.maintenance_rate,
        priced.initial_rate,
        priced.maintenance_amount,
        priced.liquidation_price,
        priced.bankruptcy_price,
    )
    return "\t".join(r"\N" if v is None else str(v) for v in values) + "\n"


def _copy_and_upsert(rows, stage_sql, stage, columns, upsert_sql, conflicts_sql, count, now) -> tuple[int, int]:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(stage_sql)
        cursor.execute(f"TRUNCATE {stage}")  # emptied at commit, but a caller's transaction may hold several batches
        cursor.cursor.copy_expert(f"COPY {stage} ({columns}) FROM STDIN", rows)
        cursor.execute(upsert_sql, {"now": now})
        accepted, _ = cursor.fetchone()
        if accepted < count:
            cursor.execute(conflicts_sql)
            conflicts = [row[0] for row in cursor.fetchall()]
            if conflicts:
                raise IngestConflict(
                    f"{len(conflicts)} item(s) were already received with a different payload; nothing was stored.",
                    details=[
                        {"index": i, "field": "at", "message": "already received with a different payload"}
                        for i in conflicts
                    ],
                )
    return accepted, count - accepted


# ---- balances ------------------------------------------------------------------------------------------------
_BALANCE_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS balance_stage (
    idx int, account_id bigint, asset varchar(16) COLLATE "C", total numeric(38, 18), available numeric(38, 18),
    at timestamptz
) ON COMMIT DELETE ROWS
"""
_BALANCE_COLUMNS = "idx, account_id, asset, total, available, at"
_BALANCE_DIGEST = "hash_record_extended(ROW(s.total, s.available), 0)"
_BALANCE_UPSERT = f"""
WITH new_keys AS (
    INSERT INTO trading_risk_snapshotkey (kind, account_id, subject, at, digest)
    SELECT 'B', s.account_id, s.asset, s.at, {_BALANCE_DIGEST} FROM balance_stage s
    ORDER BY s.account_id, s.asset, s.at
    ON CONFLICT (kind, account_id, subject, at) DO NOTHING
    RETURNING account_id, subject, at
), latest AS (
    SELECT DISTINCT ON (s.account_id, s.asset) s.*
    FROM balance_stage s JOIN new_keys k ON k.account_id = s.account_id AND k.subject = s.asset AND k.at = s.at
    ORDER BY s.account_id, s.asset, s.at DESC
), upserted AS (
    INSERT INTO trading_risk_balance AS b (account_id, asset, total, available, at, received_at)
    SELECT account_id, asset, total, available, at, %(now)s FROM latest ORDER BY account_id, asset
    ON CONFLICT (account_id, asset) DO UPDATE SET total = EXCLUDED.total, available = EXCLUDED.available,
        at = EXCLUDED.at, received_at = EXCLUDED.received_at
    WHERE b.at < EXCLUDED.at
    RETURNING 1
)
SELECT (SELECT count(*) FROM new_keys), (SELECT count(*) FROM upserted)
"""
_BALANCE_CONFLICTS = f"""
SELECT s.idx FROM balance_stage s JOIN trading_risk_snapshotkey k
    ON k.kind = 'B' AND k.account_id = s.account_id AND k.subject = s.asset AND k.at = s.at
WHERE k.digest <> {_BALANCE_DIGEST} ORDER BY s.idx
"""


def ingest_balances(*, balances: list[BalanceIn], now: datetime) -> tuple[int, int]:
    """Store a batch of balance snapshots; returns (accepted, duplicates). All or nothing, like positions."""
    accounts = accounts_cache.resolve({b.account_id for b in balances})
    _refuse_unknown(
        (i, "account_id", "unknown account") for i, b in enumerate(balances) if b.account_id not in accounts
    )
    rows = io.StringIO()
    rows.writelines(
        f"{i}\t{accounts[b.account_id][0]}\t{b.asset}\t{b.total}\t{b.available}\t{b.at.isoformat()}\n"
        for i, b in enumerate(balances)
    )
    rows.seek(0)
    return _copy_and_upsert(
        rows, _BALANCE_STAGE, "balance_stage", _BALANCE_COLUMNS, _BALANCE_UPSERT, _BALANCE_CONFLICTS, len(balances), now
    )


# ---- re-pricing after a risk-limit change ------------------------------------------------------------------------
def reprice_positions(*, instrument_id: int, now: datetime) -> int:
    """Recompute the tier and prices of every open position of an instrument under the limits now in force."""
    instrument = Instrument.objects.get(pk=instrument_id)
    table, limits = risk_limits.limits_by_instrument([instrument], at=now)[instrument.pk]
    changed = []
    with transaction.atomic():
        for position in Position.objects.select_for_update(no_key=True).filter(instrument=instrument, qty__gt=0):
            priced = price_position(
                limits,
                side=SIDES[position.side.lower()],
                qty=position.qty,
                entry=position.entry_price,
                wallet=position.margin,
            )
            for name, value in vars(priced).items():
                setattr(position, name, value)
            position.risk_limit, position.received_at = table, now
            changed.append(position)
        Position.objects.bulk_update(changed, [*vars(FLAT), "risk_limit", "received_at"], batch_size=2000)
    return len(changed)
