"""Reference data from the exchange: instruments and prices."""

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
from backoffice.audit import actor_from_request
from trading_risk import services
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
