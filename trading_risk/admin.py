"""Admin for trading risk: reference data, the surveillance alert queue and cases, linked groups, snoozes,
emergency controls and the surveillance dashboard.

Nothing here writes a model directly: every change goes through a service with request.user as the
actor, and domain refusals are shown as messages.
"""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from backoffice import approvals, audit
from backoffice.admin import ReadOnlyAdmin
from backoffice.audit import actor_from_request
from backoffice.errors import DomainError
from trading_risk import cases, selectors, surveillance
from trading_risk.models import (
    Alert,
    Announcement,
    AnnouncementTemplate,
    AssetPrice,
    Case,
    DetectorRun,
    Instrument,
    InstrumentPrice,
    LinkedGroup,
    OrderCancelLadder,
    RiskLimitBracket,
    RiskLimitTable,
    RuleSnooze,
    TradingHalt,
)


@admin.register(Instrument)
class InstrumentAdmin(ReadOnlyAdmin):
    list_display = ("symbol", "kind", "base", "quote", "listed_at", "expires_at")
    list_filter = ("kind", "quote")
    search_fields = ("symbol", "base")
    readonly_fields = ("symbol", "kind", "base", "quote", "listed_at", "expires_at", "created_at", "updated_at")
    fields = readonly_fields


@admin.register(AssetPrice)
class AssetPriceAdmin(ReadOnlyAdmin):
    list_display = ("asset", "at", "usd", "received_at")
    list_filter = ("asset",)
    date_hierarchy = "at"
    show_full_result_count = False


@admin.register(InstrumentPrice)
class InstrumentPriceAdmin(ReadOnlyAdmin):
    list_display = ("instrument", "at", "index_price", "mark_price")
    list_filter = ("instrument",)
    list_select_related = ("instrument",)
    date_hierarchy = "at"
    show_full_result_count = False


# ---- forms -------------------------------------------------------------------------------------------
class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(queryset=get_user_model().objects.filter(is_staff=True, is_active=True))


class DispositionForm(forms.Form):
    disposition = forms.ChoiceField(choices=Alert.Disposition.choices)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))


class CaseForm(forms.Form):
    title = forms.CharField(max_length=200, required=False, help_text="blank: the first alert's summary")


class NoteForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    attachment = forms.FileField(required=False)


class CallForm(forms.Form):
    outcome = forms.ChoiceField(choices=[(v, label) for v, label in cases.CustomerCall.Outcome.choices])
    summary = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))


class HaltForm(forms.Form):
    symbol = forms.CharField(required=False, help_text="blank: all trading")
    mode = forms.ChoiceField(choices=TradingHalt.Mode.choices)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))


class MarginForm(forms.Form):
    symbol = forms.CharField()
    value = forms.DecimalField(max_digits=10, decimal_places=6, help_text="new base maintenance rate, e.g. 0.01")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))


def _form_page(admin_obj, request, form, title, **context):
    return TemplateResponse(
        request,
        "admin/trading_risk/form.html",
        {
            **admin_obj.admin_site.each_context(request),
            "title": title,
            "form": form,
            "opts": admin_obj.model._meta,
            **context,
        },
    )


def _run(request, call, success: str) -> bool:
    try:
        call()
    except DomainError as exc:
        messages.error(request, str(exc))
        return False
    messages.success(request, success)
    return True


# ---- alerts --------------------------------------------------------------------------------------------
@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("id", "opened_at", "rule", "severity", "status", "customer", "account", "symbol", "case", "summary")
    list_filter = ("status", "rule", "severity", "disposition", "symbol")
    search_fields = ("customer__external_id", "customer__name", "account__external_id", "summary", "symbol")
    list_select_related = ("customer", "account", "account__customer", "case")
    date_hierarchy = "opened_at"
    show_full_result_count = False
    readonly_fields = (
        "rule",
        "severity",
        "status",
        "customer",
        "account",
        "symbol",
        "summary",
        "details",
        "case",
        "opened_at",
        "disposition",
        "closing_reason",
        "closed_at",
        "closed_by",
        "drill_down",
    )
    fields = readonly_fields
    actions = ["assign", "group_into_case", "close_with_disposition"]
    change_list_template = "admin/trading_risk/alert_change_list.html"

    def has_work_permission(self, request):
        return request.user.has_perm("trading_risk.work_alert")

    @admin.display(description="evidence")
    def drill_down(self, alert):
        url = reverse("admin:trading_risk_alert_trades", args=[alert.pk])
        return format_html('<a href="{}">the trades and order events that raised it</a>', url)

    def get_urls(self):
        extra = [
            path("dashboard/", self.admin_site.admin_view(self.dashboard_view), name="trading_risk_dashboard"),
            path("<int:pk>/trades/", self.admin_site.admin_view(self.trades_view), name="trading_risk_alert_trades"),
        ]
        return extra + super().get_urls()

    @admin.action(description="Assign the selected alerts to …", permissions=["work"])
    def assign(self, request, queryset):
        form = AssignForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            now, actor = timezone.now(), actor_from_request(request)
            for alert in queryset:
                _run(
                    request,
                    lambda a=alert: cases.assign_alert(
                        alert=a, assignee=form.cleaned_data["assignee"], actor=actor, now=now
                    ),
                    f"Alert #{alert.pk} assigned.",
                )
            return None
        return _form_page(self, request, form, "Assign alerts", queryset=queryset, action="assign")

    @admin.action(description="Group the selected alerts into a case", permissions=["work"])
    def group_into_case(self, request, queryset):
        form = CaseForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            created = []
            _run(
                request,
                lambda: created.append(
                    cases.open_case(
                        alerts=list(queryset),
                        title=form.cleaned_data["title"],
                        actor=actor_from_request(request),
                        now=timezone.now(),
                    )
                ),
                "Case opened.",
            )
            return redirect("admin:trading_risk_case_change", created[0].pk) if created else None
        return _form_page(self, request, form, "Group alerts into a case", queryset=queryset, action="group_into_case")

    @admin.action(description="Close the selected alerts with a disposition …", permissions=["work"])
    def close_with_disposition(self, request, queryset):
        form = DispositionForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            now, actor = timezone.now(), actor_from_request(request)
            for alert in queryset:
                _run(
                    request,
                    lambda a=alert: cases.close_alert(alert=a, actor=actor, now=now, **form.cleaned_data),
                    f"Alert #{alert.pk} closed.",
                )
            return None
        return _form_page(self, request, form, "Close alerts", queryset=queryset, action="close_with_disposition")

    def trades_view(self, request, pk):
        if not self.has_view_permission(request):
            raise PermissionDenied
        alert = get_object_or_404(Alert.objects.select_related("customer", "account"), pk=pk)
        rows = selectors.trades_behind(alert)
        return TemplateResponse(
            request,
            "admin/trading_risk/alert_trades.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Evidence for alert #{alert.pk}",
                "alert": alert,
                "rows": rows,
                "is_order_events": alert.rule == "frequent_order_cancel",
                "opts": self.model._meta,
            },
        )

    def dashboard_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        now = timezone.now()
        since = now - timedelta(days=30)
        return TemplateResponse(
            request,
            "admin/trading_risk/dashboard.html",
            {
                **self.admin_site.each_context(request),
                "title": "Surveillance dashboard",
                "opts": self.model._meta,
                "chart": _chart(selectors.alerts_per_day_by_rule(since=since), since.date(), now.date()),
                "top_accounts": selectors.top_accounts_by_alerts(since=since),
                "ladders": OrderCancelLadder.objects.filter(step__gt=0)
                .select_related("account", "account__customer")
                .order_by("-last_hit_at")[:50],
                "open_by_rule": Alert.objects.filter(status=Alert.Status.OPEN)
                .values("rule")
                .annotate(n=Count("id"))
                .order_by("-n"),
                "halts": TradingHalt.objects.filter(ended_at__isnull=True),
            },
        )


_COLOURS = ("#417690", "#c0392b", "#e67e22", "#27ae60", "#8e44ad", "#7f8c8d")


def _chart(per_rule: dict[str, dict], first, last) -> dict:
    """Stacked daily bars as plain SVG geometry: each segment links to the alerts it counts."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    totals = [sum(series.get(d, 0) for series in per_rule.values()) for d in days]
    top = max(totals, default=0) or 1
    height, width = 160, 18
    bars, legend = [], []
    for i, day in enumerate(days):
        y = height
        for colour, (rule, series) in zip(_COLOURS * 4, sorted(per_rule.items()), strict=False):
            n = series.get(day, 0)
            if n:
                h = max(1, round(n / top * height))
                y -= h
                url = reverse("admin:trading_risk_alert_changelist") + f"?rule={rule}&opened_at__date={day.isoformat()}"
                bars.append(
                    {
                        "x": i * (width + 4),
                        "y": y,
                        "w": width,
                        "h": h,
                        "colour": colour,
                        "url": url,
                        "label": f"{day}: {n} {rule}",
                    }
                )
    for colour, rule in zip(_COLOURS * 4, sorted(per_rule), strict=False):
        legend.append(
            {"rule": rule, "colour": colour, "url": reverse("admin:trading_risk_alert_changelist") + f"?rule={rule}"}
        )
    return {
        "bars": bars,
        "legend": legend,
        "width": len(days) * (width + 4),
        "height": height,
        "first": first,
        "last": last,
        "top": top,
    }


# ---- cases ------------------------------------------------------------------------------------------------
class CaseAlertInline(admin.TabularInline):
    model = Alert
    fields = ("opened_at", "rule", "severity", "status", "account", "symbol", "summary", "disposition")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _readonly_inline(model_, fields_):
    class Inline(admin.TabularInline):
        model = model_
        fields = fields_
        readonly_fields = fields_
        extra = 0
        can_delete = False

        def has_add_permission(self, request, obj=None):
            return False

        def has_change_permission(self, request, obj=None):
            return False

    return Inline


@admin.register(Case)
class CaseAdmin(ReadOnlyAdmin):
    list_display = ("id", "opened_at", "title", "customer", "status", "disposition", "alert_count")
    list_filter = ("status", "disposition")
    search_fields = ("title", "customer__external_id", "customer__name")
    list_select_related = ("customer",)
    readonly_fields = (
        "customer",
        "title",
        "status",
        "opened_at",
        "opened_by",
        "disposition",
        "closing_reason",
        "closed_at",
        "closed_by",
    )
    fields = readonly_fields
    inlines = [
        CaseAlertInline,
        _readonly_inline(cases.CaseNote, ("created_at", "author", "text", "attachment")),
        _readonly_inline(cases.CustomerCall, ("called_at", "called_by", "phone", "outcome", "summary")),
        _readonly_inline(cases.WarningLetter, ("issued_at", "issued_by", "subject", "body")),
    ]
    change_form_template = "admin/trading_risk/case_change.html"

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(alerts_n=Count("alerts"))

    @admin.display(description="alerts", ordering="alerts_n")
    def alert_count(self, case):
        return case.alerts_n

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if object_id and request.method == "POST" and "case_action" in request.POST:
            return self._act(request, get_object_or_404(Case, pk=object_id))
        extra_context = {
            **(extra_context or {}),
            "note_form": NoteForm(),
            "call_form": CallForm(),
            "close_form": DispositionForm(),
            "assign_form": AssignForm(),
        }
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _act(self, request, case: Case):
        action, actor, now = request.POST["case_action"], actor_from_request(request), timezone.now()
        forms_ = {
            "note": NoteForm(request.POST, request.FILES),
            "call": CallForm(request.POST),
            "close": DispositionForm(request.POST),
            "assign": AssignForm(request.POST),
        }
        form = forms_.get(action)
        if not request.user.has_perm("trading_risk.work_case"):
            messages.error(request, "You need the permission to work cases.")
        elif action == "letter":
            _run(
                request,
                lambda: cases.issue_warning_letter(case=case, actor=actor, now=now),
                "Risk-warning letter issued and kept on the case.",
            )
        elif form is None or not form.is_valid():
            messages.error(request, f"Check the {action} form: {form.errors.as_text() if form else 'unknown action'}")
        else:
            data = form.cleaned_data
            call = {
                "note": lambda: cases.add_note(
                    case=case, text=data["text"], attachment=data["attachment"], actor=actor, now=now
                ),
                "call": lambda: cases.record_call(
                    case=case, outcome=data["outcome"], summary=data["summary"], actor=actor, now=now
                ),
                "close": lambda: cases.close_case(case=case, actor=actor, now=now, **data),
                "assign": lambda: cases.assign_case(case=case, assignee=data["assignee"], actor=actor, now=now),
            }[action]
            _run(request, call, "Saved.")
        return redirect("admin:trading_risk_case_change", case.pk)


# ---- linked groups, snoozes, ladder state, detector runs ------------------------------------------------------
@admin.register(LinkedGroup)
class LinkedGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "basis", "evidence", "members", "created_at", "created_by")
    list_filter = ("basis",)
    search_fields = ("name", "evidence", "customers__external_id", "customers__name")
    autocomplete_fields = ("customers",)
    fields = ("name", "basis", "evidence", "customers")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(members_n=Count("customers"))

    @admin.display(description="customers", ordering="members_n")
    def members(self, group):
        return group.members_n

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_at, obj.created_by = timezone.now(), request.user.get_username()
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        before = sorted(form.instance.customers.values_list("external_id", flat=True)) if change else []
        super().save_related(request, form, formsets, change)
        after = sorted(form.instance.customers.values_list("external_id", flat=True))
        from django.db import transaction

        with transaction.atomic():
            audit.record(
                actor=actor_from_request(request),
                action="linked_group.update" if change else "linked_group.create",
                target=form.instance,
                now=timezone.now(),
                before={"customers": before},
                after={"name": form.instance.name, "customers": after},
            )

    def delete_model(self, request, obj):
        from django.db import transaction

        with transaction.atomic():
            audit.record(
                actor=actor_from_request(request),
                action="linked_group.delete",
                target=obj,
                now=timezone.now(),
                before={"name": obj.name},
            )
            super().delete_model(request, obj)


class SnoozeForm(forms.ModelForm):
    rule = forms.ChoiceField(choices=[(r, r) for r in surveillance.RULE_CODES])

    def clean_until(self):
        if self.cleaned_data["until"] <= timezone.now():
            raise forms.ValidationError("The snooze must end in the future.")
        return self.cleaned_data["until"]

    class Meta:
        model = RuleSnooze
        fields = ("account", "rule", "until", "reason")


@admin.register(RuleSnooze)
class RuleSnoozeAdmin(admin.ModelAdmin):
    form = SnoozeForm
    list_display = ("account", "rule", "until", "reason", "created_by", "created_at", "ended_at")
    list_filter = ("rule",)
    search_fields = ("account__external_id", "reason")
    list_select_related = ("account", "account__customer")
    raw_id_fields = ("account",)
    actions = ["end"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            snooze = surveillance.snooze_rule(
                account=data["account"],
                rule=data["rule"],
                until=data["until"],
                reason=data["reason"],
                actor=actor_from_request(request),
                now=timezone.now(),
            )
        except DomainError as exc:
            messages.error(request, str(exc))
            return
        obj.pk = snooze.pk

    @admin.action(description="End the selected snoozes now", permissions=["add"])
    def end(self, request, queryset):
        for snooze in queryset:
            surveillance.end_snooze(snooze=snooze, actor=actor_from_request(request), now=timezone.now())
        messages.success(request, f"Ended {queryset.count()} snooze(s).")


@admin.register(OrderCancelLadder)
class OrderCancelLadderAdmin(ReadOnlyAdmin):
    list_display = ("account", "symbol", "step", "last_hit_at", "updated_at")
    list_filter = ("step", "symbol")
    search_fields = ("account__external_id",)
    list_select_related = ("account", "account__customer")
    show_full_result_count = False


@admin.register(DetectorRun)
class DetectorRunAdmin(ReadOnlyAdmin):
    list_display = ("detector", "window_end", "started_at", "finished_at", "findings", "seconds")
    list_filter = ("detector",)
    date_hierarchy = "window_end"


# ---- emergency controls ----------------------------------------------------------------------------------
@admin.register(TradingHalt)
class TradingHaltAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "symbol", "mode", "started_at", "ended_at", "change_request", "reason")
    list_filter = ("mode", ("ended_at", admin.EmptyFieldListFilter))
    list_select_related = ("change_request",)
    actions = ["request_resume"]
    change_list_template = "admin/trading_risk/tradinghalt_change_list.html"

    def get_urls(self):
        extra = [
            path("request/", self.admin_site.admin_view(self.request_halt_view), name="trading_risk_request_halt"),
            path("margin/", self.admin_site.admin_view(self.request_margin_view), name="trading_risk_request_margin"),
        ]
        return extra + super().get_urls()

    def _request(self, request, action: str, payload: dict, reason: str):
        created = []
        ok = _run(
            request,
            lambda: created.append(
                approvals.request_change(
                    action=action, payload=payload, actor=actor_from_request(request), reason=reason, now=timezone.now()
                )
            ),
            "Requested; it takes effect when another risk officer approves it.",
        )
        return redirect("admin:backoffice_changerequest_change", created[0].pk) if ok else None

    def request_halt_view(self, request):
        form = HaltForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            response = self._request(
                request, "emergency.halt_symbol", {"symbol": data["symbol"], "mode": data["mode"]}, data["reason"]
            )
            if response:
                return response
        return _form_page(self, request, form, "Request a halt or close-only")

    def request_margin_view(self, request):
        form = MarginForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            response = self._request(
                request,
                "emergency.raise_maintenance_margin",
                {"symbol": data["symbol"], "value": str(data["value"])},
                data["reason"],
            )
            if response:
                return response
        return _form_page(self, request, form, "Request a higher maintenance margin for a symbol")

    @admin.action(description="Request resumption of the selected halts", permissions=["view"])
    def request_resume(self, request, queryset):
        for halt in queryset.filter(ended_at__isnull=True):
            self._request(request, "emergency.resume", {"halt_id": halt.pk}, "resume trading")


@admin.register(Announcement)
class AnnouncementAdmin(ReadOnlyAdmin):
    list_display = ("title", "template_code", "status", "related", "created_at", "published_at")
    list_filter = ("status", "template_code")
    readonly_fields = ("template_code", "title", "body", "status", "related", "created_at", "published_at")
    fields = readonly_fields
    actions = ["request_publication"]

    @admin.action(description="Request publication of the selected drafts", permissions=["view"])
    def request_publication(self, request, queryset):
        for announcement in queryset.filter(status=Announcement.Status.DRAFT):
            _run(
                request,
                lambda a=announcement: approvals.request_change(
                    action="announcement.publish",
                    payload={"announcement_id": a.pk},
                    actor=actor_from_request(request),
                    reason="external disclosure",
                    now=timezone.now(),
                ),
                f"Publication of #{announcement.pk} requested.",
            )


@admin.register(AnnouncementTemplate)
class AnnouncementTemplateAdmin(ReadOnlyAdmin):
    list_display = ("code", "title")
    readonly_fields = ("code", "title", "body")
    fields = readonly_fields


class RiskLimitBracketInline(admin.TabularInline):
    model = RiskLimitBracket
    fields = ("floor", "cap", "maintenance_rate", "initial_rate", "maintenance_amount")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(RiskLimitTable)
class RiskLimitTableAdmin(ReadOnlyAdmin):
    """Versions of each instrument's risk limits; a new one is requested here (change 'risk_limit.set') and
    applies when a second risk officer approves it."""

    list_display = ("instrument", "version", "model", "settlement", "effective_from", "change_request", "next_link")
    list_filter = ("model", "settlement")
    search_fields = ("instrument__symbol",)
    list_select_related = ("instrument", "change_request")
    ordering = ("instrument__symbol", "-version")
    readonly_fields = (
        "instrument",
        "version",
        "model",
        "settlement",
        "contract_size",
        "base_limit",
        "step",
        "base_maintenance_rate",
        "base_initial_rate",
        "step_increment",
        "effective_from",
        "created_at",
        "change_request",
    )
    fields = readonly_fields
    inlines = [RiskLimitBracketInline]
    change_list_template = "admin/trading_risk/request_change_list.html"

    def get_urls(self):
        view = self.admin_site.admin_view(self.request_view)
        return [path("request/", view, name="trading_risk_request_risk_limit"), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        links = _request_links(request, "admin:trading_risk_request_risk_limit", "Request a new risk-limit table")
        return super().changelist_view(request, {**(extra_context or {}), "request_links": links})

    def get_list_display(self, request):
        shown = super().get_list_display(request)
        return shown if request.user.has_perm(risk_limits.REQUEST) else [f for f in shown if f != "next_link"]

    @admin.display(description="")
    def next_link(self, table):
        url = reverse("admin:trading_risk_request_risk_limit") + f"?instrument={table.instrument.symbol}"
        return format_html('<a href="{}">request the next version</a>', url)

    def request_view(self, request):
        if not (self.has_view_permission(request) and request.user.has_perm(risk_limits.REQUEST)):
            raise PermissionDenied
        return _risk_limit_request_view(self, request)


# ---- position limits, hedging exemptions, broker members ------------------------------------------------
import re  # noqa: E402
from datetime import datetime  # noqa: E402
from decimal import Decimal, InvalidOperation  # noqa: E402

from django.core.validators import DecimalValidator  # noqa: E402

from accounts.models import Customer  # noqa: E402
from backoffice import parameters  # noqa: E402
from backoffice.admin import form_errors  # noqa: E402
from backoffice.models import ChangeRequest  # noqa: E402
from trading_risk import position_limits, risk_limits  # noqa: E402
from trading_risk.models import BrokerLimitReview, BrokerMember, HedgingExemption, PositionLimit  # noqa: E402

_BTC = {"max_digits": 38, "decimal_places": 18}  # what the numeric(38, 18) columns hold


class PositionLimitForm(forms.Form):
    product = forms.CharField(max_length=16, help_text="base asset of the contracts, e.g. BTC")
    contract_month = forms.CharField(required=False, help_text="YYYY-MM: one month of dated futures; blank: all")
    customer_type = forms.ChoiceField(required=False, choices=[("", "every type"), *Customer.Type.choices])
    limit_btc = forms.DecimalField(**_BTC, required=False, help_text="blank: remove the specific limit")
    delivery_month_limit_btc = forms.DecimalField(**_BTC, required=False, help_text="blank: the limit × the factor")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))


class ExemptionForm(forms.Form):
    account_id = forms.CharField(help_text="the exchange's account ID")
    product = forms.CharField(max_length=16, required=False, help_text="blank: every product")
    expires_at = forms.DateTimeField(help_text="YYYY-MM-DD HH:MM (UTC)")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="the hedged exposure")


class BrokerMemberForm(forms.Form):
    customer_id = forms.CharField(help_text="the exchange's customer ID of a corporate customer")
    member_number = forms.CharField(max_length=32)
    net_capital_btc = forms.DecimalField(**_BTC)
    limit_btc = forms.DecimalField(**_BTC)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))


class BrokerReviewForm(forms.Form):
    net_capital_btc = forms.DecimalField(**_BTC, min_value=0, help_text="net capital at this review, in BTC")
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))


def _request_links(request, url_name: str, label: str) -> list[dict]:
    """The change list's 'request …' button, for those who may request changes."""
    if not request.user.has_perm(position_limits.REQUEST):
        return []
    return [{"url": reverse(url_name), "label": label}]


def _as_payload(value) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _request_view(admin_obj, request, form_class, action: str, title: str):
    """A form whose valid input opens a change request; refusals of the action's validation are form errors."""
    if not (admin_obj.has_view_permission(request) and request.user.has_perm(position_limits.REQUEST)):
        raise PermissionDenied
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        reason = data.pop("reason")
        try:
            change = approvals.request_change(
                action=action,
                payload={k: _as_payload(v) for k, v in data.items()},
                actor=actor_from_request(request),
                reason=reason,
                now=timezone.now(),
            )
        except DomainError as exc:
            form_errors(form, exc)
        else:
            messages.success(
                request, f"Change #{change.pk} requested; it takes effect when another person approves it."
            )
            return redirect("admin:backoffice_changerequest_change", change.pk)
    return _form_page(admin_obj, request, form, title)


@admin.register(PositionLimit)
class PositionLimitAdmin(ReadOnlyAdmin):
    list_display = (
        "product",
        "contract_month",
        "customer_type",
        "limit_btc",
        "delivery_month_limit_btc",
        "effective_from",
        "ended_at",
        "change_request",
    )
    list_filter = ("product", "customer_type", ("ended_at", admin.EmptyFieldListFilter))
    list_select_related = ("change_request",)
    change_list_template = "admin/trading_risk/request_change_list.html"

    def get_urls(self):
        view = self.admin_site.admin_view(self.request_view)
        return [path("request/", view, name="trading_risk_request_position_limit"), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        links = _request_links(request, "admin:trading_risk_request_position_limit", "Request a position limit")
        return super().changelist_view(request, {**(extra_context or {}), "request_links": links})

    def request_view(self, request):
        return _request_view(self, request, PositionLimitForm, "position_limit.set", "Request a position limit")


@admin.register(HedgingExemption)
class HedgingExemptionAdmin(ReadOnlyAdmin):
    list_display = (
        "account",
        "product",
        "starts_at",
        "expires_at",
        "requested_by",
        "approved_by",
        "revoked_at",
        "reason",
    )
    list_filter = ("product", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("account__external_id", "account__customer__external_id", "reason")
    list_select_related = ("account",)
    actions = ["revoke"]
    change_list_template = "admin/trading_risk/request_change_list.html"

    def get_urls(self):
        view = self.admin_site.admin_view(self.request_view)
        return [path("request/", view, name="trading_risk_request_hedging_exemption"), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        links = _request_links(request, "admin:trading_risk_request_hedging_exemption", "Request a hedging exemption")
        return super().changelist_view(request, {**(extra_context or {}), "request_links": links})

    def request_view(self, request):
        return _request_view(self, request, ExemptionForm, "hedging_exemption.grant", "Request a hedging exemption")

    def has_revoke_permission(self, request):
        return request.user.has_perm(position_limits.APPROVE)

    @admin.action(description="Revoke the selected exemptions now", permissions=["revoke"])
    def revoke(self, request, queryset):
        for exemption in queryset.filter(revoked_at__isnull=True, expires_at__gt=timezone.now()):
            _run(
                request,
                lambda e=exemption: position_limits.revoke_exemption(
                    exemption=e, actor=actor_from_request(request), reason="revoked by staff", now=timezone.now()
                ),
                f"Exemption of {exemption.account} revoked.",
            )


class BrokerLimitReviewInline(admin.TabularInline):
    model = BrokerLimitReview
    extra = 0
    can_delete = False
    fields = (
        "reviewed_at",
        "reviewed_by",
        "net_capital_btc",
        "limit_btc",
        "within_capital",
        "next_review_date",
        "notes",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(BrokerMember)
class BrokerMemberAdmin(ReadOnlyAdmin):
    list_display = (
        "member_number",
        "customer",
        "net_capital_btc",
        "limit_btc",
        "last_reviewed_at",
        "next_review_date",
        "review_link",
    )
    search_fields = ("member_number", "customer__external_id", "customer__name")
    list_select_related = ("customer",)
    inlines = [BrokerLimitReviewInline]
    change_list_template = "admin/trading_risk/request_change_list.html"

    def get_urls(self):
        return [
            path("request/", self.admin_site.admin_view(self.request_view), name="trading_risk_request_broker_member"),
            path("<int:pk>/review/", self.admin_site.admin_view(self.review_view), name="trading_risk_broker_review"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        links = _request_links(request, "admin:trading_risk_request_broker_member", "Request a broker-member limit")
        return super().changelist_view(request, {**(extra_context or {}), "request_links": links})

    def get_list_display(self, request):
        shown = super().get_list_display(request)
        return shown if request.user.has_perm(position_limits.REVIEW) else [f for f in shown if f != "review_link"]

    @admin.display(description="Review")
    def review_link(self, member):
        return format_html(
            '<a href="{}">record a review</a>', reverse("admin:trading_risk_broker_review", args=[member.pk])
        )

    def request_view(self, request):
        return _request_view(self, request, BrokerMemberForm, "broker_member.set", "Request a broker-member limit")

    def review_view(self, request, pk):
        if not request.user.has_perm(position_limits.REVIEW):
            raise PermissionDenied
        member = get_object_or_404(BrokerMember.objects.select_related("customer"), pk=pk)
        form = BrokerReviewForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                review = position_limits.record_broker_review(
                    member=member,
                    net_capital_btc=form.cleaned_data["net_capital_btc"],
                    notes=form.cleaned_data["notes"],
                    actor=actor_from_request(request),
                    now=timezone.now(),
                )
            except DomainError as exc:
                form_errors(form, exc)
            else:
                if review.within_capital:
                    messages.success(request, f"Review recorded; the next one is due on {review.next_review_date}.")
                else:
                    messages.warning(
                        request,
                        f"Review recorded: the limit exceeds the net capital × the allowed multiple; request a lower "
                        f"limit. The next review is due on {review.next_review_date}.",
                    )
                return redirect("admin:trading_risk_brokermember_change", member.pk)
        return TemplateResponse(
            request,
            "admin/trading_risk/broker_review.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Review of member {member.member_number}",
                "form": form,
                "member": member,
                "review_days": parameters.param("position.broker_limit_review_days", at=timezone.now()),
                "opts": self.model._meta,
            },
        )


# ---- risk-limit table requests ----------------------------------------------------------------------------
_RATE = {"max_digits": 12, "decimal_places": 8}  # what the rate columns hold
_BRACKET_LINE = "floor cap maintenance_rate initial_rate"


class RiskLimitRequestForm(forms.Form):
    """A new version of an instrument's risk limits: the step model's five numbers, or bracket lines."""

    instrument = forms.ModelChoiceField(
        queryset=Instrument.objects.exclude(kind=Instrument.Kind.SPOT).order_by("symbol"), to_field_name="symbol"
    )
    model = forms.ChoiceField(choices=RiskLimitTable.Model.choices, widget=forms.RadioSelect)
    settlement = forms.ChoiceField(choices=RiskLimitTable.Settlement.choices, initial=RiskLimitTable.Settlement.LINEAR)
    contract_size = forms.DecimalField(**_BTC, required=False, help_text="quote value of one contract; blank: 1")
    effective_from = forms.DateTimeField(
        required=False, help_text="UTC, e.g. 2026-12-01 00:00; blank: when the request is approved"
    )
    base_limit = forms.DecimalField(**_BTC, required=False, help_text="step model: position size at the base rates")
    step = forms.DecimalField(**_BTC, required=False, help_text="step model: size added per step")
    base_maintenance_rate = forms.DecimalField(**_RATE, required=False, help_text="step model, e.g. 0.004")
    base_initial_rate = forms.DecimalField(**_RATE, required=False, help_text="step model, e.g. 0.01")
    step_increment = forms.DecimalField(**_RATE, required=False, help_text="step model: added to both rates per step")
    brackets = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 60, "placeholder": "0 50000 0.004 0.008"}),
        help_text=f"bracket model: one bracket a line, '{_BRACKET_LINE}' separated by spaces, contiguous from 0; "
        "the maintenance amounts are computed",
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))

    def clean_effective_from(self):
        value = self.cleaned_data["effective_from"]
        if value is not None and value < timezone.now():
            raise forms.ValidationError("Must not be in the past; leave it blank to take effect on approval.")
        return value

    def clean(self):
        data = super().clean()
        if data.get("model") == RiskLimitTable.Model.STEP:
            for name in risk_limits.STEP_FIELDS:
                if data.get(name) is None and name not in self.errors:
                    self.add_error(name, "Required for the step model.")
        elif data.get("model") == RiskLimitTable.Model.BRACKET and "brackets" not in self.errors:
            try:
                data["bracket_rows"] = _parse_brackets(data.get("brackets", ""))
            except forms.ValidationError as exc:
                self.add_error("brackets", exc)
        return data

    def payload(self) -> dict:
        data = self.cleaned_data
        payload = {
            "symbol": data["instrument"].symbol,
            "model": data["model"],
            "settlement": data["settlement"],
            "contract_size": _as_payload(data["contract_size"]),
            "effective_from": _as_payload(data["effective_from"]),
        }
        if data["model"] == RiskLimitTable.Model.STEP:
            return payload | {name: str(data[name]) for name in risk_limits.STEP_FIELDS}
        return payload | {"brackets": [row for _, row in data["bracket_rows"]]}


def _parse_brackets(text: str) -> list[tuple[int, dict]]:
    """(line number, bracket) per non-blank line of 'floor cap maintenance_rate initial_rate'."""
    rows, errors = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.split()  # separators are spaces or tabs: "50,000" is refused, never misread
        if not parts:
            continue
        if len(parts) != 4:
            errors.append(f"Line {number}: give four numbers, {_BRACKET_LINE}.")
            continue
        row = {}
        for name, raw in zip(_BRACKET_LINE.split(), parts, strict=True):
            limits = _RATE if name.endswith("rate") else _BTC
            try:
                value = Decimal(raw)
                if not value.is_finite():
                    raise InvalidOperation
                DecimalValidator(limits["max_digits"], limits["decimal_places"])(value)
            except InvalidOperation:
                errors.append(f"Line {number}: {name} {raw!r} is not a number.")
            except forms.ValidationError as exc:
                errors.append(f"Line {number}: {name} {raw}: {' '.join(exc.messages)}")
            else:
                row[name] = f"{value:f}"
        if len(row) == 4:
            rows.append((number, row))
    if errors:
        raise forms.ValidationError(errors)
    if not rows:
        raise forms.ValidationError("Give at least one bracket for the bracket model.")
    return rows


def _risk_limit_errors(form: RiskLimitRequestForm, exc: DomainError) -> None:
    """The action's refusals on the form: `symbol` is the instrument, `brackets[i].x` a line of the brackets."""
    lines = [number for number, _ in form.cleaned_data.get("bracket_rows", [])]
    placed = False
    for detail in exc.details:
        name, message = str(detail.get("field") or ""), detail.get("message") or str(exc)
        if name == "symbol":
            form.add_error("instrument", message)
        elif match := re.fullmatch(r"brackets\[(\d+)\]\.(\w+)", name):
            index, part = int(match[1]), match[2]
            where = f"Line {lines[index]}" if index < len(lines) else f"Bracket {index + 1}"
            form.add_error("brackets", f"{where}: {part} {message}.")
        elif name in form.fields and name != "instrument":
            form.add_error(name, message)
        else:
            continue
        placed = True
    if not placed:
        form.add_error(None, str(exc))


def _initial_from(table: RiskLimitTable | None, defaults, symbol: str) -> dict:
    """The request form pre-filled with the version in force (or the parameters' defaults)."""
    if table is None:
        return {
            "instrument": symbol,
            "model": RiskLimitTable.Model.STEP,
            "base_limit": defaults.base_limit,
            "step": defaults.step,
            "base_maintenance_rate": defaults.base_maintenance,
            "base_initial_rate": defaults.base_initial,
            "step_increment": defaults.increment,
        }
    initial = {
        "instrument": symbol,
        "model": table.model,
        "settlement": table.settlement,
        "contract_size": _plain(table.contract_size),
    }
    if table.model == RiskLimitTable.Model.STEP:
        return initial | {name: _plain(getattr(table, name)) for name in risk_limits.STEP_FIELDS}
    lines = [
        " ".join(_plain(v) for v in (b.floor, b.cap, b.maintenance_rate, b.initial_rate))
        for b in sorted(table.brackets.all(), key=lambda b: b.floor)
    ]
    return initial | {"brackets": "\n".join(lines)}


def _plain(value: Decimal | None) -> str:
    return "" if value is None else f"{value.normalize():f}"


def _current(symbol: str) -> dict | None:
    """What an instrument's risk limits are now, what is scheduled and what is waiting for approval."""
    instrument = Instrument.objects.exclude(kind=Instrument.Kind.SPOT).filter(symbol=symbol).first()
    if instrument is None:
        return None
    now = timezone.now()
    table = risk_limits.table_in_force(instrument.pk, at=now)
    return {
        "instrument": instrument,
        "table": table,
        "brackets": sorted(table.brackets.all(), key=lambda b: b.floor) if table else [],
        "defaults": None if table else risk_limits.default_limits(instrument.symbol, at=now),
        "scheduled": RiskLimitTable.objects.filter(instrument=instrument, effective_from__gt=now).order_by("version"),
        "pending": ChangeRequest.objects.filter(
            action=risk_limits.ACTION,
            status=ChangeRequest.Status.PENDING,
            expires_at__gt=now,
            payload__symbol=instrument.symbol,
        ).order_by("requested_at"),
    }


def _risk_limit_request_view(admin_obj, request):
    symbol = (request.POST.get("instrument") or request.GET.get("instrument") or "").strip()
    current = _current(symbol) if symbol else None
    if request.method == "POST":
        form = RiskLimitRequestForm(request.POST)
        if form.is_valid():
            try:
                change = approvals.request_change(
                    action=risk_limits.ACTION,
                    payload=form.payload(),
                    actor=actor_from_request(request),
                    reason=form.cleaned_data["reason"],
                    now=timezone.now(),
                )
            except DomainError as exc:
                _risk_limit_errors(form, exc)
            else:
                messages.success(
                    request, f"Change #{change.pk} requested; it takes effect when another risk officer approves it."
                )
                return redirect("admin:backoffice_changerequest_change", change.pk)
    else:
        initial = _initial_from(current["table"], current["defaults"], symbol) if current else {}
        form = RiskLimitRequestForm(initial=initial)
    return TemplateResponse(
        request,
        "admin/trading_risk/risklimittable_request.html",
        {
            **admin_obj.admin_site.each_context(request),
            "title": "Request a new risk-limit table",
            "form": form,
            "current": current,
            "instruments": RiskLimitRequestForm.base_fields["instrument"].queryset.all(),
            "opts": admin_obj.model._meta,
        },
    )


# The insurance fund, liquidations and ADL events are listed beside the margin dashboard they belong to.
from trading_risk import dashboard  # noqa: E402,F401
