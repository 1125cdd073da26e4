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
    """Versions of each instrument's risk limits; a new one is requested as change 'risk_limit.set'."""

    list_display = ("instrument", "version", "model", "settlement", "effective_from", "change_request")
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


# ---- position limits, hedging exemptions, broker members ------------------------------------------------
from accounts.models import Customer  # noqa: E402
from trading_risk import position_limits  # noqa: E402
from trading_risk.models import BrokerLimitReview, BrokerMember, HedgingExemption, PositionLimit  # noqa: E402


class PositionLimitForm(forms.Form):
    product = forms.CharField(help_text="base asset of the contracts, e.g. BTC")
    contract_month = forms.CharField(required=False, help_text="YYYY-MM: one month of dated futures; blank: all")
    customer_type = forms.ChoiceField(required=False, choices=[("", "every type"), *Customer.Type.choices])
    limit_btc = forms.DecimalField(required=False, help_text="blank: remove the specific limit")
    delivery_month_limit_btc = forms.DecimalField(required=False, help_text="blank: the limit × the factor")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))


class ExemptionForm(forms.Form):
    account_id = forms.CharField(help_text="the exchange's account ID")
    product = forms.CharField(required=False, help_text="blank: every product")
    expires_at = forms.DateTimeField(help_text="YYYY-MM-DD HH:MM (UTC)")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="the hedged exposure")


class BrokerMemberForm(forms.Form):
    customer_id = forms.CharField(help_text="the exchange's customer ID of a corporate customer")
    member_number = forms.CharField()
    net_capital_btc = forms.DecimalField()
    limit_btc = forms.DecimalField()
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))


class BrokerReviewForm(forms.Form):
    net_capital_btc = forms.DecimalField(help_text="net capital at this review, in BTC")
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))


def _request_change(request, action: str, payload: dict, reason: str):
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


def _request_view(admin_obj, request, form_class, action: str, title: str):
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = {k: "" if v is None else str(v) for k, v in form.cleaned_data.items()}
        if "expires_at" in data:
            data["expires_at"] = form.cleaned_data["expires_at"].isoformat()
        reason = data.pop("reason")
        if response := _request_change(request, action, data, reason):
            return response
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

    def get_urls(self):
        view = self.admin_site.admin_view(self.request_view)
        return [path("request/", view, name="trading_risk_request_position_limit"), *super().get_urls()]

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

    def get_urls(self):
        view = self.admin_site.admin_view(self.request_view)
        return [path("request/", view, name="trading_risk_request_hedging_exemption"), *super().get_urls()]

    def request_view(self, request):
        return _request_view(self, request, ExemptionForm, "hedging_exemption.grant", "Request a hedging exemption")

    def has_revoke_permission(self, request):
        return request.user.has_perm("trading_risk.approve_position_limit")

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

    def get_urls(self):
        return [
            path("request/", self.admin_site.admin_view(self.request_view), name="trading_risk_request_broker_member"),
            path("<int:pk>/review/", self.admin_site.admin_view(self.review_view), name="trading_risk_broker_review"),
            *super().get_urls(),
        ]

    @admin.display(description="Review")
    def review_link(self, member):
        return format_html(
            '<a href="{}">record a review</a>', reverse("admin:trading_risk_broker_review", args=[member.pk])
        )

    def request_view(self, request):
        return _request_view(self, request, BrokerMemberForm, "broker_member.set", "Request a broker-member limit")

    def review_view(self, request, pk):
        member = get_object_or_404(BrokerMember, pk=pk)
        form = BrokerReviewForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            done = _run(
                request,
                lambda: position_limits.record_broker_review(
                    member=member,
                    net_capital_btc=form.cleaned_data["net_capital_btc"],
                    notes=form.cleaned_data["notes"],
                    actor=actor_from_request(request),
                    now=timezone.now(),
                ),
                "Review recorded; the next one is due in 14 days.",
            )
            if done:
                return redirect("admin:trading_risk_brokermember_changelist")
        return _form_page(self, request, form, f"Review of member {member.member_number}")


# The insurance fund, liquidations and ADL events are listed beside the margin dashboard they belong to.
from trading_risk import dashboard  # noqa: E402,F401
