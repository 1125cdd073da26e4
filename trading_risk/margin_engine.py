"""Re-margining: every account's books at the latest marks, classified, with consequences on transitions.

Each (account, book) — perpetual and dated contracts are monitored separately — is valued in USD:
equity = Σ (isolated margin + unrealised PnL at mark) × USD rate of the settlement asset + the account's
available balances × their latest USD prices; MM and IM are summed likewise at mark, in the tier of each
position's size at mark. The class is `margin.book_margin`'s (`evaluate` computes it in Decimal for one
account's detail; `decide` computes the same figures set-based in NUMERIC for a run's candidates).

Speed. A worker process keeps every position in per-instrument numpy arrays (float64) and refreshes them
from rows received since its last look. On a mark move it recomputes every book in float — a pre-filter
only: a book becomes a *candidate* when its float class differs from the stored one, or when any of its
figures lies within a relative 1e-7 of a line it is compared with (equity vs MM, equity vs warning line, a
position's equity vs its MM, a size vs a tier boundary). Every candidate is then decided exactly, in
NUMERIC over the stored rows, and only rows whose exact class changed are written. A book that is not a
candidate keeps its stored class: its float class equals it with a margin far above float error.

Writes. The changed classes are COPYed to a staging table, then updated (stored books) or inserted (new
ones) set-based; each transition is kept as a MarginTransition, and one operations-log entry of the run
counts the changes per (from, to) pair and names the id range of its transitions (every change traceable to
its row), all under an advisory lock so runs in several processes serialise. The consequences (notice,
restriction, alert) follow in their own task, once per transition.
"""

import gc
import io
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from accounts import notifications, restrictions
from accounts.models import Account, NotificationTemplate
from backoffice import audit, parameters
from trading_risk import margin, risk_limits, services
from trading_risk.models import AccountMargin, Alert, Balance, Instrument, MarginTransition, Position

logger = logging.getLogger(__name__)

ACTOR = audit.Actor.system("margin_engine")
RULE = "margin"
ALERT_RULE = "margin_liquidation"
RESTRICTION = "below_maintenance_margin"
CLASSES = (margin.HEALTHY, margin.WARNING, margin.BELOW_MAINTENANCE, margin.LIQUIDATION)
CODE = {c: i for i, c in enumerate(CLASSES)}
RESTRICTED = {margin.BELOW_MAINTENANCE, margin.LIQUIDATION}
BOOKS = {Instrument.Kind.PERPETUAL: AccountMargin.Book.PERPETUAL, Instrument.Kind.FUTURE: AccountMargin.Book.FUTURE}
USD_ASSETS = {"USD"}
TOLERANCE = 1e-7  # relative; float64 sums of these magnitudes err by ~1e-12
REREAD_OVERLAP = timedelta(seconds=5)  # covers commit lag after received_at, and clock skew between hosts
_LOCK_KEY = 0x6D617267696E  # "margin": serialises the write phase of concurrent runs
_EXACT_CHUNK = 5000


def restriction_source(account_id: int, book: str) -> str:
    return f"margin:{account_id}:{book}"


# ---- the market -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Terms:
    """One contract at the current mark: its book, limits and the USD rate of its settlement asset."""

    symbol: str
    book: str
    limits: margin.RiskLimits
    mark: Decimal | None
    usd_rate: Decimal
    table_id: int | None = None


@dataclass(frozen=True)
class Market:
    at: datetime
    instruments: dict[int, Terms]
    asset_usd: dict[str, Decimal]
    warning_fraction: Decimal

    def balance_usd(self, asset: str, amount: Decimal) -> Decimal:
        """USD value of an amount of an asset at its latest price; an unpriced asset counts as nothing."""
        return amount if asset in USD_ASSETS else amount * self.asset_usd.get(asset, Decimal(0))


def load_market(*, now: datetime) -> Market:
    """Latest marks and asset prices at `now`, the risk limits in force, the warning-line parameter."""
    instruments = list(Instrument.objects.exclude(kind=Instrument.Kind.SPOT))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT ON (instrument_id) instrument_id, mark_price FROM trading_risk_instrumentprice "
            "WHERE at <= %s ORDER BY instrument_id, at DESC",
            [now],
        )
        marks = dict(cursor.fetchall())
        cursor.execute(
            "SELECT DISTINCT ON (asset) asset, usd FROM trading_risk_assetprice WHERE at <= %s ORDER BY asset, at DESC",
            [now],
        )
        asset_usd = dict(cursor.fetchall())
    limits = risk_limits.limits_by_instrument(instruments, at=now)
    terms = {}
    for i in instruments:
        table, lim = limits[i.pk]
        mark = marks.get(i.pk)
        rate = _settlement_rate(i, lim, mark, asset_usd)
        terms[i.pk] = Terms(i.symbol, BOOKS[i.kind], lim, mark, rate, table.pk if table else None)
    return Market(now, terms, asset_usd, parameters.param("margin.warning_line", at=now))


def _settlement_rate(instrument: Instrument, limits: margin.RiskLimits, mark, asset_usd: dict) -> Decimal:
    """USD per unit of the settlement asset: its latest price; unpriced, a linear quote is taken as a USD
    stablecoin (1) and an inverse contract's coin at its own mark."""
    asset = instrument.base if limits.settlement == margin.INVERSE else instrument.quote
    if asset in asset_usd:
        return asset_usd[asset]
    if limits.settlement == margin.INVERSE and mark is not None:
        return mark
    return Decimal(1)


# ---- the exact decision ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PositionRow:
    account_id: int
    instrument_id: int
    side: int
    qty: Decimal
    entry: Decimal
    margin: Decimal


def position_at_mark(row: PositionRow, market: Market) -> margin.PositionAtMark:
    terms = market.instruments[row.instrument_id]
    return margin.position_at_mark(
        terms.limits,
        side=row.side,
        qty=row.qty,
        entry=row.entry,
        margin=row.margin,
        mark=terms.mark if terms.mark is not None else row.entry,  # no mark yet: valued at entry
        usd_rate=terms.usd_rate,
    )


def evaluate(keys: Iterable[tuple[int, str]], market: Market) -> dict[tuple[int, str], margin.BookMargin]:
    """The exact margin of each (account, book), in Decimal from the stored rows."""
    keys = set(keys)
    accounts = sorted({a for a, _ in keys})
    result = {}
    for start in range(0, len(accounts), _EXACT_CHUNK):
        chunk = accounts[start : start + _EXACT_CHUNK]
        books, balances = _load_exact(chunk, market)
        members = set(chunk)
        for key in (k for k in keys if k[0] in members):
            result[key] = margin.book_margin(
                [position_at_mark(p, market) for p in books.get(key, ())],
                balances_usd=balances.get(key[0], Decimal(0)),
                warning_fraction=market.warning_fraction,
            )
    return result


def _load_exact(account_ids: list[int], market: Market):
    books: dict[tuple[int, str], list[PositionRow]] = defaultdict(list)
    rows = Position.objects.filter(account_id__in=account_ids, qty__gt=0).values_list(
        "account_id", "instrument_id", "side", "qty", "entry_price", "margin"
    )
    for account_id, instrument_id, side, qty, entry, wallet in rows:
        if instrument_id in market.instruments:
            side = 1 if side == Position.Side.LONG else -1
            row = PositionRow(account_id, instrument_id, side, qty, entry, wallet)
            books[(account_id, market.instruments[instrument_id].book)].append(row)
    balances: dict[int, Decimal] = defaultdict(Decimal)
    for account_id, asset, available in Balance.objects.filter(account_id__in=account_ids, available__gt=0).values_list(
        "account_id", "asset", "available"
    ):
        balances[account_id] += market.balance_usd(asset, available)
    return books, balances


# The same figures set-based, in NUMERIC, for the candidates of a run: what decides their class. The tier
# is the bracket with the highest floor at or below the size (the last one for anything larger), or the
# step model's floor((size − base) / step) + 1 steps; tests hold this and `evaluate` to the same answers.
# Each stage ends in `OFFSET 0`, which keeps the planner from inlining it into the next: a position's size
# and uPnL (divisions, for an inverse contract) and its tier are computed once, not once per use. The columns
# are NUMERIC(38, 18), so the sums carry up to 60 decimals, nearly all trailing zeros: `trim_scale` drops
# them (the same values) before they are sent and converted to Decimal.
_EXACT_SQL = """
WITH terms AS MATERIALIZED (
    SELECT * FROM unnest(%(ids)s::bigint[], %(books)s::text[], %(inverse)s::bool[], %(cs)s::numeric[],
        %(marks)s::numeric[], %(rates)s::numeric[], %(tables)s::bigint[], %(base)s::numeric[], %(step)s::numeric[],
        %(m0)s::numeric[], %(i0)s::numeric[], %(inc)s::numeric[])
        AS t(instrument_id, book, inverse, cs, mark, rate, table_id, base, step, m0, i0, inc)
), sized AS (
    SELECT p.account_id, t.book, t.rate, t.table_id, t.base, t.step, t.m0, t.i0, t.inc, p.margin,
        CASE WHEN t.inverse THEN p.qty * t.cs / coalesce(t.mark, p.entry_price)
             ELSE p.qty * coalesce(t.mark, p.entry_price) END AS size,
        CASE WHEN p.side = 'LONG' THEN 1 ELSE -1 END
            * CASE WHEN t.inverse THEN p.qty * t.cs * (1 / p.entry_price - 1 / coalesce(t.mark, p.entry_price))
                   ELSE p.qty * (coalesce(t.mark, p.entry_price) - p.entry_price) END AS upnl
    FROM trading_risk_position p JOIN terms t ON t.instrument_id = p.instrument_id
    WHERE p.account_id = ANY(%(accounts)s::bigint[]) AND p.qty > 0
    OFFSET 0
), stepped AS (
    SELECT z.*, CASE WHEN z.step IS NULL THEN NULL WHEN z.size < z.base THEN 0
                     ELSE floor((z.size - z.base) / z.step) + 1 END AS steps
    FROM sized z
    OFFSET 0
), tiered AS (
    SELECT z.account_id, z.book, z.rate, z.margin, z.margin + z.upnl AS equity, z.size,
        z.size * coalesce(b.maintenance_rate, z.m0 + z.steps * z.inc) - coalesce(b.maintenance_amount, 0) AS mm,
        z.size * coalesce(b.initial_rate, z.i0 + z.steps * z.inc) AS im
    FROM stepped z
    LEFT JOIN LATERAL (SELECT maintenance_rate, initial_rate, maintenance_amount FROM trading_risk_risklimitbracket
                       WHERE table_id = z.table_id AND floor <= z.size ORDER BY floor DESC LIMIT 1) b ON z.step IS NULL
    OFFSET 0
)
SELECT account_id, book, trim_scale(sum(equity * rate)), trim_scale(sum(mm * rate)), trim_scale(sum(im * rate)),
    trim_scale(sum(size * rate)), bool_or(margin > 0 AND equity <= mm)
FROM tiered GROUP BY account_id, book
"""
_BALANCES_SQL = """
SELECT b.account_id, sum(b.available * CASE WHEN b.asset = ANY(%(usd)s) THEN 1 ELSE coalesce(p.usd, 0) END)
FROM trading_risk_balance b LEFT JOIN unnest(%(assets)s::text[], %(prices)s::numeric[]) AS p(asset, usd) USING (asset)
WHERE b.account_id = ANY(%(accounts)s::bigint[]) AND b.available > 0
GROUP BY b.account_id
"""


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection for the block. A large run allocates a few objects per book (rows,
    figures, staging lines) and none of them cycles, but each allocation burst triggers collections that
    walk the worker's millions of long-lived objects again: with 100,000 books that is seconds of the run.
    Reference counting still frees everything; the collector resumes (and catches up) after the block."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@_gc_paused()
def decide(keys: Iterable[tuple[int, str]], market: Market) -> dict[tuple[int, str], margin.BookMargin]:
    """The exact margin of each (account, book), computed in NUMERIC by the database (as `evaluate` does in
    Decimal): the decision for a run's candidates."""
    keys = set(keys)
    accounts = sorted({a for a, _ in keys})
    if not accounts:
        return {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")  # compiling this short query costs more than running it
        accounts = _id_array(accounts)
        cursor.execute(_EXACT_SQL, {**_terms_arrays(market), "accounts": accounts})
        books = {row[:2]: row for row in cursor.fetchall()}
        assets = sorted(market.asset_usd)
        cursor.execute(
            _BALANCES_SQL,
            {
                "usd": sorted(USD_ASSETS),
                "assets": assets,
                "prices": [market.asset_usd[a] for a in assets],
                "accounts": accounts,
            },
        )
        balances = dict(cursor.fetchall())
    zero = (None, None, Decimal(0), Decimal(0), Decimal(0), Decimal(0), False)
    return {key: _book_figures(*books.get(key, zero)[2:], balances.get(key[0], Decimal(0)), market) for key in keys}


def _id_array(ids) -> str:
    """Ids as one array literal: adapting a list of 100,000 ints element by element costs more than the query
    saves. Typed `::bigint[]` in the SQL, so `= ANY(…)` over many ids is a hashed lookup in a sequential scan."""
    return "{" + ",".join(map(str, ids)) + "}"


def _book_figures(equity, mm, im, notional, liquidating, balances, market: Market) -> margin.BookMargin:
    equity += balances
    line = mm + market.warning_fraction * (im - mm)
    classification = margin.classify_figures(liquidating=liquidating, equity=equity, maintenance=mm, line=line)
    return margin.BookMargin(equity, mm, im, line, notional, classification)


def _terms_arrays(market: Market) -> dict[str, list]:
    columns = {
        k: [] for k in ("ids", "books", "inverse", "cs", "marks", "rates", "tables", "base", "step", "m0", "i0", "inc")
    }
    for instrument_id, t in market.instruments.items():
        lim = t.limits
        values = (
            instrument_id,
            t.book,
            lim.settlement == margin.INVERSE,
            lim.contract_size,
            t.mark,
            t.usd_rate,
            t.table_id,
            lim.base_limit,
            lim.step,
            lim.base_maintenance,
            lim.base_initial,
            lim.increment,
        )
        for column, value in zip(columns.values(), values, strict=True):
            column.append(value)
    return columns


# ---- the float pre-filter ----------------------------------------------------------------------------------------
@dataclass
class _Group:
    """The positions of one instrument, row-aligned arrays."""

    slot: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    side: np.ndarray = field(default_factory=lambda: np.zeros(0))
    qty: np.ndarray = field(default_factory=lambda: np.zeros(0))
    entry: np.ndarray = field(default_factory=lambda: np.zeros(0))
    margin: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def extend(self, rows: list[tuple]) -> None:
        columns = list(zip(*rows, strict=True))
        self.slot = np.concatenate([self.slot, np.array(columns[0], np.int64)])
        for name, values in zip(("side", "qty", "entry", "margin"), columns[1:], strict=True):
            setattr(self, name, np.concatenate([getattr(self, name), np.array(values, np.float64)]))


class Worker:
    """Positions, balances and stored classes of every book, kept in memory by one process."""

    def __init__(self):
        self.groups: dict[int, _Group] = {}
        self.position_rows: dict[int, tuple[int, int]] = {}  # position id → (instrument id, row)
        self.slots: dict[tuple[int, str], int] = {}
        self.slot_keys: list[tuple[int, str]] = []
        self.stored = np.zeros(0, np.int8)  # class code per slot, −1 when no row is stored
        self.accounts: dict[int, int] = {}  # account id → account index
        self.slot_account: list[int] = []  # account index per slot
        self.balance_rows: dict[tuple[int, str], int] = {}
        self.assets: dict[str, int] = {}  # asset code → asset index
        self.balance_columns: tuple[list[int], list[int], list[float]] = ([], [], [])  # account, asset, available
        self._balance_arrays = None
        self._slot_accounts = np.zeros(0, np.int64)
        self._pending_stored: list[tuple[int, tuple[int, str]]] = []
        self.seen: dict[str, datetime | None] = {"position": None, "balance": None, "margin": None}

    def account(self, account_id: int) -> int:
        return self.accounts.setdefault(account_id, len(self.accounts))

    def slot(self, key: tuple[int, str]) -> int:
        found = self.slots.get(key)
        if found is None:
            found = self.slots[key] = len(self.slot_keys)
            self.slot_keys.append(key)
            self.slot_account.append(self.account(key[0]))
        return found

    # -- refresh from the database
    def refresh(self, market: Market) -> None:
        self._refresh_positions(market)
        self._refresh_balances()
        self._refresh_margins()
        if len(self.stored) < len(self.slot_keys):
            self.stored = np.concatenate([self.stored, np.full(len(self.slot_keys) - len(self.stored), -1, np.int8)])
        for code, key in self._pending_stored:
            self.stored[self.slots[key]] = code
        self._pending_stored = []

    def _since(self, kind: str, column: str = "received_at") -> tuple[str, list]:
        # Rows received up to a few seconds before the last look were committed by then; later ones are
        # read again (applying a row twice is harmless). The clock is the one the ingesting processes use.
        seen, self.seen[kind] = self.seen[kind], timezone.now()
        return ("", []) if seen is None else (f" WHERE {column} > %s", [seen - REREAD_OVERLAP])

    def _refresh_positions(self, market: Market) -> None:
        where, args = self._since("position")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, account_id, instrument_id, side = 'LONG', qty::float8, entry_price::float8, "
                f"margin::float8, received_at FROM trading_risk_position{where}",
                args,
            )
            rows = cursor.fetchall()
        new: dict[int, list[tuple]] = defaultdict(list)
        for pk, account_id, instrument_id, long, qty, entry, wallet, _ in rows:
            terms = market.instruments.get(instrument_id)
            if terms is None:
                continue
            wallet = wallet if qty > 0 else 0.0
            values = (1.0 if long else -1.0, qty, entry, wallet)
            where_ = self.position_rows.get(pk)
            if where_ is not None:
                group = self.groups[where_[0]]
                for name, value in zip(("side", "qty", "entry", "margin"), values, strict=True):
                    getattr(group, name)[where_[1]] = value
                continue
            group = self.groups.setdefault(instrument_id, _Group())
            self.position_rows[pk] = (instrument_id, len(group.slot) + len(new[instrument_id]))
            new[instrument_id].append((self.slot((account_id, terms.book)), *values))
        for instrument_id, added in new.items():
            self.groups[instrument_id].extend(added)

    def _refresh_balances(self) -> None:
        where, args = self._since("balance")
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT account_id, asset, available::float8, received_at FROM trading_risk_balance{where}", args
            )
            rows = cursor.fetchall()
        accounts, assets, amounts = self.balance_columns
        for account_id, asset, available, _ in rows:
            row = self.balance_rows.get((account_id, asset))
            if row is None:
                row = self.balance_rows[(account_id, asset)] = len(amounts)
                accounts.append(self.account(account_id))
                assets.append(self.assets.setdefault(asset, len(self.assets)))
                amounts.append(available)
            else:
                amounts[row] = available
        if rows or self._balance_arrays is None:
            self._balance_arrays = (np.array(accounts, np.int64), np.array(assets, np.int64), np.array(amounts))

    def _refresh_margins(self) -> None:
        where, args = self._since("margin", "computed_at")
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT account_id, book, classification, computed_at FROM trading_risk_accountmargin{where}", args
            )
            rows = cursor.fetchall()
        self._pending_stored = []
        for account_id, book, classification, _ in rows:
            key = (account_id, book)
            self.slot(key)
            self._pending_stored.append((CODE[classification], key))

    def note_stored(self, changes: dict[tuple[int, str], str]) -> None:
        """Classes this process has just written."""
        for key, classification in changes.items():
            self.stored[self.slot(key)] = CODE[classification]

    # -- the pre-filter
    def candidates(self, market: Market) -> list[tuple[int, str]]:
        """Books whose class may have changed (see the module's docstring)."""
        n = len(self.slot_keys)
        eq, mm, im, scale = (np.zeros(n) for _ in range(4))
        crossed, near, has_open = (np.zeros(n, bool) for _ in range(3))
        for instrument_id, group in self.groups.items():
            terms = market.instruments.get(instrument_id)
            if terms is None or len(group.slot) == 0:
                continue
            figures = _group_figures(group, terms)
            rate = float(terms.usd_rate)
            peq, pmm, pim, gap, pnear, popen = figures
            eq += np.bincount(group.slot, peq * rate, minlength=n)
            mm += np.bincount(group.slot, pmm * rate, minlength=n)
            im += np.bincount(group.slot, pim * rate, minlength=n)
            scale += np.bincount(group.slot, (np.abs(peq) + np.abs(pmm) + np.abs(pim)) * rate, minlength=n)
            crossed |= np.bincount(group.slot, popen & (group.margin > 0) & (gap <= 0), minlength=n) > 0
            near |= np.bincount(group.slot, popen & pnear, minlength=n) > 0
            has_open |= np.bincount(group.slot, popen, minlength=n) > 0
        balances = self._balances_by_slot(market, n)
        eq += balances
        scale += np.abs(balances) + 1.0
        line = mm + float(market.warning_fraction) * (im - mm)
        code = np.where(crossed, 3, np.where(eq < mm, 2, np.where(eq < line, 1, 0))).astype(np.int8)
        tol = TOLERANCE * scale
        near |= (np.abs(eq - mm) <= tol) | (np.abs(eq - line) <= tol)
        known = self.stored >= 0
        chosen = ((code != self.stored) | near) & (known | has_open)
        return [self.slot_keys[i] for i in np.flatnonzero(chosen)]

    def _balances_by_slot(self, market: Market, n: int) -> np.ndarray:
        accounts, assets, amounts = self._balance_arrays
        if len(amounts) == 0 or n == 0:
            return np.zeros(n)
        usd = np.array([float(market.balance_usd(a, Decimal(1))) for a in self.assets])  # in index order
        per_account = np.bincount(accounts, np.maximum(amounts, 0) * usd[assets], minlength=len(self.accounts))
        if len(self._slot_accounts) != n:
            self._slot_accounts = np.array(self.slot_account, np.int64)
        return per_account[self._slot_accounts]


def _group_figures(group: _Group, terms: Terms):
    """Per position: equity, MM, IM, equity − MM, near-a-line flag, open flag (float, settlement currency)."""
    limits = terms.limits
    mark = float(terms.mark) if terms.mark is not None else None
    price = group.entry if mark is None else np.full(len(group.slot), mark)
    opened = (group.qty > 0) & (group.entry > 0)
    entry = np.where(opened, group.entry, 1.0)
    if limits.settlement == margin.INVERSE:
        cs = float(limits.contract_size)
        size = group.qty * cs / price
        upnl = group.side * group.qty * cs * (1 / entry - 1 / price)
    else:
        size = group.qty * price
        upnl = group.side * group.qty * (price - entry)
    mmr, imr, amount, boundary_near = _tiers(limits, size)
    pmm = size * mmr - amount
    pim = size * imr
    peq = np.where(opened, group.margin + upnl, 0.0)
    pmm, pim = np.where(opened, pmm, 0.0), np.where(opened, pim, 0.0)
    gap = peq - pmm
    near = boundary_near | (np.abs(gap) <= TOLERANCE * (np.abs(peq) + np.abs(pmm) + 1.0))
    return peq, pmm, pim, gap, near, opened


def _tiers(limits: margin.RiskLimits, size: np.ndarray):
    """Rates, maintenance amounts and a near-a-boundary flag for each size, vectorised."""
    if limits.is_step:
        base, step = float(limits.base_limit), float(limits.step)
        ratio = (size - base) / step
        steps = np.where(size < base, 0.0, np.floor(ratio) + 1.0)
        fraction = ratio - np.floor(ratio)
        near = (np.abs(size - base) <= TOLERANCE * (size + 1)) | (
            (size >= base) & ((fraction <= TOLERANCE * (ratio + 1)) | (1 - fraction <= TOLERANCE * (ratio + 1)))
        )
        inc = float(limits.increment)
        return (
            float(limits.base_maintenance) + steps * inc,
            float(limits.base_initial) + steps * inc,
            np.zeros_like(size),
            near,
        )
    floors = np.array([float(t.floor) for t in limits.tiers])
    k = np.clip(np.searchsorted(floors, size, side="right") - 1, 0, len(floors) - 1)
    mmr = np.array([float(t.maintenance_rate) for t in limits.tiers])[k]
    imr = np.array([float(t.initial_rate) for t in limits.tiers])[k]
    amount = np.array([float(t.maintenance_amount) for t in limits.tiers])[k]
    nearest = np.minimum(np.abs(size - floors[k]), np.abs(size - floors[np.minimum(k + 1, len(floors) - 1)]))
    return mmr, imr, amount, nearest <= TOLERANCE * (size + 1)


_worker = Worker()


def reset_worker() -> None:
    """Forget everything held in memory (tests; a worker after a restore)."""
    global _worker
    _worker = Worker()


# ---- the run ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunResult:
    books: int
    candidates: int
    written: int
    transitions: int
    seconds: dict[str, float]


def remargin(*, now: datetime) -> RunResult:
    """Re-margin every book at the latest marks; write the classes that changed and their transitions."""
    clock = _Clock()
    market = load_market(now=now)
    worker = _worker
    worker.refresh(market)
    clock.lap("load")
    candidates = worker.candidates(market)
    clock.lap("pre_filter")
    exact = decide(candidates, market)
    clock.lap("exact")
    written, transitions = _persist(exact, now=now)
    worker.note_stored({key: book.classification for key, book in written.items()})
    clock.lap("write")
    if transitions:
        from trading_risk import tasks

        transaction.on_commit(lambda: tasks.apply_margin_consequences.delay())
    return RunResult(len(worker.slot_keys), len(candidates), len(written), transitions, clock.laps)


class _Clock:
    def __init__(self):
        self.laps: dict[str, float] = {}
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self.last, 4)
        self.last = now


# The changed books go through a staging table (COPY), then one upsert and one insert of the transitions.
_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS margin_stage (
    account_id bigint, book varchar(9), from_classification varchar(17), to_classification varchar(17),
    equity numeric, maintenance_margin numeric, initial_margin numeric, warning_line numeric, notional numeric,
    transition bool
) ON COMMIT DELETE ROWS
"""
_UPDATE = """
UPDATE trading_risk_accountmargin m SET equity = s.equity, maintenance_margin = s.maintenance_margin,
    initial_margin = s.initial_margin, warning_line = s.warning_line, notional = s.notional,
    classification = s.to_classification, computed_at = %(now)s, classified_at = %(now)s
FROM margin_stage s WHERE s.from_classification <> '' AND m.account_id = s.account_id AND m.book = s.book
"""
_INSERT = """
INSERT INTO trading_risk_accountmargin AS m (account_id, book, equity, maintenance_margin, initial_margin,
    warning_line, notional, classification, computed_at, classified_at)
SELECT account_id, book, equity, maintenance_margin, initial_margin, warning_line, notional, to_classification,
    %(now)s, %(now)s
FROM margin_stage WHERE from_classification = ''
ON CONFLICT (account_id, book) DO UPDATE SET equity = EXCLUDED.equity,
    maintenance_margin = EXCLUDED.maintenance_margin, initial_margin = EXCLUDED.initial_margin,
    warning_line = EXCLUDED.warning_line, notional = EXCLUDED.notional, classification = EXCLUDED.classification,
    computed_at = EXCLUDED.computed_at, classified_at = EXCLUDED.classified_at
"""
_TRANSITIONS = """
WITH added AS (
    INSERT INTO trading_risk_margintransition (account_id, book, from_classification, to_classification, equity,
        maintenance_margin, initial_margin, warning_line, at)
    SELECT account_id, book, from_classification, to_classification, equity, maintenance_margin, initial_margin,
        warning_line, %(now)s
    FROM margin_stage WHERE transition ORDER BY account_id, book
    RETURNING id
)
SELECT count(*), min(id), max(id) FROM added
"""


@_gc_paused()
@transaction.atomic
def _persist(exact: dict[tuple[int, str], margin.BookMargin], *, now: datetime):
    """Write the books whose exact class differs from the stored one; returns (written, transition count).
    The figures are rounded to the columns' 18 places by the database."""
    if not exact:
        return {}, 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        stored = _stored_classes(cursor, exact)
        changed = [
            (key, book, before)
            for key, book in exact.items()
            if (before := stored.get(key, "")) != book.classification and (before or book.notional > 0)
        ]
        if not changed:
            return {}, 0
        written = {key: book for key, book, _ in changed}
        lines = [_stage_line(key, book, before) for key, book, before in changed]
        cursor.execute(_STAGE)
        cursor.execute("TRUNCATE margin_stage")  # emptied at commit, but a caller's transaction may hold several runs
        cursor.cursor.copy_expert("COPY margin_stage FROM STDIN", io.StringIO("".join(lines)))
        cursor.execute(_UPDATE, {"now": now})
        cursor.execute(_INSERT, {"now": now})
        cursor.execute(_TRANSITIONS, {"now": now})
        transitions, first, last = cursor.fetchone()
    changes = Counter((before, book.classification) for _, book, before in changed)
    audit.record(
        actor=ACTOR,
        action="margin.reclassify",
        target=("trading_risk.margin_run", now.isoformat()),
        now=now,
        after={
            "books": len(written),
            "changes": [[before, after, n] for (before, after), n in sorted(changes.items())],
            "transitions": transitions,
            "transition_ids": [first, last] if transitions else None,
        },
    )
    return written, transitions


def _stage_line(key: tuple[int, str], book: margin.BookMargin, before: str) -> str:
    # A new book that starts HEALTHY is stored without a transition: nothing happened to it.
    transition = "t" if (before or margin.HEALTHY) != book.classification else "f"
    return (
        f"{key[0]}\t{key[1]}\t{before}\t{book.classification}\t{book.equity}\t{book.maintenance_margin}\t"
        f"{book.initial_margin}\t{book.warning_line}\t{book.notional}\t{transition}\n"
    )


def _stored_classes(cursor, exact) -> dict[tuple[int, str], str]:
    accounts = sorted({a for a, _ in exact})
    cursor.execute(
        "SELECT account_id, book, classification FROM trading_risk_accountmargin WHERE account_id = ANY(%s::bigint[])",
        [_id_array(accounts)],
    )
    return {(a, b): c for a, b, c in cursor.fetchall()}


# ---- consequences --------------------------------------------------------------------------------------------------
def apply_consequences(*, now: datetime, limit: int = 1000) -> int:
    """Act on pending transitions, oldest first; returns how many were done."""
    pending = list(
        MarginTransition.objects.filter(consequences_done_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(_apply_one(pk, now=now) for pk in pending)


@transaction.atomic
def _apply_one(pk: int, *, now: datetime) -> int:
    transition = (
        MarginTransition.objects.select_for_update(no_key=True, skip_locked=True)
        .filter(pk=pk, consequences_done_at__isnull=True)
        .first()
    )
    if transition is None:  # done by another run meanwhile
        return 0
    earlier = MarginTransition.objects.filter(
        account_id=transition.account_id, book=transition.book, consequences_done_at__isnull=True, pk__lt=pk
    )
    if earlier.exists():  # a book's transitions act in order (a lift never overtakes its restriction)
        return 0
    account = Account.objects.select_related("customer").get(pk=transition.account_id)
    done = {
        "notified": _notify(transition, account, now=now),
        "restricted": _restrict(transition, account, now=now),
        "lifted": _lift(transition, account, now=now),
        "alert": _alert(transition, account, now=now),
    }
    transition.consequences_done_at = now
    transition.save(update_fields=["consequences_done_at"])
    audit.record(
        actor=ACTOR,
        action="margin.transition",
        target=transition,
        now=now,
        before={"classification": transition.from_classification},
        after={"classification": transition.to_classification, "book": transition.book, **done},
    )
    return 1


def _notify(t: MarginTransition, account: Account, *, now: datetime) -> bool:
    # A warning is news only on the way down; a book recovering into WARNING was told already.
    if t.to_classification != margin.WARNING or t.from_classification not in ("", margin.HEALTHY):
        return False
    notifications.notify_customer(
        customer=account.customer,
        template_code="margin_warning",
        channels_=(NotificationTemplate.Channel.SMS, NotificationTemplate.Channel.EMAIL),
        now=now,
        context={
            "account": account.external_id,
            "book": AccountMargin.Book(t.book).label.lower(),
            "equity": _money(t.equity),
            "maintenance_margin": _money(t.maintenance_margin),
            "warning_line": _money(t.warning_line),
        },
        related=f"margin_transition:{t.pk}",
    )
    return True


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):,}"


def _restrict(t: MarginTransition, account: Account, *, now: datetime) -> bool:
    source = restriction_source(account.pk, t.book)
    if t.to_classification not in RESTRICTED or t.from_classification in RESTRICTED:
        return False
    if account.customer.restrictions.filter(restrictions.in_force(now), source=source).exists():
        return False
    restrictions.add_restriction(
        customer=account.customer,
        code=RESTRICTION,
        rule=RULE,
        actor=ACTOR,
        now=now,
        reason=f"{account.external_id} ({t.book.lower()}): equity {_money(t.equity)} USD below maintenance "
        f"margin {_money(t.maintenance_margin)} USD",
        source=source,
    )
    return True


def _lift(t: MarginTransition, account: Account, *, now: datetime) -> bool:
    if t.to_classification in RESTRICTED or t.from_classification not in RESTRICTED:
        return False
    lifted = restrictions.lift_restrictions_from(
        source=restriction_source(account.pk, t.book),
        customer=account.customer,
        actor=ACTOR,
        reason=f"{account.external_id} ({t.book.lower()}) back above maintenance margin",
        now=now,
    )
    return lifted > 0


def _alert(t: MarginTransition, account: Account, *, now: datetime) -> bool:
    if t.to_classification != margin.LIQUIDATION:
        return False
    _, created = services.open_alert(
        rule=ALERT_RULE,
        severity=Alert.Severity.CRITICAL,
        customer=account.customer,
        account=account,
        summary=f"{account.external_id} ({t.book.lower()}): a position's mark crossed its liquidation price",
        dedup_key=f"{ALERT_RULE}:{t.pk}",
        actor=ACTOR,
        now=now,
        details={"equity": t.equity, "maintenance_margin": t.maintenance_margin, "book": t.book},
    )
    return created


# ---- the trigger ----------------------------------------------------------------------------------------------------
QUEUED_KEY = "margin:remargin-queued"


def request_remargin() -> None:
    """Queue one re-margin run after a mark-price batch commits; batches arriving before it starts share it."""
    from backoffice.redis_client import get_redis, key
    from trading_risk import tasks

    try:
        first = get_redis().set(key(QUEUED_KEY), "1", nx=True, ex=60)
    except Exception:  # Redis down: queue anyway, a redundant run only costs time
        logger.warning("margin: Redis unavailable, queueing a re-margin run without coalescing")
        first = True
    if not first:
        return
    try:
        tasks.remargin.delay()
    except Exception:  # the prices are stored; a broker outage must not fail the request (beat re-margins too)
        logger.exception("margin: could not queue a re-margin run")
        clear_queued_flag()


def clear_queued_flag() -> None:
    from backoffice.redis_client import get_redis, key

    try:
        get_redis().delete(key(QUEUED_KEY))
    except Exception:
        logger.warning("margin: Redis unavailable, could not clear the queued flag")
