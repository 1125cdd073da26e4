"""The matching engine's position and balance snapshots, and an account's margin as the back office sees it."""

from typing import Literal

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from backoffice.api import (
    BATCH_RESULT_SCHEMA,
    STANDARD_ERRORS,
    AssetCode,
    DecimalString,
    Id,
    Item,
    ItemSpec,
    Symbol,
    Timestamp,
    decimal,
    decode_batch,
    has_scope,
    path_id,
    struct_schema,
)
from trading_risk import margin_selectors, positions


class PositionItem(Item):
    """A position snapshot; the latest per (account, symbol) is the position. qty 0 closes it.

    qty is in base units for a linear contract and in contracts for an inverse one; margin is the position's
    isolated margin in the settlement currency (quote for linear, base coin for inverse)."""

    account_id: Id
    symbol: Symbol
    side: Literal["long", "short"]
    qty: DecimalString
    entry_price: DecimalString
    margin: DecimalString
    at: Timestamp


class BalanceItem(Item):
    """A balance snapshot of one asset in one account."""

    account_id: Id
    asset: AssetCode
    total: DecimalString
    available: DecimalString
    at: Timestamp


def _position_errors(item: PositionItem):
    if decimal(item.qty) > 0 and decimal(item.entry_price) == 0:
        yield "entry_price", "must be greater than zero for an open position"


def _balance_errors(item: BalanceItem):
    if decimal(item.available) > decimal(item.total):
        yield "available", "must not exceed total"


POSITION_SPEC = ItemSpec(
    struct=PositionItem, key=lambda p: (p.account_id, p.symbol, p.at), key_field="at", check=_position_errors
)
BALANCE_SPEC = ItemSpec(
    struct=BalanceItem, key=lambda b: (b.account_id, b.asset, b.at), key_field="at", check=_balance_errors
)


class PostPositionsApi(APIView):
    permission_classes = [has_scope("events")]

    @extend_schema(
        request=struct_schema(PositionItem, many=True),
        responses={200: BATCH_RESULT_SCHEMA, **STANDARD_ERRORS},
        summary="Position snapshots; idempotent on (account_id, symbol, at); an older snapshot never replaces a newer",
    )
    def post(self, request):
        items = decode_batch(request, POSITION_SPEC)
        accepted, duplicates = positions.ingest_positions(positions=items, now=timezone.now())
        return Response({"accepted": accepted, "duplicates": duplicates})


class PostBalancesApi(APIView):
    permission_classes = [has_scope("events")]

    @extend_schema(
        request=struct_schema(BalanceItem, many=True),
        responses={200: BATCH_RESULT_SCHEMA, **STANDARD_ERRORS},
        summary="Balance snapshots; idempotent on (account_id, asset, at); an older snapshot never replaces a newer",
    )
    def post(self, request):
        items = decode_batch(request, BALANCE_SPEC)
        accepted, duplicates = positions.ingest_balances(balances=items, now=timezone.now())
        return Response({"accepted": accepted, "duplicates": duplicates})


class GetAccountMarginApi(APIView):
    permission_classes = [has_scope("decisions")]

    @extend_schema(
        responses={200: dict, **STANDARD_ERRORS},
        summary="An account's margin per book at the current mark: equity, MM, IM, warning line, class, positions",
    )
    def get(self, request, account_id):
        detail = margin_selectors.account_margin_detail(path_id(account_id, "account_id"), now=timezone.now())
        return Response(detail)
