"""Customers and accounts from the exchange, their security events, and what each account may do."""

import ipaddress
from datetime import date
from typing import Annotated, Literal

import msgspec
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import restrictions, rules, security, services
from accounts.models import Account, Customer
from backoffice.api import (
    ERROR_SCHEMA,
    STANDARD_ERRORS,
    ApiError,
    Id,
    Item,
    ItemSpec,
    Timestamp,
    decode_batch,
    decode_object,
    field_errors,
    has_scope,
    path_id,
    struct_schema,
)
from backoffice.api_views import LeanApiView
from backoffice.audit import actor_from_request
from backoffice.errors import NotFound


class CustomerIn(Item):
    type: Literal["individual", "corporate", "market_maker"]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    country: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    phone: Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9][0-9 ()-]{3,30}$")]
    date_of_birth: date | None = None
    kyc_level: Annotated[int, msgspec.Meta(ge=0, le=3)] | msgspec.UnsetType = msgspec.UNSET


class AccountIn(Item):
    customer_id: Id
    kind: Literal["spot", "margin", "futures"]


def customer_out(customer: Customer) -> dict:
    return {
        "customer_id": customer.external_id,
        "type": customer.type.lower(),
        "name": customer.name,
        "country": customer.country,
        "email": customer.email,
        "phone": customer.phone,
        "date_of_birth": customer.date_of_birth.isoformat() if customer.date_of_birth else None,
        "kyc_level": customer.kyc_level,
    }


def account_out(account: Account) -> dict:
    return {
        "account_id": account.external_id,
        "customer_id": account.customer.external_id,
        "kind": account.kind.lower(),
    }


class PutCustomerApi(APIView):
    permission_classes = [has_scope("reference")]

    @extend_schema(
        request=struct_schema(CustomerIn),
        responses={200: dict, 201: dict, **STANDARD_ERRORS},
        summary="Create or update a customer (the beneficial owner)",
    )
    def put(self, request, customer_id):
        external_id = path_id(customer_id, "customer_id")
        data = decode_object(request, CustomerIn)
        field_errors(_customer_errors(data, request))
        customer, created = services.upsert_customer(
            external_id=external_id,
            data=services.CustomerData(
                type=data.type.upper(),
                name=data.name.strip(),
                country=data.country,
                email=data.email,
                phone=data.phone,
                date_of_birth=data.date_of_birth,
            ),
            imported_kyc_level=None if data.kyc_level is msgspec.UNSET else data.kyc_level,
            actor=actor_from_request(request),
            now=timezone.now(),
        )
        return Response(customer_out(customer), status=201 if created else 200)


def _customer_errors(data: CustomerIn, request) -> list[tuple[str, str]]:
    errors = []
    try:
        validate_email(data.email)
    except DjangoValidationError:
        errors.append(("email", "Enter a valid e-mail address"))
    if not data.name.strip():
        errors.append(("name", "must not be blank"))
    if data.date_of_birth and data.date_of_birth >= timezone.now().date():
        errors.append(("date_of_birth", "must be in the past"))
    if data.kyc_level is not msgspec.UNSET and "kyc_import" not in request.auth.scopes:
        raise ApiError("permission_denied", "Sending kyc_level needs the 'kyc_import' scope.", status_code=403)
    return errors


class PutAccountApi(APIView):
    permission_classes = [has_scope("reference")]

    @extend_schema(
        request=struct_schema(AccountIn),
        responses={200: dict, 201: dict, **STANDARD_ERRORS},
        summary="Create or update a trading account of a customer",
    )
    def put(self, request, account_id):
        external_id = path_id(account_id, "account_id")
        data = decode_object(request, AccountIn)
        account, created = services.upsert_account(
            external_id=external_id,
            customer_external_id=data.customer_id,
            kind=data.kind.upper(),
            actor=actor_from_request(request),
            now=timezone.now(),
        )
        return Response(account_out(account), status=201 if created else 200)


# ---- security events and restrictions ---------------------------------------------------------------
class SecurityEventIn(Item):
    event_id: Id
    type: Literal["login", "login_failed", "password_change", "device_added", "registration_attempt", "account_check"]
    ip: Annotated[str, msgspec.Meta(min_length=2, max_length=45)]
    device_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    at: Timestamp
    customer_id: Id | None = None
    cookie_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None


def _security_event_errors(item: SecurityEventIn):
    try:
        ipaddress.ip_address(item.ip)
    except ValueError:
        yield "ip", "Expected an IPv4 or IPv6 address"
    anonymous = item.type in ("registration_attempt", "account_check")
    if anonymous and item.customer_id is not None:
        yield "customer_id", f"must be absent for {item.type}"
    if not anonymous and item.customer_id is None:
        yield "customer_id", f"required for {item.type}"
    if item.type == "account_check" and item.cookie_id is None:
        yield "cookie_id", "required for account_check"


SECURITY_EVENT_SPEC = ItemSpec(
    struct=SecurityEventIn, key=lambda e: e.event_id, key_field="event_id", check=_security_event_errors
)
SECURITY_RESULT_SCHEMA = {
    "type": "object",
    "properties": {
        "accepted": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "event_id": {"type": "string"},
                    "actions": {"type": "array", "items": {"type": "string", "enum": list(rules.ACTION_ORDER)}},
                    "retry_after": {"type": "integer", "description": "seconds; with throttle"},
                },
                "required": ["event_id", "actions"],
            },
        },
    },
    "required": ["accepted", "duplicates", "results"],
}


class PostSecurityEventsApi(LeanApiView):
    permission_classes = [has_scope("events")]

    @extend_schema(
        request=struct_schema(SecurityEventIn, many=True),
        responses={200: SECURITY_RESULT_SCHEMA, **STANDARD_ERRORS},
        summary="Security events; answers per event with the actions the engine must take",
    )
    def post(self, request):
        items = decode_batch(request, SECURITY_EVENT_SPEC)
        events = [
            security.EventIn(
                event_id=e.event_id,
                type=e.type,
                ip=ipaddress.ip_address(e.ip).compressed,
                device_id=e.device_id,
                at=e.at,
                customer_id=e.customer_id,
                cookie_id=e.cookie_id or "",
            )
            for e in items
        ]
        results, accepted, duplicates = security.ingest_security_events(
            events=events, actor=actor_from_request(request), now=timezone.now()
        )
        return Response({"accepted": accepted, "duplicates": duplicates, "results": results})


RESTRICTIONS_SCHEMA = {
    "type": "object",
    "properties": {
        **{flag: {"type": "boolean"} for flag in ("can_trade", "can_open", "can_close", "can_withdraw", "reduce_only")},
        "reasons": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "rule": {"type": "string"},
                    "until": {"type": "string", "format": "date-time"},
                    "symbol": {"type": "string"},
                },
                "required": ["code", "rule"],
            },
        },
        "must_change_password": {"type": "boolean"},
    },
    "required": ["can_trade", "can_open", "can_close", "can_withdraw", "reduce_only", "reasons"],
}


class GetAccountRestrictionsApi(APIView):
    permission_classes = [has_scope("decisions")]

    @extend_schema(
        responses={200: RESTRICTIONS_SCHEMA, **STANDARD_ERRORS, 404: ERROR_SCHEMA},
        summary="What the account may do now, and why not",
    )
    def get(self, request, account_id):
        account = (
            Account.objects.select_related("customer").filter(external_id=path_id(account_id, "account_id")).first()
        )
        if account is None:
            raise NotFound("No such account.")
        return Response(restrictions.account_state(account, now=timezone.now()))


CHANGES_SCHEMA = {
    "type": "object",
    "properties": {
        "changes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "cursor": {"type": "string"},
                    "account_id": {"type": "string"},
                    "customer_id": {"type": "string"},
                    "change": {"type": "string", "enum": ["added", "lifted", "expired"]},
                    "at": {"type": "string", "format": "date-time"},
                    "restriction": {"type": "object"},
                    "restrictions": RESTRICTIONS_SCHEMA,
                },
            },
        },
        "next_cursor": {"type": "string", "description": "pass as ?after= on the next poll"},
        "has_more": {"type": "boolean"},
    },
}


class GetRestrictionChangesApi(APIView):
    permission_classes = [has_scope("decisions")]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "after", str, description="the next_cursor of the previous poll; absent: from the beginning"
            ),
            OpenApiParameter("limit", int, description="at most this many changes (1–10000, default 1000)"),
        ],
        responses={200: CHANGES_SCHEMA, **STANDARD_ERRORS},
        summary="Restriction changes since a cursor, oldest first",
    )
    def get(self, request):
        after = _whole_number(request.query_params.get("after", "0"), "after", maximum=2**63 - 1)
        limit = _whole_number(request.query_params.get("limit", "1000"), "limit", minimum=1, maximum=10_000)
        changes = restrictions.changes_after(after, limit=limit + 1)
        page = changes[:limit]
        return Response(
            {
                "changes": [_change_out(c) for c in page],
                "next_cursor": str(page[-1].pk if page else after),
                "has_more": len(changes) > limit,
            }
        )


def _whole_number(value: str, field: str, *, minimum: int = 0, maximum: int) -> int:
    if not value.isdigit() or not minimum <= int(value) <= maximum:
        raise ApiError(
            "invalid_request",
            f"{field} must be a whole number from {minimum} to {maximum}.",
            details=[{"field": field, "message": "invalid"}],
        )
    return int(value)


def _change_out(change) -> dict:
    r = change.restriction
    restriction = {"code": r.code, "rule": r.rule}
    if r.until:
        restriction["until"] = r.until.isoformat()
    if r.symbol:
        restriction["symbol"] = r.symbol
    return {
        "cursor": str(change.pk),
        "account_id": change.account.external_id,
        "customer_id": change.account.customer.external_id,
        "change": change.change.lower(),
        "at": change.at.isoformat(),
        "restriction": restriction,
        "restrictions": change.state,
    }
