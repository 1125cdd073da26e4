"""Emergency controls: halt a symbol or all trading, close-only, resume, raise a symbol's maintenance margin.

Each is a maker-checker action: one risk officer requests it, another approves it, and it applies in the
approval's transaction. A halt is a TradingHalt row (what pre-trade checks read) plus a symbol-scoped
restriction on every customer (what the restrictions answer and the engine's change feed carry):
`symbol_halted` for a halt, `restricted_open` for close-only; with no symbol they cover all trading.
Each control drafts an announcement from its template; publishing it is a separate approval.
"""

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.template import Context, Template

from accounts import restrictions
from accounts.models import Customer
from backoffice import approvals, audit, parameters
from backoffice.errors import DomainError, InvalidInput
from trading_risk.models import Announcement, AnnouncementTemplate, Instrument, TradingHalt

REQUEST = "backoffice.request_change"
APPROVE = "trading_risk.approve_emergency"
RESTRICTION_FOR_MODE = {TradingHalt.Mode.HALT: "symbol_halted", TradingHalt.Mode.CLOSE_ONLY: "restricted_open"}
TEMPLATE_FOR_MODE = {TradingHalt.Mode.HALT: "trading_halt", TradingHalt.Mode.CLOSE_ONLY: "close_only"}


class AlreadyHalted(DomainError):
    """This symbol already has a halt or close-only in force; resume it first."""

    code = "already_halted"


# ---- halts ---------------------------------------------------------------------------------------------
def _validate_halt(payload: dict) -> dict:
    symbol = str(payload.get("symbol") or "").strip().upper()
    mode = str(payload.get("mode") or TradingHalt.Mode.HALT)
    if mode not in TradingHalt.Mode.values:
        raise InvalidInput("Choose HALT or CLOSE_ONLY.", details=[{"field": "mode", "message": "unknown"}])
    if symbol and not Instrument.objects.filter(symbol=symbol).exists():
        raise InvalidInput(f"No instrument {symbol}.", details=[{"field": "symbol", "message": "unknown"}])
    if TradingHalt.objects.filter(symbol=symbol, ended_at__isnull=True).exists():
        raise AlreadyHalted()
    return {"symbol": symbol, "mode": mode}


def _describe_halt(payload: dict) -> str:
    return f"{TradingHalt.Mode(payload['mode']).label}: {payload['symbol'] or 'all symbols'}"


def _apply_halt(*, payload: dict, change_request, actor: audit.Actor, now: datetime) -> dict:
    if TradingHalt.objects.filter(symbol=payload["symbol"], ended_at__isnull=True).exists():
        raise AlreadyHalted()
    halt = TradingHalt.objects.create(
        symbol=payload["symbol"],
        mode=payload["mode"],
        reason=change_request.reason,
        started_at=now,
        change_request=change_request,
    )
    audit.record(
        actor=actor,
        action="emergency.halt",
        target=halt,
        now=now,
        reason=change_request.reason,
        after={"symbol": halt.symbol, "mode": halt.mode},
    )
    rule = "emergency.close_only" if halt.mode == TradingHalt.Mode.CLOSE_ONLY else "emergency.halt"
    for customer in Customer.objects.filter(accounts__isnull=False).distinct().order_by("pk"):
        restrictions.add_restriction(
            customer=customer,
            code=RESTRICTION_FOR_MODE[halt.mode],
            rule=rule,
            actor=actor,
            now=now,
            symbol=halt.symbol,
            reason=change_request.reason,
            source=f"halt:{halt.pk}",
        )
    announcement = draft_announcement(
        template_code=TEMPLATE_FOR_MODE[halt.mode],
        related=f"halt:{halt.pk}",
        context=_context(halt.symbol, change_request.reason, now),
        actor=actor,
        now=now,
    )
    return {"halt_id": halt.pk, "announcement_id": announcement.pk}


def _validate_resume(payload: dict) -> dict:
    halt = TradingHalt.objects.filter(pk=payload.get("halt_id"), ended_at__isnull=True).first()
    if halt is None:
        raise InvalidInput("No such halt in force.", details=[{"field": "halt_id", "message": "not in force"}])
    return {"halt_id": halt.pk, "symbol": halt.symbol}


def _apply_resume(*, payload: dict, change_request, actor: audit.Actor, now: datetime) -> dict:
    halt = TradingHalt.objects.select_for_update(no_key=True).get(pk=payload["halt_id"])
    if halt.ended_at is not None:
        raise InvalidInput("This halt has already ended.")
    halt.ended_at = now
    halt.save(update_fields=["ended_at"])
    audit.record(
        actor=actor,
        action="emergency.resume",
        target=halt,
        now=now,
        reason=change_request.reason,
        before={"ended_at": None},
        after={"ended_at": now},
    )
    for customer in Customer.objects.filter(restrictions__source=f"halt:{halt.pk}").distinct().order_by("pk"):
        restrictions.lift_restrictions_from(
            source=f"halt:{halt.pk}", customer=customer, actor=actor, reason=change_request.reason, now=now
        )
    announcement = draft_announcement(
        template_code="trading_resumed",
        related=f"halt:{halt.pk}",
        context=_context(halt.symbol, change_request.reason, now),
        actor=actor,
        now=now,
    )
    return {"halt_id": halt.pk, "announcement_id": announcement.pk}


# ---- maintenance margin -----------------------------------------------------------------------------------
MARGIN_KEY = "margin.base_maintenance_rate"


def _validate_margin(payload: dict) -> dict:
    symbol = str(payload.get("symbol") or "").strip().upper()
    if not Instrument.objects.filter(symbol=symbol).exists():
        raise InvalidInput(f"No instrument {symbol!r}.", details=[{"field": "symbol", "message": "unknown"}])
    clean = approvals.get_action("risk_parameter.set").validate(
        {"key": MARGIN_KEY, "scope": symbol, "value": payload.get("value")}
    )
    if Decimal(clean["value"]) <= parameters.param(MARGIN_KEY, scope=symbol):
        raise InvalidInput(
            "An emergency change only raises the rate; lower it as an ordinary parameter change.",
            details=[{"field": "value", "message": "not above the current rate"}],
        )
    return {"symbol": symbol, "value": clean["value"]}


def _apply_margin(*, payload: dict, change_request, actor: audit.Actor, now: datetime) -> dict:
    result = approvals.get_action("risk_parameter.set").apply(
        payload={"key": MARGIN_KEY, "scope": payload["symbol"], "value": payload["value"], "effective_from": None},
        change_request=change_request,
        actor=actor,
        now=now,
    )
    context = {**_context(payload["symbol"], change_request.reason, now), "value": payload["value"]}
    announcement = draft_announcement(
        template_code="maintenance_margin_raise",
        context=context,
        actor=actor,
        now=now,
        related=f"parameter:{result['parameter_value_id']}",
    )
    return {**result, "announcement_id": announcement.pk}


# ---- announcements ---------------------------------------------------------------------------------------
def _context(symbol: str, reason: str, now: datetime) -> dict:
    return {"scope": symbol or "all symbols", "reason": reason, "at": f"{now:%Y-%m-%d %H:%M}"}


@transaction.atomic
def draft_announcement(
    *, template_code: str, context: dict, related: str, actor: audit.Actor, now: datetime
) -> Announcement:
    """Draft an announcement from its template (nothing is published until a risk officer approves it)."""
    template = AnnouncementTemplate.objects.get(code=template_code)
    announcement = Announcement.objects.create(
        template_code=template_code,
        title=_render(template.title, context)[:200],
        body=_render(template.body, context),
        related=related,
        created_at=now,
    )
    audit.record(
        actor=actor,
        action="announcement.draft",
        target=announcement,
        now=now,
        after={"template": template_code, "title": announcement.title, "related": related},
    )
    return announcement


def _render(text: str, context: dict) -> str:
    return Template(text).render(Context(context, autoescape=False))


def _validate_publish(payload: dict) -> dict:
    announcement = Announcement.objects.filter(
        pk=payload.get("announcement_id"), status=Announcement.Status.DRAFT
    ).first()
    if announcement is None:
        raise InvalidInput("No such draft announcement.", details=[{"field": "announcement_id", "message": "unknown"}])
    return {"announcement_id": announcement.pk, "title": announcement.title}


def _apply_publish(*, payload: dict, change_request, actor: audit.Actor, now: datetime) -> dict:
    if not Announcement.objects.filter(pk=payload["announcement_id"], status=Announcement.Status.DRAFT).update(
        status=Announcement.Status.PUBLISHED, published_at=now
    ):
        raise InvalidInput("The announcement is no longer a draft.")
    audit.record(
        actor=actor,
        action="announcement.publish",
        target=("trading_risk.announcement", payload["announcement_id"]),
        now=now,
        before={"status": "DRAFT"},
        after={"status": "PUBLISHED"},
        reason=change_request.reason,
    )
    return {"announcement_id": payload["announcement_id"]}


def change_actions() -> list[approvals.ChangeAction]:
    """The emergency controls' maker-checker actions (registered when the app is ready)."""
    halt = {"validate": _validate_halt, "apply": _apply_halt, "describe": _describe_halt}
    return [
        approvals.ChangeAction(
            "emergency.halt_symbol", "Halt a symbol or all trading, or set close-only", REQUEST, APPROVE, **halt
        ),
        approvals.ChangeAction(
            "emergency.resume",
            "Resume a halted or close-only symbol",
            REQUEST,
            APPROVE,
            validate=_validate_resume,
            apply=_apply_resume,
            describe=lambda p: f"Resume {p['symbol'] or 'all symbols'} (halt #{p['halt_id']})",
        ),
        approvals.ChangeAction(
            "emergency.raise_maintenance_margin",
            "Raise a symbol's maintenance margin",
            REQUEST,
            APPROVE,
            validate=_validate_margin,
            apply=_apply_margin,
            describe=lambda p: f"Raise {MARGIN_KEY} for {p['symbol']} to {p['value']}",
        ),
        approvals.ChangeAction(
            "announcement.publish",
            "Publish an announcement",
            REQUEST,
            APPROVE,
            validate=_validate_publish,
            apply=_apply_publish,
            describe=lambda p: f"Publish announcement #{p['announcement_id']}: {p['title']}",
        ),
    ]
