"""Withdrawal decisions for the engine, their current status, travel-rule export, and wallet data in.

Fail-closed: a decision never waits on Celery. If Redis or the worker is unavailable, or the destination
cannot be screened, the answer still comes back at once, as pending_review, never approved by default.
"""

from typing import Annotated, Literal

import msgspec
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
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
    Timestamp,
    decimal,
    decode_batch,
    decode_object,
    has_scope,
    path_id,
    struct_schema,
)
from backoffice.audit import actor_from_request
from backoffice.errors import InvalidInput, NotFound
from withdrawals import ivms101, services, wallets
from withdrawals.models import AssetNetwork, Withdrawal


class WithdrawalIn(Item):
    request_id: Id
    account_id: Id
    asset: AssetCode
    amount: DecimalString
    address: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    network: AssetCode
    requested_at: Timestamp
    travel_rule: ivms101.IdentityPayload | None = None


WITHDRAWAL_SCHEMA = {
    "type": "object",
    "properties": {
        "request_id": {"type": "string"},
        "status": {"type": "string", "enum": ["approved", "pending_review", "held", "rejected", "frozen"]},
        "hold_until": {"type": "string", "format": "date-time", "description": "only while held for a large amount"},
        "reasons": {"type": "array", "items": {"type": "string"}, "description": "the contract's reason codes"},
        "rules": {
            "type": "array",
            "items": {"type": "string"},
            "description": "every rule that fired, including approval_tier, manual_confirmation, "
            "screening_unavailable and infrastructure_degraded (fail-closed)",
        },
        "approvals_required": {"type": "integer"},
        "paid_out_at": {"type": "string", "format": "date-time"},
    },
    "required": ["request_id", "status", "reasons"],
}


def withdrawal_out(w: Withdrawal, *, now=None) -> dict:
    """The answer body; with `now`, the status as it stands then (GET), without it the decision as made (POST)."""
    out = {
        "request_id": w.request_id,
        "status": w.api_status(now),
        "reasons": w.reasons,
        "rules": [r["rule"] for r in w.rules],
        "approvals_required": w.required_approvals,
    }
    if w.status == Withdrawal.Status.HELD and w.hold_until and not (now and w.hold_ended(now)):
        out["hold_until"] = w.hold_until.isoformat()
    if w.sent_at:
        out["paid_out_at"] = w.sent_at.isoformat()
    return out


class PostWithdrawalApi(APIView):
    permission_classes = [has_scope("withdrawals")]

    @extend_schema(
        request=struct_schema(WithdrawalIn),
        responses={201: WITHDRAWAL_SCHEMA, 200: WITHDRAWAL_SCHEMA, **STANDARD_ERRORS},
        summary="Decide a withdrawal at once (201; the same request again: 200 with the same answer)",
        description="Bad input (malformed address, unknown asset or network, too many decimals for the asset, "
        "zero amount, invalid IVMS101) is a 400 and nothing is stored; a value that cannot be priced "
        "is a 400; the same request_id with a different payload is a 409. If Redis or the Celery "
        "worker is down the decision still comes back, failing closed: pending_review with the rule "
        "infrastructure_degraded, never approved.",
    )
    def post(self, request):
        data = decode_object(request, WithdrawalIn)
        now = timezone.now()
        withdrawal, created = services.request_withdrawal(
            request=services.WithdrawalRequest(
                request_id=data.request_id,
                account_id=data.account_id,
                asset=data.asset,
                network=data.network,
                amount=decimal(data.amount),
                address=data.address,
                requested_at=data.requested_at,
                travel_rule=msgspec.to_builtins(data.travel_rule) if data.travel_rule else None,
            ),
            actor=actor_from_request(request),
            now=now,
        )
        return Response(withdrawal_out(withdrawal), status=201 if created else 200)


def _withdrawal(request_id: str) -> Withdrawal:
    found = (
        Withdrawal.objects.select_related("asset_network").filter(request_id=path_id(request_id, "request_id")).first()
    )
    if found is None:
        raise NotFound("No withdrawal with this request_id.")
    return found


class GetWithdrawalApi(APIView):
    permission_classes = [has_scope("withdrawals")]

    @extend_schema(responses={200: WITHDRAWAL_SCHEMA, **STANDARD_ERRORS}, summary="A withdrawal's current status")
    def get(self, request, request_id):
        return Response(withdrawal_out(_withdrawal(request_id), now=timezone.now()))


class GetTravelRuleApi(APIView):
    permission_classes = [has_scope("withdrawals")]

    @extend_schema(
        parameters=[
            OpenApiParameter("version", enum=["101", "101.2023"], description="IVMS101 edition (default 101)"),
            OpenApiParameter("envelope", enum=["none", "trp"], description="bare IVMS101 or a TRP inquiry"),
            OpenApiParameter("callback", description="TRP callback URL (envelope=trp)"),
        ],
        responses={200: dict, **STANDARD_ERRORS},
        summary="The withdrawal's travel-rule data as the message a counterparty VASP expects",
    )
    def get(self, request, request_id):
        w = _withdrawal(request_id)
        if not w.travel_rule:
            raise NotFound("This withdrawal has no travel-rule data.")
        version = request.query_params.get("version", "101")
        if version not in ("101", "101.2023"):
            raise InvalidInput("version is 101 or 101.2023.", details=[{"field": "version", "message": "unknown"}])
        message = ivms101.message(w.travel_rule, version=version)
        if request.query_params.get("envelope") == "trp":
            message = ivms101.trp_inquiry(
                message,
                asset=w.asset_network.asset,
                amount=f"{w.amount.normalize():f}",
                callback=request.query_params.get("callback", ""),
            )
        return Response(message)


ASSETS_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "asset": {"type": "string"},
            "network": {"type": "string"},
            "decimals": {"type": "integer"},
            "withdrawals_suspended": {"type": "boolean"},
            "deposits_suspended": {"type": "boolean"},
            "network_fee": {"type": "string"},
        },
    },
}


class GetAssetsApi(APIView):
    permission_classes = [has_scope("withdrawals")]

    @extend_schema(
        responses={200: ASSETS_SCHEMA, **STANDARD_ERRORS},
        summary="Assets per network: precision, network fee, and whether deposits or withdrawals are suspended",
    )
    def get(self, request):
        rows = AssetNetwork.objects.order_by("asset", "network")
        return Response(
            [
                {
                    "asset": a.asset,
                    "network": a.network,
                    "decimals": a.decimals,
                    "withdrawals_suspended": a.withdrawals_suspended,
                    "deposits_suspended": a.deposits_suspended,
                    "network_fee": f"{a.network_fee.normalize():f}",
                }
                for a in rows
            ]
        )


# ---- wallet data from custody ---------------------------------------------------------------------------
WalletName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class WalletBalanceIn(Item):
    wallet: WalletName
    balance: DecimalString
    at: Timestamp


class WalletFlowIn(Item):
    flow_id: Id
    wallet: WalletName
    direction: Literal["in", "out"]
    amount: DecimalString
    at: Timestamp
    tx_hash: Annotated[str, msgspec.Meta(max_length=128)] = ""
    request_id: Id | None = None


def _positive(item):
    if decimal(item.amount) <= 0:
        yield "amount", "must be more than zero"


BALANCE_SPEC = ItemSpec(struct=WalletBalanceIn, key=lambda i: (i.wallet, i.at), key_field="at")
FLOW_SPEC = ItemSpec(struct=WalletFlowIn, key=lambda i: i.flow_id, key_field="flow_id", check=_positive)


class PostWalletBalancesApi(APIView):
    permission_classes = [has_scope("events")]

    @extend_schema(
        request=struct_schema(WalletBalanceIn, many=True),
        responses={200: BATCH_RESULT_SCHEMA, **STANDARD_ERRORS},
        summary="Wallet balance snapshots; hot wallets outside their band raise an alert",
    )
    def post(self, request):
        items = decode_batch(request, BALANCE_SPEC)
        accepted, duplicates = wallets.record_balances(
            items=[wallets.BalanceIn(wallet=i.wallet, balance=decimal(i.balance), at=i.at) for i in items],
            actor=actor_from_request(request),
            now=timezone.now(),
        )
        return Response({"accepted": accepted, "duplicates": duplicates})


class PostWalletFlowsApi(APIView):
    permission_classes = [has_scope("events")]

    @extend_schema(
        request=struct_schema(WalletFlowIn, many=True),
        responses={200: BATCH_RESULT_SCHEMA, **STANDARD_ERRORS},
        summary="Wallet flows on chain; outflows name the withdrawal they pay",
    )
    def post(self, request):
        items = decode_batch(request, FLOW_SPEC)
        accepted, duplicates = wallets.record_flows(
            items=[
                wallets.FlowIn(
                    flow_id=i.flow_id,
                    wallet=i.wallet,
                    direction=i.direction.upper(),
                    amount=decimal(i.amount),
                    at=i.at,
                    tx_hash=i.tx_hash,
                    request_id=i.request_id or "",
                )
                for i in items
            ],
            actor=actor_from_request(request),
            now=timezone.now(),
        )
        return Response({"accepted": accepted, "duplicates": duplicates})
