"""Admin: the withdrawal review queue with everything a reviewer needs on one page, withdrawal controls
through maker-checker, wallets with a balance dashboard, flow reviews to sign off and cold-wallet checks.

Nothing here writes a model directly: every change goes through a service with request.user as the actor,
and domain refusals are shown as messages.
"""

import json
from datetime import timedelta
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from backoffice import approvals
from backoffice.admin import ReadOnlyAdmin, pretty_json
from backoffice.audit import actor_from_request
from backoffice.errors import DomainError, InvalidInput
from withdrawals import controls, ivms101, selectors, services, wallets
from withdrawals.models import (
    AssetNetwork,
    ColdWalletCheck,
    FlowReview,
    ManualConfirmation,
    RegistrationAuthority,
    Wallet,
    WalletAlert,
    WalletFlow,
    Withdrawal,
)


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=True)


class IdentityForm(forms.Form):
    method = forms.ChoiceField(choices=[("PHONE", "Phone call"), ("FACE", "Face verification")])
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=True)


class TravelRuleForm(forms.Form):
    travel_rule = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "style": "width: 95%; font-family: monospace"}),
        help_text="IVMS101 identity payload (JSON): originator, beneficiary, VASPs, transferPath",
    )


class QueueFilter(admin.SimpleListFilter):
    """Reviewers land on their queue (held, pending review, frozen); "All" shows every withdrawal."""

    title = "queue"
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [("all", "All withdrawals")]

    def choices(self, changelist):
        yield {
            "selected": self.value() != "all",
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Needs a person",
        }
        yield {
            "selected": self.value() == "all",
            "query_string": changelist.get_query_string({self.parameter_name: "all"}),
            "display": "All withdrawals",
        }

    def queryset(self, request, queryset):
        return queryset if self.value() == "all" else queryset.filter(status__in=selectors.QUEUE)


@admin.register(Withdrawal)
class WithdrawalAdmin(ReadOnlyAdmin):
    list_display = (
        "request_id",
        "customer",
        "asset_network",
        "amount",
        "value_btc",
        "status",
        "reason_codes",
        "screening_result",
        "hold_until",
        "requested_at",
        "approvals_needed",
    )
    list_filter = (QueueFilter, "status", "asset_network")
    search_fields = ("request_id", "customer__external_id", "customer__name", "address")
    list_select_related = ("customer", "asset_network")
    date_hierarchy = "requested_at"
    show_full_result_count = False

    @admin.display(description="reasons")
    def reason_codes(self, w):
        return ", ".join(w.reasons) or "—"

    @admin.display(description="screening")
    def screening_result(self, w):
        return w.screening.get("result", "—")

    @admin.display(description="approvals")
    def approvals_needed(self, w):
        return w.required_approvals

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("withdrawals.view_withdrawal")  # to reach the review page

    def change_view(self, request, object_id, form_url="", extra_context=None):
        withdrawal = get_object_or_404(
            Withdrawal.objects.select_related("customer", "account", "asset_network"), pk=object_id
        )
        if request.method == "POST":
            return self._act(request, withdrawal)
        now = timezone.now()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Withdrawal {withdrawal}",
            "w": withdrawal,
            "risk": selectors.risk_picture(withdrawal, now=now),
            "history": selectors.previous_withdrawals(withdrawal),
            "approvals": withdrawal.approvals.select_related("approver").order_by("approved_at"),
            "travel_rule": pretty_json(withdrawal.travel_rule) if withdrawal.travel_rule else None,
            "travel_rule_summary": ivms101.summary(withdrawal.travel_rule) if withdrawal.travel_rule else None,
            "screening_result": withdrawal.screening.get("result", "not screened"),
            "screening": {k: v for k, v in withdrawal.screening.items() if k != "result"},
            "reason_form": ReasonForm(),
            "identity_form": IdentityForm(),
            "travel_rule_form": TravelRuleForm(
                initial={"travel_rule": json.dumps(withdrawal.travel_rule, indent=2) if withdrawal.travel_rule else ""}
            ),
            "open": withdrawal.status in selectors.QUEUE,
            "needs_identity": services.needs_identity_confirmation(withdrawal),
        }
        return TemplateResponse(request, "admin/withdrawals/withdrawal_review.html", context)

    def _act(self, request, withdrawal):
        actor, now, action = actor_from_request(request), timezone.now(), request.POST.get("action")
        try:
            if action == "confirm_identity":
                form = IdentityForm(request.POST)
                form.is_valid()
                services.record_identity_confirmation(
                    withdrawal=withdrawal,
                    method=form.cleaned_data.get("method", ""),
                    note=form.cleaned_data.get("note", ""),
                    actor=actor,
                    now=now,
                )
            elif action == "travel_rule":
                services.attach_travel_rule(
                    withdrawal=withdrawal, data=_json_object(request.POST.get("travel_rule", "")), actor=actor, now=now
                )
            elif action in ("approve", "reject"):
                reason = request.POST.get("reason", "")
                service = services.approve_withdrawal if action == "approve" else services.reject_withdrawal
                service(withdrawal=withdrawal, actor=actor, reason=reason, now=now)
            else:
                raise DomainError("Choose approve, reject, confirm identity or attach travel-rule data.")
        except DomainError as exc:
            problems = "; ".join(f"{d.get('field', '')}: {d.get('message', '')}" for d in exc.details)
            messages.error(request, f"{exc} {problems}".strip())
        else:
            withdrawal.refresh_from_db()
            messages.success(
                request, f"Withdrawal {withdrawal.request_id} is now {withdrawal.get_status_display().lower()}."
            )
        return redirect("admin:withdrawals_withdrawal_change", withdrawal.pk)


def _json_object(text: str) -> dict:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"Not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput("The travel-rule data is an IVMS101 identity payload, a JSON object.")
    return data


# ---- controls -------------------------------------------------------------------------------------------
class ControlForm(forms.Form):
    KINDS = [
        ("withdrawal.asset_suspension", "Suspend or resume an asset"),
        ("withdrawal.network_fee", "Change a network fee"),
        ("withdrawal.manual_confirmation", "Switch all withdrawals to manual confirmation (or back)"),
    ]
    action = forms.ChoiceField(choices=KINDS)
    asset_network = forms.ModelChoiceField(queryset=AssetNetwork.objects.order_by("asset", "network"), required=False)
    direction = forms.ChoiceField(choices=[(d, d.title()) for d in controls.DIRECTIONS], required=False)
    switch_on = forms.BooleanField(required=False, label="Suspend / switch to manual (unticked: resume / automatic)")
    fee = forms.DecimalField(required=False, min_value=Decimal(0), max_digits=38, decimal_places=18)
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="e.g. double spend, mainnet upgrade, settlement anomaly, incident",
    )

    def payload(self) -> dict:
        data, an = self.cleaned_data, self.cleaned_data.get("asset_network")
        asset = {"asset": an.asset, "network": an.network} if an else {}
        if data["action"] == "withdrawal.manual_confirmation":
            return {"on": data["switch_on"]}
        if data["action"] == "withdrawal.network_fee":
            return {**asset, "fee": str(data.get("fee"))}
        return {**asset, "direction": data.get("direction"), "suspend": data["switch_on"]}


@admin.register(AssetNetwork)
class AssetNetworkAdmin(ReadOnlyAdmin):
    list_display = (
        "asset",
        "network",
        "decimals",
        "withdrawals_suspended",
        "deposits_suspended",
        "network_fee",
        "suspension_reason",
    )
    list_filter = ("withdrawals_suspended", "deposits_suspended", "network")
    change_list_template = "admin/withdrawals/assetnetwork_change_list.html"

    def get_urls(self):
        return [
            path("controls/", self.admin_site.admin_view(self.controls_view), name="withdrawals_controls"),
            *super().get_urls(),
        ]

    def controls_view(self, request):
        form = ControlForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                change = approvals.request_change(
                    action=form.cleaned_data["action"],
                    payload=form.payload(),
                    actor=actor_from_request(request),
                    reason=form.cleaned_data["reason"],
                    now=timezone.now(),
                )
            except DomainError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request,
                    f"Requested: {change.summary}; it needs {change.required_approvals} approval(s) by someone else.",
                )
                return redirect("admin:backoffice_changerequest_change", change.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "title": "Request a withdrawal control",
            "manual": ManualConfirmation.objects.filter(ended_at__isnull=True).first(),
        }
        return TemplateResponse(request, "admin/withdrawals/form.html", context)


@admin.register(ManualConfirmation)
class ManualConfirmationAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "ended_at", "reason", "change_request")


# ---- wallets --------------------------------------------------------------------------------------------
class WalletForm(forms.ModelForm):
    class Meta:
        model = Wallet
        fields = ("name", "asset_network", "tier", "address", "target_balance", "max_balance")


class BandForm(forms.Form):
    target_balance = forms.DecimalField(max_digits=38, decimal_places=18, min_value=Decimal(0))
    max_balance = forms.DecimalField(max_digits=38, decimal_places=18, min_value=Decimal(0))
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text="recorded in the operations log")


class ActiveForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text="recorded in the operations log")


class ColdCheckForm(forms.Form):
    observed_balance = forms.DecimalField(max_digits=38, decimal_places=18)
    expected_balance = forms.DecimalField(max_digits=38, decimal_places=18)
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "tier",
        "asset_network",
        "target_balance",
        "max_balance",
        "active",
        "settings_link",
        "check_link",
    )
    list_filter = ("tier", "asset_network", "active")
    search_fields = ("name", "address")
    list_select_related = ("asset_network",)
    change_list_template = "admin/withdrawals/wallet_change_list.html"

    @admin.display(description="settings")
    def settings_link(self, wallet):
        return format_html(
            '<a href="{}">band, (de)activate</a>', reverse("admin:withdrawals_wallet_settings", args=[wallet.pk])
        )

    @admin.display(description="cold check")
    def check_link(self, wallet):
        if wallet.tier != Wallet.Tier.COLD:
            return "—"
        return format_html('<a href="{}">record a check</a>', reverse("admin:withdrawals_cold_check", args=[wallet.pk]))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("dashboard/", view(self.dashboard_view), name="withdrawals_wallet_dashboard"),
            path("register/", view(self.register_view), name="withdrawals_wallet_register"),
            path("<int:pk>/check/", view(self.check_view), name="withdrawals_cold_check"),
            path("<int:pk>/settings/", view(self.settings_view), name="withdrawals_wallet_settings"),
            *super().get_urls(),
        ]

    def _form_page(self, request, form, title):
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form, "title": title}
        return TemplateResponse(request, "admin/withdrawals/form.html", context)

    def register_view(self, request):
        form = WalletForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                wallets.register_wallet(**form.cleaned_data, actor=actor_from_request(request), now=timezone.now())
            except DomainError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, "Wallet registered.")
                return redirect("admin:withdrawals_wallet_changelist")
        return self._form_page(request, form, "Register a wallet")

    def settings_view(self, request, pk):
        """Change a wallet's target and maximum balance, or deactivate / reactivate it; both need a reason."""
        wallet = get_object_or_404(Wallet.objects.select_related("asset_network"), pk=pk)
        band_initial = {"target_balance": wallet.target_balance, "max_balance": wallet.max_balance}
        posted = request.POST if request.method == "POST" else None
        action = request.POST.get("action") if posted else None
        band_form = BandForm(posted if action == "band" else None, initial=band_initial, prefix="band")
        active_form = ActiveForm(posted if action == "active" else None, prefix="active")
        form = band_form if action == "band" else active_form if action == "active" else None
        if form is not None and form.is_valid():
            actor, now, data = actor_from_request(request), timezone.now(), form.cleaned_data
            try:
                if action == "band":
                    wallets.change_band(
                        wallet=wallet,
                        target_balance=data["target_balance"],
                        max_balance=data["max_balance"],
                        reason=data["reason"],
                        actor=actor,
                        now=now,
                    )
                else:
                    wallets.set_active(
                        wallet=wallet, active=not wallet.active, reason=data["reason"], actor=actor, now=now
                    )
            except DomainError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Wallet {wallet.name} changed.")
                return redirect("admin:withdrawals_wallet_settings", wallet.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Settings of {wallet}",
            "wallet": wallet,
            "band_form": band_form,
            "active_form": active_form,
            "history": selectors.wallet_changes(wallet),
        }
        return TemplateResponse(request, "admin/withdrawals/wallet_settings.html", context)

    def check_view(self, request, pk):
        wallet = get_object_or_404(Wallet, pk=pk)
        form = ColdCheckForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                wallets.record_cold_check(
                    wallet=wallet, **form.cleaned_data, actor=actor_from_request(request), now=timezone.now()
                )
            except DomainError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Check of {wallet.name} recorded.")
                return redirect("admin:withdrawals_wallet_changelist")
        return self._form_page(request, form, f"Record a check of {wallet}")

    def dashboard_view(self, request):
        now = timezone.now()
        days = int(request.GET["days"]) if request.GET.get("days") in {"7", "30", "90"} else 30
        rows = [
            {"wallet": w, "latest": b, "chart": balance_chart(w, since=now - timedelta(days=days), now=now)}
            for w, b in selectors.latest_balances()
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Wallet balances",
            "days": days,
            "periods": (7, 30, 90),
            "rows": rows,
            "alerts": WalletAlert.objects.filter(closed_at__isnull=True)
            .select_related("wallet")
            .order_by("-opened_at")[:20],
            "reviews": FlowReview.objects.order_by("-day")[:7],
        }
        return TemplateResponse(request, "admin/withdrawals/wallet_dashboard.html", context)


def balance_chart(wallet: Wallet, *, since, now, width: int = 360, height: int = 80) -> dict:
    """SVG polylines of the balance over time and of the target and maximum in force at each snapshot,
    with how many snapshots fell below target or above maximum."""
    points = selectors.balance_history(wallet, since=since)
    target, maximum = wallet.target_balance, wallet.max_balance
    bands = [(at, target if t is None else t, maximum if m is None else m) for at, _, t, m in points]
    bands = bands or [(since, target, maximum)]
    bands.append((now, wallet.target_balance, wallet.max_balance))  # the band in force now, to the right edge
    values = [b for _, b, _, _ in points] + [m for _, _, m in bands]
    top = max(values) or Decimal(1)
    start, span = since.timestamp(), max(now.timestamp() - since.timestamp(), 1)

    def x(at) -> float:
        return round(min(max((at.timestamp() - start) / span, 0), 1) * width, 1)

    def y(value) -> float:
        return round(height - float(value / top) * height, 1)

    def steps(index: int) -> str:
        # A step line: each band holds until the next one starts; it starts at the left edge.
        out, previous = [], None
        for at, *band in bands:
            if previous is not None:
                out.append(f"{x(at)},{y(previous)}")
            elif x(at) > 0:
                out.append(f"0,{y(band[index])}")
            out.append(f"{x(at)},{y(band[index])}")
            previous = band[index]
        return " ".join(out)

    return {
        "width": width,
        "height": height,
        "line": " ".join(f"{x(at)},{y(b)}" for at, b, _, _ in points),
        "target_line": steps(0),
        "max_line": steps(1),
        "points": len(points),
        "below_target": sum(1 for _, b, t, _ in points if b < (target if t is None else t)),
        "above_max": sum(1 for _, b, _, m in points if b > (maximum if m is None else m)),
        "band_changes": len({(t, m) for _, t, m in bands}) - 1,
    }


@admin.register(WalletAlert)
class WalletAlertAdmin(ReadOnlyAdmin):
    list_display = ("wallet", "kind", "balance", "opened_at", "closed_at")
    list_filter = ("kind", ("closed_at", admin.EmptyFieldListFilter))
    list_select_related = ("wallet",)


@admin.register(WalletFlow)
class WalletFlowAdmin(ReadOnlyAdmin):
    list_display = ("flow_id", "wallet", "direction", "amount", "request_id", "tx_hash", "at")
    list_filter = ("direction", "wallet")
    search_fields = ("flow_id", "request_id", "tx_hash")
    list_select_related = ("wallet",)
    date_hierarchy = "at"
    show_full_result_count = False


class SignOffForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, help_text="required when there are findings"
    )


@admin.register(FlowReview)
class FlowReviewAdmin(ReadOnlyAdmin):
    list_display = ("day", "withdrawals_paid", "flows_out", "clean", "signed_off_by", "signed_off_at")
    list_select_related = ("signed_off_by",)
    readonly_fields = (
        "day",
        "built_at",
        "withdrawals_paid",
        "flows_out",
        "findings_pretty",
        "signed_off_by",
        "signed_off_at",
        "note",
    )
    fields = readonly_fields
    change_form_template = "admin/withdrawals/flowreview_change.html"

    @admin.display(boolean=True)
    def clean(self, review):
        return review.is_clean

    @admin.display(description="findings")
    def findings_pretty(self, review):
        return pretty_json(review.findings)

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("withdrawals.view_flowreview")

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and object_id:
            review = get_object_or_404(FlowReview, pk=object_id)
            try:
                wallets.sign_off_flow_review(
                    review=review,
                    note=request.POST.get("note", ""),
                    actor=actor_from_request(request),
                    now=timezone.now(),
                )
            except DomainError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, f"Flow review of {review.day} signed off.")
            return redirect("admin:withdrawals_flowreview_change", object_id)
        extra_context = {**(extra_context or {}), "sign_off_form": SignOffForm()}
        return super().changeform_view(request, object_id, form_url, extra_context)


@admin.register(ColdWalletCheck)
class ColdWalletCheckAdmin(ReadOnlyAdmin):
    list_display = ("wallet", "checked_at", "checked_by", "observed_balance", "expected_balance", "matches")
    list_select_related = ("wallet", "checked_by")

    @admin.display(boolean=True)
    def matches(self, check):
        return check.matches


@admin.register(RegistrationAuthority)
class RegistrationAuthorityAdmin(ReadOnlyAdmin):
    """The GLEIF list as loaded by `manage.py load_gleif_registration_authorities`; read only."""

    list_display = ("code", "country_code", "jurisdiction", "register_name", "organisation", "end_date", "loaded_at")
    list_filter = ("country_code",)
    search_fields = ("code", "register_name", "organisation", "jurisdiction")
