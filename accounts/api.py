"""Reference data from the exchange: customers and their accounts."""

from datetime import date
from typing import Annotated, Literal

import msgspec
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.models import Account, Customer
from backoffice.api import (
    STANDARD_ERRORS,
    ApiError,
    Id,
    Item,
    decode_object,
    field_errors,
    has_scope,
    path_id,
    struct_schema,
)
from backoffice.audit import actor_from_request


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
