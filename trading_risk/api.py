"""The matching engine's trading API: instruments and prices, trades and order events, pre-trade checks."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Any, Literal

import msgspec
from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from backoffice.api import (
    BATCH_RESULT_SCHEMA,
    STANDARD_ERRORS,
    ApiError,
    AssetCode,
    DecimalString,
    Id,
    Item,
    ItemSpec,
    Symbol,
    Timestamp,
    decimal,
    decode_batch,
    decode_object,
    field_errors,
    has_scope,
    request_body,
    struct_schema,
)
from backoffice.audit import actor_from_request
from trading_risk import ingest, pretrade, services
from trading_risk.models import Instrument

_SYMBOL = msgspec.json.Decoder(Symbol)


class InstrumentIn(Item):
    kind: Literal["spot", "perpetual", "future"]
    base: AssetCode
    quote: AssetCode
    listed_at: Timestamp
    expires_at: Timestamp | None = None


class PriceIn(Item):
    """Either an asset's USD price (asset, usd, at) or an instrument's prices (symbol, index_price, mark_price, at)."""

    at: Timestamp
    asset: AssetCode | None = None
    usd: DecimalString | None = None
    symbol: Symbol | None = None
    index_price: DecimalString | None = None
    mark_price: DecimalString | None = None


def instrument_out(instrument: Instrument) -> dict:
    return {
        "symbol": instrument.symbol,
        "kind": instrument.kind.lower(),
        "base": instrument.base,
        "quote": instrument.quote,
        "listed_at": instrument.listed_at.isoformat(),
        "expires_at": instrument.expires_at.isoformat() if instrument.expires_at else None,
    }


class PutInstrumentApi(APIView):
    permission_classes = [has_scope("reference")]

    @extend_schema(
        request=struct_schema(InstrumentIn),
        responses={200: dict, 201: dict, **STANDARD_ERRORS},
        summary="Create or update an instrument; listed_at starts the new-listing price band",
    )
    def put(self, request, symbol):
        symbol = _path_symbol(symbol)
        body = decode_object(request, InstrumentIn)
        data = services.InstrumentData(
            kind=body.kind.upper(),
            base=body.base,
            quote=body.quote,
            listed_at=body.listed_at,
            expires_at=body.expires_at,
        )
        field_errors(services.check_instrument(data))
        instrument, created = services.upsert_instrument(
            symbol=symbol, data=data, actor=actor_from_request(request), now=timezone.now()
        )
        return Response(instrument_out(instrument), status=201 if created else 200)


def _path_symbol(value: str) -> str:
    try:
        return _SYMBOL.decode(msgspec.json.encode(value))
    except msgspec.ValidationError:
        raise ApiError(
            "invalid_request",
            "The symbol in the path is invalid.",
            details=[{"field": "symbol", "message": "Expected an upper-case symbol"}],
        ) from None


def _price_errors(item: PriceIn):
    asset_kind = item.asset is not None or item.usd is not None
    instrument_kind = item.symbol is not None or item.index_price is not None or item.mark_price is not None
    if asset_kind == instrument_kind:
        yield "asset", "send either asset and usd, or symbol, index_price and mark_price"
        return
    fields = ("asset", "usd") if asset_kind else ("symbol", "index_price", "mark_price")
    for name in fields:
        value = getattr(item, name)
        if value is None:
            yield name, "required"
        elif name != "asset" and name != "symbol" and decimal(value) <= 0:
            yield name, "must be greater than zero"


PRICE_SPEC = ItemSpec(struct=PriceIn, key=lambda p: (p.asset, p.symbol, p.at), key_field="at", check=_price_errors)


class PostPricesApi(APIView):
    permission_classes = [has_scope("reference")]

    @extend_schema(
        request=struct_schema(PriceIn, many=True),
        responses={200: BATCH_RESULT_SCHEMA, **STANDARD_ERRORS},
        summary="Reference prices: assets in USD, and instruments' index and mark prices",
    )
    def post(self, request):
        items = decode_batch(request, PRICE_SPEC)
        asset_prices, instrument_prices = _split_prices(items)
        accepted, duplicates = services.record_prices(
            asset_prices=asset_prices,
            instrument_prices=instrument_prices,
            actor=actor_from_request(request),
            now=timezone.now(),
        )
        return Response({"accepted": accepted, "duplicates": duplicates})


def _split_prices(items: list[PriceIn]):
    assets, instruments = [], []
    for i, p in enumerate(items):
        if p.asset is not None:
            assets.append((i, services.AssetPriceIn(p.asset, decimal(p.usd), p.at)))
        else:
            instruments.append(
                (i, services.InstrumentPriceIn(p.symbol, decimal(p.index_price), decimal(p.mark_price), p.at))
            )
    unknown = services.unknown_symbols({p.symbol for _, p in instruments})
    if unknown:
        raise ApiError(
            "invalid_request",
            "Prices for unknown instruments; nothing was stored.",
            details=[
                {"index": i, "field": "symbol", "message": "unknown instrument"}
                for i, p in instruments
                if p.symbol in unknown
            ],
        )
    return assets, instruments


# ---- events in: trades and order events -------------------------------------------------------------------
class TradeItem(Item):
    trade_id: Id
    symbol: Symbol
    price: DecimalString
    qty: DecimalString
    buy_account_id: Id
    sell_account_id: Id
    buy_order_id: Id
    sell_order_id: Id
    aggressor: Literal["buy", "sell"]
    executed_at: Timestamp


class OrderEventItem(Item):
    event_id: Id
    order_id: Id
    account_id: Id
    symbol: Symbol
    type: Literal["placed", "cancelled"]
    side: Literal["buy", "sell"]
    price: DecimalString
    qty: DecimalString
    at: Timestamp


def _positive(*names: str):
    # A string that already matched DECIMAL_PATTERN is zero exactly when only zeros and a dot remain
    # after stripping them; checked without building a Decimal, since this runs 20,000 times per batch.
    def check(item):
        for name in names:
            if not getattr(item, name).strip("0."):
                yield name, "must be greater than zero"

    return check


_order_event_errors = _positive("qty")


# ---- the fast path for the two hottest batches ------------------------------------------------------------
# Per-field regex constraints cost msgspec one `re` call per value (80,000 per batch of trades). Here the
# batch is decoded with plain strings and each kind of field is checked with one regex over all its values
# joined by newlines (the line count guards against a value smuggling a newline in). Anything wrong, and
# the batch goes through decode_batch, which names every bad item exactly as it always does.
_IDS = re.compile(r"(?:[A-Za-z0-9._:-]{1,64}\n)*[A-Za-z0-9._:-]{1,64}")
_DECIMALS = re.compile(r"(?:[0-9]{1,20}(?:\.[0-9]{1,18})?\n)*[0-9]{1,20}(?:\.[0-9]{1,18})?")
_SYMBOLS = re.compile(r"(?:[A-Z0-9._-]{1,32}\n)*[A-Z0-9._-]{1,32}")


class _RawTrade(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    trade_id: str
    symbol: str
    price: str
    qty: str
    buy_account_id: str
    sell_account_id: str
    buy_order_id: str
    sell_order_id: str
    aggressor: Literal["buy", "sell"]
    executed_at: Timestamp


class _RawOrderEvent(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    event_id: str
    order_id: str
    account_id: str
    symbol: str
    type: Literal["placed", "cancelled"]
    side: Literal["buy", "sell"]
    price: str
    qty: str
    at: Timestamp


@dataclass(frozen=True)
class FastSpec:
    spec: ItemSpec
    decoder: msgspec.json.Decoder
    fields: tuple[tuple[re.Pattern, Callable[[Any], tuple]], ...]
    positive: Callable[[Any], tuple]  # the decimal fields that must be above zero (spec.check's rule)
    key: Callable[[Any], str]  # the natural ID (spec.key)


def _fields(*names: str) -> Callable[[Any], tuple]:
    getter = attrgetter(*names)
    return getter if len(names) > 1 else lambda item: (getter(item),)


_ZERO = re.compile(r"^[0.]+$", re.MULTILINE)


def decode_fast(request, fast: FastSpec) -> list:
    """A batch as items with the same fields as `fast.spec` gives, or its 400 (nothing is stored either way)."""
    try:
        items = fast.decoder.decode(request_body(request))
    except (msgspec.ValidationError, msgspec.DecodeError):
        items = None
    if items is None or not _all_valid(items, fast):
        return decode_batch(request, fast.spec)
    return items


def _all_valid(items: list, fast: FastSpec) -> bool:
    if not 0 < len(items) <= settings.API_MAX_BATCH_ITEMS:
        return False
    for pattern, getter in fast.fields:
        values = list(chain.from_iterable(map(getter, items)))
        text = "\n".join(values)
        if text.count("\n") != len(values) - 1 or not pattern.fullmatch(text):
            return False
    if _ZERO.search("\n".join(chain.from_iterable(map(fast.positive, items)))):
        return False
    return len(set(map(fast.key, items))) == len(items)


TRADE_SPEC = ItemSpec(struct=TradeItem, key=lambda t: t.trade_id, key_field="trade_id", check=_positive("price", "qty"))
ORDER_EVENT_SPEC = ItemSpec(
    struct=OrderEventItem, key=lambda e: e.event_id, key_field="event_id", check=_order_event_errors
)
FAST_TRADES = FastSpec(
    TRADE_SPEC,
    msgspec.json.Decoder(list[_RawTrade]),
    (
        (_IDS, _fields("trade_id", "buy_account_id", "sell_account_id", "buy_order_id", "sell_order_id")),
        (_DECIMALS, _fields("price", "qty")),
        (_SYMBOLS, _fields("symbol")),
    ),
    positive=_fields("price", "qty"),
    key=attrgetter("trade_id"),
)
FAST_ORDER_EVENTS = FastSpec(
    ORDER_EVENT_SPEC,
    msgspec.json.Decoder(list[_RawOrderEvent]),
    (
        (_IDS, _fields("event_id", "order_id", "account_id")),
        (_DECIMALS, _fields("price", "qty")),
        (_SYMBOLS, _fields("symbol")),
    ),
    positive=_fields("qty"),
    key=attrgetter("event_id"),
)


class PostTradesApi(APIView):
    permission_classes = [has_scope("events")]

    @extend_schema(
        request=struct_schema(TradeItem, many=True),
        responses={200: BATCH_RESULT_SCHEMA, **STANDARD_ERRORS},
        summary="Trades, in batches of up to 10,000; idempotent on trade_id",
    )
    def post(self, request):
        items = decode_fast(request, FAST_TRADES)
        accepted, duplicates = ingest.ingest_trades(trades=items, now=timezone.now())
        return Response({"accepted": accepted, "duplicates": duplicates})


class PostOrderEventsApi(APIView):
    permission_classes = [has_scope("events")]

    @extend_schema(
        request=struct_schema(OrderEventItem, many=True),
        responses={200: BATCH_RESULT_SCHEMA, **STANDARD_ERRORS},
        summary="Orders placed and cancelled, in batches of up to 10,000; idempotent on event_id",
    )
    def post(self, request):
        items = decode_fast(request, FAST_ORDER_EVENTS)
        accepted, duplicates = ingest.ingest_order_events(events=items, now=timezone.now())
        return Response({"accepted": accepted, "duplicates": duplicates})


# ---- decisions out: pre-trade checks ------------------------------------------------------------------
class PreTradeIn(Item):
    account_id: Id
    symbol: Symbol
    side: Literal["buy", "sell"]
    qty: DecimalString
    price: DecimalString
    reduce_only: bool = False


PRE_TRADE_SCHEMA = {
    "type": "object",
    "properties": {"allowed": {"type": "boolean"}, "reasons": {"type": "array", "items": {"type": "string"}}},
    "required": ["allowed", "reasons"],
}


class PostPreTradeCheckApi(APIView):
    permission_classes = [has_scope("decisions")]

    @extend_schema(
        request=struct_schema(PreTradeIn),
        responses={200: PRE_TRADE_SCHEMA, **STANDARD_ERRORS},
        summary="May this order be accepted now? Restrictions, halts and the new-listing price band",
    )
    def post(self, request):
        body = decode_object(request, PreTradeIn)
        field_errors(list(_positive("qty", "price")(body)))
        order = pretrade.Order(
            account_id=body.account_id,
            symbol=body.symbol,
            side=body.side,
            qty=decimal(body.qty),
            price=decimal(body.price),
            reduce_only=body.reduce_only,
        )
        return Response(pretrade.check_order(order, now=timezone.now()))
