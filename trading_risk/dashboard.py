"""The margin dashboard: margin ratios across accounts, the accounts nearest liquidation, the liquidation
queue, ADL rankings, the insurance funds over time, and one account's margin numbers re-derived from its
stored rows. Staff pages inside the admin (login + TOTP), readable with the view permission on insurance
funds (risk officers and auditors hold it). Fund top-ups and withdrawals are requested here and approved
in the change requests, by someone else.

Also registers the read-only admin lists of liquidations, ADL events and the fund ledger, whose list pages
link back here.
"""

from datetime import datetime
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.models import Account
from backoffice import parameters
from backoffice.admin import ReadOnlyAdmin
from backoffice.audit import actor_from_request
from backoffice.errors import DomainError
from trading_risk import liquidation
from trading_risk import liquidation_selectors as selectors
from trading_risk.models import (
    AccountMargin,
    AdlAllocation,
    AdlEvent,
    InsuranceFund,
    InsuranceFundEntry,
    Liquidation,
)

VIEW_PERMISSION = "trading_risk.view_insurancefund"
RANKING_ROWS = 5
QUEUE_ROWS = 50
CHART_WIDTH, CHART_HEIGHT = 560, 160


def _staff_view(view):
    """Admin login (the middleware adds the second factor) plus the dashboard's view permission."""

    def guarded(request, *args, **kwargs):
        if not request.user.has_perm(VIEW_PERMISSION):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return admin.site.admin_view(guarded)


class AdjustmentForm(forms.Form):
    asset = forms.CharField(max_length=16)
    kind = forms.ChoiceField(choices=[(k.value, k.label) for k in liquidation.MANUAL_KINDS])
    amount = forms.DecimalField(max_digits=38, decimal_places=18, min_value=Decimal("1e-18"))
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


# ---- the dashboard -----------------------------------------------------------------------------------
def dashboard_view(request):
    now = timezone.now()
    nearest = selectors.nearest_liquidation(limit=parameters.param("margin_dashboard.nearest_accounts", at=now))
    funds = list(InsuranceFund.objects.order_by("asset"))
    context = {
        **admin.site.each_context(request),
        "title": "Margin dashboard",
        "histogram": _histogram(selectors.margin_ratio_histogram()),
        "classes": selectors.classification_counts(),
        "nearest": [(state, selectors.ratio_of(state)) for state in nearest],
        "queue": selectors.most_urgent(limit=QUEUE_ROWS),
        "rankings": _rankings(),
        "funds": [(fund, _fund_chart(selectors.fund_history(fund))) for fund in funds],
        "liquidations": Liquidation.objects.select_related("account", "instrument", "fund").order_by("-at")[:20],
        "adl_events": AdlEvent.objects.select_related("instrument", "liquidation").order_by("-at")[:10],
        "can_request": request.user.has_perm("backoffice.request_change"),
        "form": AdjustmentForm(),
    }
    return TemplateResponse(request, "trading_risk/margin/dashboard.html", context)


def _rankings() -> list[dict]:
    marks = selectors.latest_marks(symbols=[i.symbol for i in selectors.symbols_with_positions()])
    return [
        {
            "mark": mark,
            "sides": [
                (side, selectors.adl_ranking(instrument_id=instrument_id, side=side, mark=mark.price)[:RANKING_ROWS])
                for side in (selectors.LONG, selectors.SHORT)
            ],
        }
        for instrument_id, mark in sorted(marks.items(), key=lambda m: m[1].symbol)
    ]


def _histogram(bands: list[tuple[str, int]]) -> dict:
    """Bars as SVG geometry: one per band of equity ÷ maintenance margin."""
    top = max((n for _, n in bands), default=0) or 1
    width = CHART_WIDTH // max(len(bands), 1)
    bars = []
    for i, (label, n) in enumerate(bands):
        h = round(n / top * CHART_HEIGHT)
        bars.append({"x": i * width, "y": CHART_HEIGHT - h, "w": width - 6, "h": h, "label": label, "n": n})
    return {"bars": bars, "width": width * len(bands), "height": CHART_HEIGHT, "top": top}


def _fund_chart(entries: list[InsuranceFundEntry]) -> dict | None:
    """The balance after each entry as a step line over time (geometry only; floats are for drawing)."""
    if not entries:
        return None
    first, last = entries[0].at, entries[-1].at
    span = (last - first).total_seconds() or 1.0
    top = float(max(e.balance_after for e in entries)) or 1.0
    points, previous_y = [], CHART_HEIGHT

    def x_of(at: datetime) -> float:
        return round((at - first).total_seconds() / span * CHART_WIDTH, 1)

    for e in entries:
        x, y = x_of(e.at), round(CHART_HEIGHT - float(e.balance_after) / top * CHART_HEIGHT, 1)
        points += [f"{x},{previous_y}", f"{x},{y}"]
        previous_y = y
    points.append(f"{CHART_WIDTH},{previous_y}")
    return {
        "points": " ".join(points),
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "top": max(e.balance_after for e in entries),
        "first": first,
        "last": last,
        "dots": [
            {"x": x_of(e.at), "y": round(CHART_HEIGHT - float(e.balance_after) / top * CHART_HEIGHT, 1), "entry": e}
            for e in entries
        ],
    }


# ---- one account -------------------------------------------------------------------------------------
def account_view(request, account_id: str):
    account = get_object_or_404(Account.objects.select_related("customer"), external_id=account_id)
    states = [
        {"state": s, "ratio": selectors.ratio_of(s), "warning_line": _warning_line(s)}
        for s in AccountMargin.objects.filter(account=account).order_by("pk")
    ]
    context = {
        **admin.site.each_context(request),
        "title": f"Margin of account {account.external_id}",
        "account": account,
        "states": states,
        "positions": selectors.account_positions(account.pk),
        "liquidations": Liquidation.objects.filter(account=account).select_related("instrument", "fund")[:50],
        "allocations": AdlAllocation.objects.filter(account=account).select_related("event", "event__instrument")[:50],
    }
    return TemplateResponse(request, "trading_risk/margin/account.html", context)


def _warning_line(state: AccountMargin) -> Decimal:
    stored = getattr(state, "warning_line", None)
    return stored if stored else (state.maintenance_margin + state.initial_margin) / 2


# ---- manual fund changes -----------------------------------------------------------------------------
@require_POST
def adjust_view(request):
    form = AdjustmentForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"The request is invalid: {form.errors.as_text()}")
        return redirect("margin-dashboard")
    data = form.cleaned_data
    try:
        change = liquidation.request_adjustment(
            asset=data["asset"].strip().upper(),
            kind=data["kind"],
            amount=data["amount"],
            reason=data["reason"],
            actor=actor_from_request(request),
            now=timezone.now(),
        )
    except (DomainError, InvalidOperation) as exc:
        messages.error(request, str(exc))
        return redirect("margin-dashboard")
    messages.success(request, f"Requested: {change.summary}. Another person must approve it.")
    return redirect(reverse("admin:backoffice_changerequest_change", args=[change.pk]))


urlpatterns = [
    path("", _staff_view(dashboard_view), name="margin-dashboard"),
    path("accounts/<str:account_id>/", _staff_view(account_view), name="margin-account"),
    path("insurance-fund/adjust/", _staff_view(adjust_view), name="margin-fund-adjust"),
]


# ---- read-only admin lists ---------------------------------------------------------------------------
@admin.register(InsuranceFund)
class InsuranceFundAdmin(ReadOnlyAdmin):
    change_list_template = "trading_risk/margin/change_list.html"
    list_display = ("asset", "balance", "opened_at", "updated_at")


@admin.register(InsuranceFundEntry)
class InsuranceFundEntryAdmin(ReadOnlyAdmin):
    change_list_template = "trading_risk/margin/change_list.html"
    list_display = ("id", "fund", "kind", "amount", "balance_after", "liquidation", "change_request", "at")
    list_filter = ("fund", "kind")
    list_select_related = ("fund", "liquidation")
    search_fields = ("liquidation__liquidation_id", "note")


@admin.register(Liquidation)
class LiquidationAdmin(ReadOnlyAdmin):
    change_list_template = "trading_risk/margin/change_list.html"
    list_display = ("liquidation_id", "account", "instrument", "side", "qty", "bankruptcy_price", "fill_price")
    list_display += ("fund_paid", "adl_qty", "at")
    list_filter = ("instrument", "side")
    list_select_related = ("account", "account__customer", "instrument")
    search_fields = ("liquidation_id", "account__external_id")
    date_hierarchy = "at"


@admin.register(AdlEvent)
class AdlEventAdmin(ReadOnlyAdmin):
    change_list_template = "trading_risk/margin/change_list.html"
    list_display = ("id", "instrument", "side", "qty", "price", "fund_balance_at_trigger", "uncovered", "at")
    list_select_related = ("instrument",)
