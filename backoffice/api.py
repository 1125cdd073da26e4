"""The API base: bearer-token clients with scopes, the contract's error format, strict JSON, and batches.

Batches are decoded by msgspec straight from the request bytes into typed structs (no DRF serializer
per item). Only when that fast path fails is the batch decoded again item by item, so the 400 can list
every bad item as {"index", "field", "message"}.
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec
import orjson
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from django.urls import re_path
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, permissions
from rest_framework.authentication import BaseAuthentication
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response

from backoffice import api_clients
from backoffice.errors import DomainError

# ---- field types shared by every inbound item -------------------------------------------------------
ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
# Up to 20 integer and 18 fractional digits: what NUMERIC(38, 18) holds. No exponent, no sign, no NaN.
DECIMAL_PATTERN = r"^[0-9]{1,20}(\.[0-9]{1,18})?$"
SIGNED_DECIMAL_PATTERN = r"^-?[0-9]{1,20}(\.[0-9]{1,18})?$"

Id = Annotated[str, msgspec.Meta(pattern=ID_PATTERN, description="1–64 characters of [A-Za-z0-9._:-]")]
DecimalString = Annotated[str, msgspec.Meta(pattern=DECIMAL_PATTERN, description="a non-negative decimal string")]
SignedDecimalString = Annotated[str, msgspec.Meta(pattern=SIGNED_DECIMAL_PATTERN, description="a decimal string")]
AssetCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9]{1,16}$", description="upper-case asset code")]
Symbol = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9._-]{1,32}$", description="upper-case symbol")]
Timestamp = Annotated[datetime, msgspec.Meta(tz=True, description="RFC 3339 with an offset")]


class Item(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Base for inbound items: unknown fields are refused so typos are not silently lost."""


# ---- errors ------------------------------------------------------------------------------------------
class ApiError(exceptions.APIException):
    """An error with the contract's {"error": {"code", "message", "details"}} body."""

    def __init__(self, code: str, message: str, *, status_code: int = 400, details: list | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.error_code = code
        self.details = details or []


def error_body(code: str, message: str, details: list | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or []}}


_DRF_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "invalid_token",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.Throttled: "throttled",
    exceptions.ParseError: "invalid_json",
    exceptions.ValidationError: "invalid_request",
}


def exception_handler(exc, context):
    """Turn every API error into the contract's format; domain refusals carry their own code."""
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, str(exc), exc.details), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = ApiError("payload_too_large", "The request body is too large.", status_code=413)
    if isinstance(exc, ApiError):
        return Response(error_body(exc.error_code, str(exc.detail), exc.details), status=exc.status_code)
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: let Django log it and answer 500
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    details = _flatten(exc.detail) if isinstance(exc, exceptions.ValidationError) else []
    message = "The request is invalid." if details else _first_message(exc.detail)
    response = Response(error_body(code, message, details), status=exc.status_code)
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    if getattr(exc, "wait", None):
        response["Retry-After"] = str(int(exc.wait))
    return response


def _flatten(detail, field: str = "") -> list[dict]:
    if isinstance(detail, dict):
        return [d for key, value in detail.items() for d in _flatten(value, f"{field}.{key}" if field else str(key))]
    if isinstance(detail, list):
        return [d for value in detail for d in _flatten(value, field)]
    return [{"field": field or None, "message": str(detail)}]


def _first_message(detail) -> str:
    if isinstance(detail, list | dict):
        return str(next(iter(detail.values() if isinstance(detail, dict) else detail), "Error"))
    return str(detail)


def json_error_view(status_code: int, code: str, message: str):
    def view(request, exception=None):
        return JsonResponse(error_body(code, message), status=status_code)

    return view


# ---- authentication and scopes -----------------------------------------------------------------------
class ApiTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token>` for API clients; staff sessions are never accepted on the API."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <token>'.")
        client = api_clients.client_for_token(token.strip())
        if client is None:
            raise exceptions.AuthenticationFailed("The token is not valid or has been revoked.")
        api_clients.note_use(client, now=timezone.now())
        return client, client

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = ApiTokenAuthentication
    name = "BearerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "an API client's token (manage.py create_api_client)",
        }


def has_scope(scope: str) -> type[permissions.BasePermission]:
    """A DRF permission: an API client holding `scope` (401 without a client, 403 without the scope)."""

    class HasScope(permissions.BasePermission):
        message = f"This token does not have the '{scope}' scope."

        def has_permission(self, request, view):
            client = request.auth
            if client is None or not getattr(client, "is_active", False):
                raise exceptions.NotAuthenticated("Send 'Authorization: Bearer <token>'.")
            return scope in client.scopes

    HasScope.__name__ = f"HasScope_{scope}"
    return HasScope


# ---- parsing and rendering ---------------------------------------------------------------------------
class StrictJSONParser(BaseParser):
    """JSON only, bounded in size, NaN and Infinity refused."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return orjson.loads(stream.read())
        except orjson.JSONDecodeError as exc:
            raise ApiError("invalid_json", f"The body is not valid JSON: {exc}") from None


class FastJSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return orjson.dumps(data, default=_encode_default)


def _encode_default(value):
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def request_body(request) -> bytes:
    """The raw body, refusing non-JSON and over-large requests before reading them."""
    content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiError("unsupported_media_type", "Send the body as application/json.", status_code=415)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > settings.API_MAX_BODY_BYTES:
        raise ApiError("payload_too_large", f"The body is over {settings.API_MAX_BODY_BYTES} bytes.", status_code=413)
    try:
        body = request.body
    except RequestDataTooBig:
        raise ApiError("payload_too_large", "The request body is too large.", status_code=413) from None
    if not body.strip():
        raise ApiError("invalid_json", "The body is empty.")
    return body


# ---- batches -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ItemSpec:
    """How one kind of inbound item is decoded and checked.

    `check(item)` returns (field, message) pairs for rules a type cannot express (positive amounts,
    a known instrument, …); `key(item)` is the item's natural ID, used to find duplicates in a batch.
    """

    struct: type[Item]
    key: Callable[[Any], Any]
    key_field: str
    check: Callable[[Any], Iterable[tuple[str, str]]] = lambda item: ()

    def decoder(self) -> msgspec.json.Decoder:
        return _decoders.setdefault(self.struct, msgspec.json.Decoder(list[self.struct]))


_decoders: dict[type, msgspec.json.Decoder] = {}
_LOCATION = re.compile(r" - at `\$(?:\[\d+\])?(?:\.(?P<field>[A-Za-z_]\w*))?[^`]*`$")
_NAMED_FIELD = re.compile(r"field `(?P<field>[^`]+)`")


def decode_batch(request, spec: ItemSpec) -> list:
    """The batch as typed items, or a 400 naming every bad item (nothing is stored either way)."""
    body = request_body(request)
    try:
        items = spec.decoder().decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise _batch_errors(body, spec) from None
    _check_size(len(items))
    errors = [
        {"index": i, "field": field, "message": message}
        for i, item in enumerate(items)
        for field, message in spec.check(item)
    ]
    errors += _duplicate_errors(items, spec)
    if errors:
        raise _invalid_batch(errors)
    return items


def decode_object(request, struct: type[Item]):
    """One JSON object as a typed struct, or a 400 naming the bad field."""
    body = request_body(request)
    try:
        return msgspec.json.decode(body, type=struct)
    except msgspec.ValidationError as exc:
        field, message = _describe(exc)
        raise ApiError(
            "invalid_request", "The request is invalid.", details=[{"field": field, "message": message}]
        ) from None
    except msgspec.DecodeError as exc:
        raise ApiError("invalid_json", f"The body is not valid JSON: {exc}") from None


_ID = re.compile(ID_PATTERN)


def path_id(value: str, field: str) -> str:
    """An ID taken from the URL, checked like IDs in bodies."""
    if not _ID.match(value):
        raise ApiError(
            "invalid_request",
            "The ID in the path is invalid.",
            details=[{"field": field, "message": "Expected an ID of 1–64 [A-Za-z0-9._:-]"}],
        )
    return value


def field_errors(errors: list[tuple[str, str]]) -> None:
    """Raise a 400 for (field, message) pairs found by checks after decoding, if there are any."""
    if errors:
        raise ApiError(
            "invalid_request", "The request is invalid.", details=[{"field": f, "message": m} for f, m in errors]
        )


def _check_size(count: int) -> None:
    if count == 0:
        raise ApiError("invalid_request", "The batch is empty.")
    if count > settings.API_MAX_BATCH_ITEMS:
        raise ApiError("batch_too_large", f"A batch holds at most {settings.API_MAX_BATCH_ITEMS} items, not {count}.")


def _batch_errors(body: bytes, spec: ItemSpec) -> ApiError:
    try:
        msgspec.json.decode(body)  # well-formed at all? (a typed decode stops at the first wrong type)
        raw_items = msgspec.json.decode(body, type=list[msgspec.Raw])
    except msgspec.ValidationError:
        return ApiError("invalid_request", "The body must be a JSON array of items.")
    except msgspec.DecodeError as exc:
        return ApiError("invalid_json", f"The body is not valid JSON: {exc}")
    _check_size(len(raw_items))
    errors, items = [], []
    single = msgspec.json.Decoder(spec.struct)
    for index, raw in enumerate(raw_items):
        try:
            item = single.decode(raw)
        except msgspec.ValidationError as exc:
            field, message = _describe(exc)
            errors.append({"index": index, "field": field, "message": message})
            items.append(None)
            continue
        items.append(item)
        errors += [{"index": index, "field": f, "message": m} for f, m in spec.check(item)]
    errors += _duplicate_errors(items, spec)
    return _invalid_batch(sorted(errors, key=lambda e: e["index"]))


def _duplicate_errors(items: list, spec: ItemSpec) -> list[dict]:
    seen: dict[Any, int] = {}
    errors = []
    for index, item in enumerate(items):
        if item is None:
            continue
        key = spec.key(item)
        if key in seen:
            errors.append(
                {"index": index, "field": spec.key_field, "message": f"duplicate of item {seen[key]} in this batch"}
            )
        else:
            seen[key] = index
    return errors


def _invalid_batch(errors: list[dict]) -> ApiError:
    bad = len({e["index"] for e in errors})
    return ApiError("invalid_request", f"{bad} item(s) are invalid; nothing was stored.", details=errors)


def _describe(exc: msgspec.ValidationError) -> tuple[str | None, str]:
    text = str(exc)
    match = _LOCATION.search(text)
    message = text[: match.start()] if match else text
    field = match.group("field") if match and match.group("field") else None
    if field is None and (named := _NAMED_FIELD.search(message)):
        field = named.group("field")
    return field, _friendly(message)


_FRIENDLY_PATTERNS = {
    DECIMAL_PATTERN: 'Expected a non-negative decimal string such as "0.00012000" (no exponent, at most 18 decimals)',
    SIGNED_DECIMAL_PATTERN: 'Expected a decimal string such as "-12.5" (no exponent, at most 18 decimals)',
    ID_PATTERN: "Expected an ID of 1–64 characters of [A-Za-z0-9._:-]",
}
_REGEX_MESSAGE = re.compile(r"^Expected `str` matching regex '(?P<pattern>.*)'$")


def _friendly(message: str) -> str:
    message = message.replace("`str | null`", "`str`")
    if match := _REGEX_MESSAGE.match(message):
        return _FRIENDLY_PATTERNS.get(match.group("pattern").replace("\\\\", "\\"), message)
    return message


def decimal(value: str) -> Decimal:
    """A decimal string already checked by DECIMAL_PATTERN."""
    return Decimal(value)


# ---- routing and schema ------------------------------------------------------------------------------
def route(pattern: str, view, name: str):
    """A path that answers with and without a trailing slash, without redirecting."""
    return re_path(rf"^{pattern.strip('/')}/?$", view, name=name)


_schema_structs: set[type] = set()


def struct_schema(struct_type, *, many: bool = False) -> dict:
    """An OpenAPI request body for a msgspec struct (its component is added by `add_struct_components`)."""
    _schema_structs.add(struct_type)
    ref = {"$ref": f"#/components/schemas/{struct_type.__name__}"}
    return {"application/json": {"type": "array", "items": ref, "maxItems": 10000} if many else ref}


def add_struct_components(result, generator, request, public):
    """drf-spectacular post-processing hook: publish the msgspec structs' JSON schemas as components."""
    _, components = msgspec.json.schema_components(
        sorted(_schema_structs, key=lambda s: s.__name__), ref_template="#/components/schemas/{name}"
    )
    result.setdefault("components", {}).setdefault("schemas", {}).update(components)
    return result


ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object"}},
            },
            "required": ["code", "message", "details"],
        }
    },
}
BATCH_RESULT_SCHEMA = {
    "type": "object",
    "properties": {"accepted": {"type": "integer"}, "duplicates": {"type": "integer"}},
    "required": ["accepted", "duplicates"],
}
STANDARD_ERRORS = {code: ERROR_SCHEMA for code in (400, 401, 403, 409, 413, 415)}
