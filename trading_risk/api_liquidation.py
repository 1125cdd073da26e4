"""The engine's liquidation API: the queue it polls, the ADL ranking, and the liquidation fills it reports."""

import re
from typing import Literal

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from backoffice.api import (
    STANDARD_ERRORS,
    ApiError,
    DecimalString,
    Id,
    Item,
    ItemSpec,
    Symbol,
    Timestamp,
    decimal,
    decode_batch,
    has_scope,
    struct_schema,
)
from backoffice.audit import actor_from_request
from backoffice.errors import NotFound
from trading_risk import liquidation
from trading_risk import liquidation_selectors as selectors
from trading_risk.models import Instrument

_DEFAULT_LIMIT, _MAX_LIMIT = 1000, 10_000
_STRING = {"type": "string"}
_DECIMAL = {"type": "string", "description": "decimal string"}


_SYMBOL = re.compile(r"[A-Z0-9._-]{1,32}")


def _symbol(value: str) -> str:
    if not _SYMBOL.fullmatch(value):
        raise ApiError(
            "invalid_request",
            "The symbol is invalid.",
            details=[{"field": "symbol", "message": "Expected an upper-case symbol"}],
        )
    return value


def _positive(*names: str):
    def check(item):
        for name in names:
            if decimal(getattr(item, name)) <= 0:
                yield name, "must be greater than zero"

    return check


def _whole_number(request, field: str, default: int, *, minimum: int, maximum: int) -> int:
    value = request.query_params.get(field, str(default))
    if not value.isdigit() or not minimum <= int(value) <= maximum:
        raise ApiError(
            "invalid_request",
            f"{field} must be a whole number from {minimum} to {maximum}.",
            details=[{"field": field, "message": "invalid"}],
        )
    return int(value)


def _query_symbol(request) -> str | None:
    value = request.query_params.get("symbol")
    return None if value is None else _symbol(value)


# ---- the liquidation queue ---------------------------------------------------------------------------
QUEUE_ITEM_SCHEMA = {
    "type": "object",
    "properties": {
        "cursor": _STRING,
        "account_id": _STRING,
        "symbol": _STRING,
        "side": {"type": "string", "enum": ["long", "short"]},
        "qty": _DECIMAL,
        "entry_price": _DECIMAL,
        "margin": _DECIMAL,
        "liquidation_price": _DECIMAL,
        "bankruptcy_price": _DECIMAL,
        "mark_price": _DECIMAL,
        "mark_at": {"type": "string", "format": "date-time"},
        "past_by": {**_DECIMAL, "description": "how far the mark is past the liquidation price (price units, ≥ 0)"},
        "past_by_ratio": {**_DECIMAL, "description": "past_by ÷ liquidation_price"},
        "position_at": {"type": "string", "format": "date-time"},
    },
}
QUEUE_SCHEMA = {
    "type": "object",
    "properties": {
        "positions": {"type": "array", "items": QUEUE_ITEM_SCHEMA},
        "next_cursor": {"type": "string", "description": "pass as ?after= for the next page"},
        "has_more": {"type": "boolean"},
    },
    "required": ["positions", "next_cursor", "has_more"],
}


def _queue_item(entry: selectors.QueueEntry) -> dict:
    p, mark = entry.position, entry.mark
    return {
        "cursor": str(p.pk),
        "account_id": p.account.external_id,
        "symbol": p.instrument.symbol,
        "side": p.side.lower(),
        "qty": str(p.qty),
        "entry_price": str(p.entry_price),
        "margin": str(p.margin),
        "liquidation_price": str(p.liquidation_price),
        "bankruptcy_price": None if p.bankruptcy_price is None else str(p.bankruptcy_price),
        "mark_price": str(mark.price),
        "mark_at": mark.at.isoformat(),
        "past_by": str(entry.past_by),
        "past_by_ratio": str(entry.past_by_ratio.quantize(selectors.SCORE_PLACES)),
        "position_at": p.at.isoformat(),
    }


class GetLiquidationQueueApi(APIView):
    permission_classes = [has_scope("decisions")]

    @extend_schema(
        parameters=[
            OpenApiParameter("symbol", str, description="one symbol's queue; absent: every symbol"),
            OpenApiParameter("after", str, description="the next_cursor of the previous page; absent: from the start"),
            OpenApiParameter("limit", int, description="at most this many positions (1–10000, default 1000)"),
        ],
        responses={200: QUEUE_SCHEMA, **STANDARD_ERRORS},
        summary="Positions whose latest mark has crossed their liquidation price",
    )
    def get(self, request):
        symbol = _query_symbol(request)
        after = _whole_number(request, "after", 0, minimum=0, maximum=2**63 - 1)
        limit = _whole_number(request, "limit", _DEFAULT_LIMIT, minimum=1, maximum=_MAX_LIMIT)
        entries = selectors.liquidation_queue(symbol=symbol, after=after, limit=limit + 1)
        page = entries[:limit]
        return Response(
            {
                "positions": [_queue_item(e) for e in page],
                "next_cursor": str(page[-1].position.pk if page else after),
                "has_more": len(entries) > limit,
            }
        )


# ---- ADL ranking -------------------------------------------------------------------------------------
RANKED_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "rank": {"type": "integer"},
            "account_id": _STRING,
            "position_id": {"type": "integer"},
            "qty": _DECIMAL,
            "score": {**_DECIMAL, "description": "PnL% × effective leverage (÷ when losing)"},
            "quintile": {"type": "integer", "minimum": 1, "maximum": 5},
        },
    },
}
RANKING_SCHEMA = {
    "type": "object",
    "properties": {
        "symbol": _STRING,
        "mark_price": _DECIMAL,
        "mark_at": {"type": "string", "format": "date-time"},
        "long": RANKED_SCHEMA,
        "short": RANKED_SCHEMA,
    },
}


class GetAdlRankingApi(APIView):
    permission_classes = [has_scope("decisions")]

    @extend_schema(
        parameters=[OpenApiParameter("limit", int, description="the top this many per side (1–10000, default 1000)")],
        responses={200: RANKING_SCHEMA, 404: STANDARD_ERRORS[400], **STANDARD_ERRORS},
        summary="The auto-deleveraging queue of both sides at the latest mark, highest score first",
    )
    def get(self, request, symbol):
        symbol = _symbol(symbol)
        limit = _whole_number(request, "limit", _DEFAULT_LIMIT, minimum=1, maximum=_MAX_LIMIT)
        instrument = Instrument.objects.filter(symbol=symbol).first()
        if instrument is None:
            raise NotFound(f"No instrument {symbol}.")
        mark = selectors.latest_marks(symbols=[symbol]).get(instrument.pk)
        if mark is None:
            raise NotFound(f"No mark price for {symbol} yet; send /prices/ first.")
        sides = {
            side.lower(): selectors.ranking_snapshot(
                selectors.adl_ranking(instrument_id=instrument.pk, side=side, mark=mark.price)[:limit]
            )
            for side in (selectors.LONG, selectors.SHORT)
        }
        return Response({"symbol": symbol, "mark_price": str(mark.price), "mark_at": mark.at.isoformat(), **sides})


# ---- liquidation fills in ----------------------------------------------------------------------------
class LiquidationItem(Item):
    liquidation_id: Id
    account_id: Id
    symbol: Symbol
    side: Literal["long", "short"]
    qty: DecimalString
    bankruptcy_price: DecimalString
    fill_price: DecimalString
    at: Timestamp


LIQUIDATION_SPEC = ItemSpec(
    struct=LiquidationItem,
    key=lambda i: i.liquidation_id,
    key_field="liquidation_id",
    check=_positive("qty", "bankruptcy_price", "fill_price"),
)
LIQUIDATION_RESULTS_SCHEMA = {
    "type": "object",
    "properties": {
        "accepted": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "liquidation_id": _STRING,
                    "insurance_fund": {
                        "type": "object",
                        "properties": {"asset": _STRING, "change": _DECIMAL, "balance_after": _DECIMAL},
                    },
                    "adl": {
                        "type": "object",
                        "nullable": True,
                        "description": "present when the fund could not cover the shortfall: deleverage these",
                        "properties": {
                            "side": {"type": "string", "enum": ["long", "short"]},
                            "qty": _DECIMAL,
                            "price": _DECIMAL,
                            "allocations": {
                                "type": "array",
                                "items": {"type": "object", "properties": {"account_id": _STRING, "qty": _DECIMAL}},
                            },
                            "unallocated_qty": _DECIMAL,
                        },
                    },
                },
            },
        },
    },
    "required": ["accepted", "duplicates", "results"],
}


class PostLiquidationsApi(APIView):
    permission_classes = [has_scope("events")]

    @extend_schema(
        request=struct_schema(LiquidationItem, many=True),
        responses={200: LIQUIDATION_RESULTS_SCHEMA, **STANDARD_ERRORS},
        summary="Liquidation fills; each pays into or draws from the insurance fund, or is deleveraged",
    )
    def post(self, request):
        items = decode_batch(request, LIQUIDATION_SPEC)
        results, accepted = liquidation.record_liquidations(
            items=[_liquidation_in(i) for i in items], actor=actor_from_request(request), now=timezone.now()
        )
        return Response({"accepted": accepted, "duplicates": len(items) - accepted, "results": results})


def _liquidation_in(item: LiquidationItem) -> liquidation.LiquidationIn:
    return liquidation.LiquidationIn(
        liquidation_id=item.liquidation_id,
        account_id=item.account_id,
        symbol=item.symbol,
        side=item.side.upper(),
        qty=decimal(item.qty),
        bankruptcy_price=decimal(item.bankruptcy_price),
        fill_price=decimal(item.fill_price),
        at=item.at,
    )
