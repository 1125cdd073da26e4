"""Admin for the operations log (read-only), risk parameters, change requests and API clients.

Nothing here writes a model directly: proposing, approving and revoking go through services with
request.user as the actor, and domain refusals are shown as messages.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from backoffice import api_clients, approvals
from backoffice.audit import actor_from_request
from backoffice.errors import DomainError
from backoffice.models import ApiClient, ChangeRequest, OperationsLogEntry, ParameterDefinition, ParameterValue

admin.site.site_header = "Exchange back office"
admin.site.site_title = "Back office"
admin.site.index_title = "Risk, compliance and operations"


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def pretty_json(value) -> str:
    return format_html("<pre style='margin:0'>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False))


@admin.register(OperationsLogEntry)
class OperationsLogAdmin(ReadOnlyAdmin):
    list_display = ("id", "at", "actor", "action", "target_type", "target_id", "ip", "short_reason")
    list_filter = ("actor_type", "action", "target_type", ("at", admin.DateFieldListFilter))
    search_fields = ("actor", "action", "target_type", "target_id", "reason")
    date_hierarchy = "at"
    show_full_result_count = False
    fields = (
        "at",
        "actor_type",
        "actor",
        "action",
        "target_type",
        "target_id",
        "before_pretty",
        "after_pretty",
        "reason",
        "ip",
        "prev_hash",
        "hash",
    )
    readonly_fields = fields

    @admin.display(description="reason")
    def short_reason(self, entry):
        return entry.reason[:80]

    @admin.display(description="before")
    def before_pretty(self, entry):
        return pretty_json(entry.before)

    @admin.display(description="after")
    def after_pretty(self, entry):
        return pretty_json(entry.after)


class ProposeChangeForm(forms.Form):
    scope = forms.CharField(required=False, max_length=40, help_text="symbol or asset; blank for everywhere")
    value = forms.CharField(max_length=100)
    effective_from = forms.DateTimeField(required=False, help_text="UTC, e.g. 2026-12-01 00:00; blank: on approval")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))


class ParameterValueInline(admin.TabularInline):
    model = ParameterValue
    fields = ("scope", "value", "effective_from", "change_request", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("scope", "-effective_from")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ParameterDefinition)
class ParameterDefinitionAdmin(ReadOnlyAdmin):
    list_display = ("key", "section", "current_value", "unit", "kind", "scoped", "propose_link")
    list_filter = ("section", "kind", "scoped")
    search_fields = ("key", "description")
    readonly_fields = ("key", "section", "description", "kind", "unit", "min_value", "max_value", "choices", "scoped")
    fields = readonly_fields
    inlines = [ParameterValueInline]

    def get_queryset(self, request):
        latest = (
            ParameterValue.objects.filter(definition=OuterRef("pk"), scope="", effective_from__lte=timezone.now())
            .order_by("-effective_from")
            .values("value")[:1]
        )
        return super().get_queryset(request).annotate(current=Subquery(latest))

    @admin.display(description="value now", ordering="current")
    def current_value(self, definition):
        return definition.current

    @admin.display(description="")
    def propose_link(self, definition):
        url = reverse("admin:backoffice_parameterdefinition_propose", args=[definition.pk])
        return format_html('<a href="{}">propose a change</a>', url)

    def get_urls(self):
        extra = [
            path(
                "<path:key>/propose/",
                self.admin_site.admin_view(self.propose_view),
                name="backoffice_parameterdefinition_propose",
            )
        ]
        return extra + super().get_urls()

    def propose_view(self, request, key):
        definition = get_object_or_404(ParameterDefinition, pk=key)
        form = ProposeChangeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                change = approvals.request_change(
                    action="risk_parameter.set",
                    payload={"key": key, **{k: form.cleaned_data[k] for k in ("scope", "value", "effective_from")}},
                    actor=actor_from_request(request),
                    reason=form.cleaned_data["reason"],
                    now=timezone.now(),
                )
            except DomainError as exc:
                form_errors(form, exc)
            else:
                messages.success(
                    request, f"Change #{change.pk} requested; it takes effect when another person approves it."
                )
                return redirect("admin:backoffice_changerequest_change", change.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Propose a change to {key}",
            "definition": definition,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/backoffice/propose_change.html", context)


def form_errors(form: forms.Form, exc: DomainError) -> None:
    fields = [d.get("field") for d in exc.details if d.get("field") in form.fields]
    if fields:
        for detail in exc.details:
            if detail.get("field") in form.fields:
                form.add_error(detail["field"], detail.get("message") or str(exc))
    else:
        form.add_error(None, str(exc))


class DecisionForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


@admin.register(ChangeRequest)
class ChangeRequestAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "summary",
        "status",
        "requested_by",
        "requested_at",
        "expires_at",
        "approvals_given",
        "required_approvals",
    )
    list_filter = ("status", "action")
    search_fields = ("summary", "reason", "requested_by__username")
    list_select_related = ("requested_by",)
    readonly_fields = (
        "action",
        "summary",
        "payload",
        "reason",
        "requested_by",
        "requested_at",
        "expires_at",
        "required_approvals",
        "status",
        "decided_at",
        "result",
        "decisions",
    )
    fields = readonly_fields
    change_form_template = "admin/backoffice/changerequest_change.html"

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("backoffice.view_changerequest")  # to reach the decision buttons

    @admin.display(description="approvals")
    def approvals_given(self, change):
        return change.approvals.filter(decision="APPROVE").count()

    @admin.display(description="decisions")
    def decisions(self, change):
        rows = [
            f"{a.decided_at:%Y-%m-%d %H:%M} {a.approver}: {a.get_decision_display()} — {a.reason}"
            for a in change.approvals.select_related("approver").order_by("decided_at")
        ]
        return format_html("<pre style='margin:0'>{}</pre>", "\n".join(rows) or "none yet")

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and object_id:
            return self._decide(request, object_id)
        extra_context = {**(extra_context or {}), "decision_form": DecisionForm()}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _decide(self, request, object_id):
        change = get_object_or_404(ChangeRequest, pk=object_id)
        form = DecisionForm(request.POST)
        form.is_valid()
        reason = form.cleaned_data.get("reason", "")
        service = {"approve": approvals.approve_change, "reject": approvals.reject_change}.get(
            request.POST.get("decision")
        )
        try:
            if request.POST.get("decision") == "cancel":
                approvals.cancel_change(change_request=change, actor=actor_from_request(request), now=timezone.now())
            elif service is None:
                raise DomainError("Choose approve, reject or cancel.")
            else:
                service(change_request=change, actor=actor_from_request(request), reason=reason, now=timezone.now())
        except DomainError as exc:
            messages.error(request, str(exc))
        else:
            change.refresh_from_db()
            messages.success(request, f"Change #{change.pk} is now {change.get_status_display().lower()}.")
        return redirect("admin:backoffice_changerequest_change", change.pk)


@admin.register(ApiClient)
class ApiClientAdmin(ReadOnlyAdmin):
    list_display = ("name", "token_prefix", "scopes", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "token_prefix")
    readonly_fields = ("name", "token_prefix", "scopes", "created_at", "last_used_at", "revoked_at")
    fields = readonly_fields
    actions = ["revoke"]

    @admin.action(description="Revoke the selected clients' tokens", permissions=["revoke"])
    def revoke(self, request, queryset):
        for client in queryset:
            api_clients.revoke_api_client(
                client=client, actor=actor_from_request(request), reason="revoked in the admin", now=timezone.now()
            )
        messages.success(request, f"Revoked {queryset.count()} client(s).")

    def has_revoke_permission(self, request):
        return request.user.has_perm("backoffice.change_apiclient")
