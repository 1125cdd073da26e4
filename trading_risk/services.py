"""Writes to instruments and reference prices."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from backoffice import audit
from backoffice.bulk import insert_idempotent
from backoffice.errors import DomainError
from trading_risk.models import Alert, AssetPrice, Instrument, InstrumentPrice

INSTRUMENT_FIELDS = ("kind", "base", "quote", "listed_at", "expires_at")


class PriceConflict(DomainError):
    """A price for this moment was already received with a different value."""

    code = "idempotency_conflict"


@dataclass(frozen=True)
class InstrumentData:
    kind: str
    base: str
    quote: str
    listed_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class AssetPriceIn:
    asset: str
    usd: Decimal
    at: datetime


@dataclass(frozen=True)
class InstrumentPriceIn:
    symbol: str
    index_price: Decimal
    mark_price: Decimal
    at: datetime


@transaction.atomic
def upsert_instrument(
    *, symbol: str, data: InstrumentData, actor: audit.Actor, now: datetime
) -> tuple[Instrument, bool]:
    """Create or update an instrument; returns (instrument, created). Unchanged data writes nothing."""
    instrument = Instrument.objects.select_for_update(no_key=True).filter(symbol=symbol).first()
    before = audit.snapshot(instrument, INSTRUMENT_FIELDS) if instrument else None
    if instrument is None:
        instrument = Instrument(symbol=symbol, created_at=now)
    for name in INSTRUMENT_FIELDS:
        setattr(instrument, name, getattr(data, name))
    after = audit.snapshot(instrument, INSTRUMENT_FIELDS)
    if before == after:
        return instrument, False
    instrument.updated_at = now
    instrument.save()
    audit.record(
        actor=actor,
        action="instrument.create" if before is None else "instrument.update",
        target=instrument,
        now=now,
        before=before,
        after=after,
    )
    return instrument, before is None


@transaction.atomic
def record_prices(
    *,
    asset_prices: list[tuple[int, AssetPriceIn]],
    instrument_prices: list[tuple[int, InstrumentPriceIn]],
    actor: audit.Actor,
    now: datetime,
) -> tuple[int, int]:
    """Store a batch of reference prices (each item with its batch index); returns (accepted, duplicates).

    All or nothing: an unknown symbol is a 400 and a re-sent price with another value a 409, and then
    nothing of the batch is stored.
    """
    instrument_ids = _instrument_ids([p for _, p in instrument_prices])
    asset_rows = [(p.asset, p.at, p.usd, now) for _, p in asset_prices]
    instrument_rows = [(instrument_ids[p.symbol], p.at, p.index_price, p.mark_price, now) for _, p in instrument_prices]
    assets = insert_idempotent(
        table=AssetPrice._meta.db_table,
        columns=("asset", "at", "usd", "received_at"),
        rows=asset_rows,
        key_size=2,
        compare=(2,),
    )
    instruments = insert_idempotent(
        table=InstrumentPrice._meta.db_table,
        columns=("instrument_id", "at", "index_price", "mark_price", "received_at"),
        rows=instrument_rows,
        key_size=2,
        compare=(2, 3),
    )
    conflicts = [asset_prices[i][0] for i in assets.conflicts] + [
        instrument_prices[i][0] for i in instruments.conflicts
    ]
    if conflicts:
        raise PriceConflict(
            f"{len(conflicts)} price(s) were already received with a different value; nothing was stored.",
            details=[
                {"index": i, "field": "at", "message": "already received with a different value"}
                for i in sorted(conflicts)
            ],
        )
    accepted = assets.inserted + instruments.inserted
    duplicates = len(assets.duplicates) + len(instruments.duplicates)
    if instruments.inserted:
        from trading_risk import margin_engine

        transaction.on_commit(margin_engine.request_remargin)
    if accepted:
        audit.record(
            actor=actor,
            action="prices.ingest",
            target=("trading_risk.price_batch", now.isoformat()),
            now=now,
            after={
                "accepted": accepted,
                "duplicates": duplicates,
                "assets": sorted({p.asset for _, p in asset_prices}),
                "symbols": sorted(instrument_ids),
            },
        )
    return accepted, duplicates


def _instrument_ids(prices: list[InstrumentPriceIn]) -> dict[str, int]:
    symbols = {p.symbol for p in prices}
    return dict(Instrument.objects.filter(symbol__in=symbols).values_list("symbol", "pk"))


def unknown_symbols(symbols: set[str]) -> set[str]:
    """The symbols among these that are not instruments (for input validation)."""
    return symbols - set(Instrument.objects.filter(symbol__in=symbols).values_list("symbol", flat=True))


def check_instrument(data: InstrumentData) -> list[tuple[str, str]]:
    """Rules an instrument's fields must satisfy together."""
    errors = []
    if data.kind == Instrument.Kind.FUTURE and data.expires_at is None:
        errors.append(("expires_at", "a dated future needs expires_at"))
    if data.kind != Instrument.Kind.FUTURE and data.expires_at is not None:
        errors.append(("expires_at", "only a dated future expires"))
    if data.expires_at is not None and data.expires_at <= data.listed_at:
        errors.append(("expires_at", "must be after listed_at"))
    if data.base == data.quote:
        errors.append(("quote", "must differ from base"))
    return errors


@transaction.atomic
def open_alert(
    *,
    rule: str,
    severity: str,
    customer,
    summary: str,
    dedup_key: str,
    actor: audit.Actor,
    now: datetime,
    account=None,
    symbol: str = "",
    details: dict | None = None,
) -> tuple[Alert, bool]:
    """Open an alert for a person to review; the same dedup_key again returns the existing alert."""
    alert, created = Alert.objects.get_or_create(
        dedup_key=dedup_key,
        defaults={
            "rule": rule,
            "severity": severity,
            "customer": customer,
            "account": account,
            "symbol": symbol,
            "summary": summary[:300],
            "details": audit.jsonable(details or {}),
            "opened_at": now,
        },
    )
    if created:
        audit.record(
            actor=actor,
            action="alert.open",
            target=alert,
            now=now,
            after={"rule": rule, "severity": severity, "customer": customer.external_id, "summary": summary},
        )
    return alert, created
