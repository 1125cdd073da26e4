"""The matching engine's trading API: instruments and prices, trades and order events, pre-trade checks."""

from typing import Literal

import msgspec
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
    struct_schema,
)
from backoffice.api_views import LeanApiView
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


TRADE_SPEC = ItemSpec(struct=TradeItem, key=lambda t: t.trade_id, key_field="trade_id", check=_positive("price", "qty"))
ORDER_EVENT_SPEC = ItemSpec(
    struct=OrderEventItem, key=lambda e: e.event_id, key_field="event_id", check=_order_event_errors
)


class PostTradesApi(APIView):
    permission_classes = [has_scope("events")]

    @extend_schema(
        request=struct_schema(TradeItem, many=True),
        responses={200: BATCH_RESULT_SCHEMA, **STANDARD_ERRORS},
        summary="Trades, in batches of up to 10,000; idempotent on trade_id",
    )
    def post(self, request):
        items, columns = ingest.decode_trades(request, spec=TRADE_SPEC)
        accepted, duplicates = ingest.ingest_trades(trades=items, columns=columns, now=timezone.now())
        return Response({"accepted": accepted, "duplicates": duplicates})


class PostOrderEventsApi(APIView):
    permission_classes = [has_scope("events")]

    @extend_schema(
        request=struct_schema(OrderEventItem, many=True),
        responses={200: BATCH_RESULT_SCHEMA, **STANDARD_ERRORS},
        summary="Orders placed and cancelled, in batches of up to 10,000; idempotent on event_id",
    )
    def post(self, request):
        items, columns = ingest.decode_order_events(request, spec=ORDER_EVENT_SPEC)
        accepted, duplicates = ingest.ingest_order_events(events=items, columns=columns, now=timezone.now())
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


class PostPreTradeCheckApi(LeanApiView):
    permission_classes = [has_scope("decisions")]

    @extend_schema(
        request=struct_schema(PreTradeIn),
        responses={200: PRE_TRADE_SCHEMA, **STANDARD_ERRORS},
        summary="May this order be accepted now? Restrictions, halts, the new-listing price band and position limits",
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
