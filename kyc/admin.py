"""Admin for KYC: the case queue and case page, the screening-hit queue, lists, addresses and the KYC constructor.

Case and hit pages put everything needed for a decision on one screen and decide in one click with a
required reason. Every change goes through a service with request.user as the actor; domain refusals
are shown as messages.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.db.models import CharField, DurationField, ExpressionWrapper, F, OuterRef, Subquery, Value
from django.db.models.functions import Cast
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from guardian.models import UserObjectPermission

from accounts.models import Customer, User
from backoffice.admin import ReadOnlyAdmin, form_errors
from backoffice.assignment import assigned_objects
from backoffice.audit import actor_from_request
from backoffice.errors import DomainError
from kyc import selectors, services
from kyc.models import (
    Decision,
    Document,
    KycCase,
    ListEntry,
    Requirement,
    SanctionedAddress,
    SanctionsList,
    ScreeningHit,
    Track,
)


class DecideForm(forms.Form):
    outcome = forms.ChoiceField(choices=Decision.Outcome.choices)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


class UploadForm(forms.Form):
    document_type = forms.ChoiceField()
    file = forms.FileField()
    named_person = forms.CharField(required=False, help_text="the person the document names (ID, resolution, POA)")

    def __init__(self, *args, case, **kwargs):
        super().__init__(*args, **kwargs)
        types = Requirement.objects.filter(track=case.track, kind=Requirement.Kind.DOCUMENT)
        self.fields["document_type"].choices = [(r.code, r.label) for r in types]


class DataForm(forms.Form):
    name = forms.CharField(help_text="dossier field, e.g. authorised_person, contact_details, registry_link")
    value = forms.CharField(required=False, help_text="blank removes the field")


class CheckForm(forms.Form):
    check = forms.ChoiceField()
    note = forms.CharField(required=False, help_text="how it was verified")

    def __init__(self, *args, case, **kwargs):
        super().__init__(*args, **kwargs)
        checks = Requirement.objects.filter(track=case.track, kind=Requirement.Kind.CHECK)
        self.fields["check"].choices = [(r.code, r.label) for r in checks]


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(queryset=User.objects.filter(is_active=True, is_staff=True).order_by("username"))


class OpenCaseForm(forms.Form):
    customer = forms.CharField(help_text="the exchange's customer id")
    requested_level = forms.TypedChoiceField(choices=[(1, "1"), (2, "2"), (3, "3")], coerce=int)


class HitDecisionForm(forms.Form):
    verdict = forms.ChoiceField(choices=[("false", "False match"), ("true", "True match")])
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


class AssignedToMe(admin.SimpleListFilter):
    title = "assignment"
    parameter_name = "mine"

    def lookups(self, request, model_admin):
        return [("1", "Assigned to me")]

    def queryset(self, request, queryset):
        if self.value() == "1":
            return assigned_objects(request.user, "kyc.work_case", queryset)
        return queryset


class OpenFilter(admin.SimpleListFilter):
    title = "queue"
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [("open", "Open cases"), ("closed", "Closed cases")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(closed_at__isnull=True)
        if self.value() == "closed":
            return queryset.filter(closed_at__isnull=False)
        return queryset


@admin.register(KycCase)
class KycCaseAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer", "track", "requested_level", "status", "assignee", "age", "due_at", "overdue")
    list_filter = (OpenFilter, AssignedToMe, "status", "track", "requested_level")
    search_fields = ("customer__external_id", "customer__name")
    list_select_related = ("customer",)
    ordering = ("due_at",)
    change_list_template = "admin/kyc/kyccase_change_list.html"
    change_form_template = "admin/kyc/kyccase_change.html"
    fields = (
        "customer",
        "track",
        "requested_level",
        "status",
        "opened_at",
        "due_at",
        "first_reviewer",
        "first_reviewed_at",
        "second_reviewer",
        "closed_at",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        assigned = UserObjectPermission.objects.filter(
            content_type=ContentType.objects.get_for_model(KycCase),
            permission__codename="work_case",
            object_pk=Cast(OuterRef("pk"), CharField()),
        ).values("user__username")[:1]
        return (
            super()
            .get_queryset(request)
            .annotate(
                waited=ExpressionWrapper(Value(timezone.now()) - F("opened_at"), output_field=DurationField()),
                assignee_name=Subquery(assigned),
            )
        )

    @admin.display(description="assigned to", ordering="assignee_name")
    def assignee(self, case):
        return case.assignee_name or "—"

    def has_add_permission(self, request):
        return request.user.has_perm("kyc.manage_dossier")

    @admin.display(description="age", ordering="opened_at")
    def age(self, case):
        hours = case.waited.total_seconds() / 3600
        return f"{hours / 24:.1f} d" if hours >= 48 else f"{hours:.0f} h"

    @admin.display(boolean=True, description="overdue")
    def overdue(self, case):
        return case.is_open and case.status != KycCase.Status.SENT_BACK and case.due_at < timezone.now()

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "summary": selectors.queue_summary(now=timezone.now())}
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        return [
            path("open/", self.admin_site.admin_view(self.open_view), name="kyc_kyccase_open"),
            path("document/<int:pk>/", self.admin_site.admin_view(self.document_view), name="kyc_document_file"),
        ] + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        return redirect("admin:kyc_kyccase_open")

    def open_view(self, request):
        form = OpenCaseForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                if not self.has_add_permission(request):
                    raise DomainError("You need the permission 'kyc.manage_dossier' for this.")
                customer = Customer.objects.filter(external_id=form.cleaned_data["customer"]).first()
                if customer is None:
                    raise DomainError("No customer has that id.")
                case = services.open_case(
                    customer=customer,
                    requested_level=form.cleaned_data["requested_level"],
                    actor=actor_from_request(request),
                    now=timezone.now(),
                )
            except DomainError as exc:
                form_errors(form, exc)
            else:
                messages.success(request, f"Case #{case.pk} opened.")
                return redirect("admin:kyc_kyccase_change", case.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "Open a KYC case",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/kyc/simple_form.html", context)

    def document_view(self, request, pk):
        if not request.user.has_perm("kyc.view_document"):
            raise Http404
        document = get_object_or_404(Document, pk=pk)
        response = FileResponse(document.file.open("rb"), content_type=document.content_type)
        response["Content-Disposition"] = "inline"
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "sandbox"
        return response

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if object_id and request.method == "POST" and "action" in request.POST:
            return self._act(request, get_object_or_404(KycCase, pk=object_id))
        if object_id:
            case = get_object_or_404(KycCase.objects.select_related("customer"), pk=object_id)
            extra_context = {**(extra_context or {}), **self._page(request, case)}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _page(self, request, case: KycCase) -> dict:
        found = selectors.case_checklist(case)
        stage = {KycCase.Status.OPEN: "first", KycCase.Status.SECOND_REVIEW: "second"}.get(case.status)
        return {
            "case": case,
            "documents": case.documents.select_related("uploaded_by").order_by("pk"),
            "fields": selectors.dossier_of(case).fields,
            "checklist": found,
            "hits": ScreeningHit.objects.filter(customer=case.customer).select_related("entry").order_by("-created_at"),
            "decisions": case.decisions.select_related("decided_by").order_by("pk"),
            "assignees": User.objects.filter(pk__in=selectors.case_assignees(case)),
            "stage": stage,
            "second_review": selectors.needs_second_review(case),
            "can_decide": stage and request.user.has_perm(f"kyc.{stage}_review"),
            "can_edit": request.user.has_perm("kyc.manage_dossier"),
            "decide_form": DecideForm(),
            "upload_form": UploadForm(case=case),
            "data_form": DataForm(),
            "check_form": CheckForm(case=case),
            "assign_form": AssignForm(),
        }

    def _act(self, request, case: KycCase):
        try:
            message = self._run(request.POST["action"], request, case)
        except DomainError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, message)
        return redirect("admin:kyc_kyccase_change", case.pk)

    def _run(self, action: str, request, case: KycCase) -> str:
        actor, now, data = actor_from_request(request), timezone.now(), request.POST
        if action == "decide":
            form = _valid(DecideForm(data))
            decision = services.decide_case(
                case=case, outcome=form["outcome"], reason=form["reason"], actor=actor, now=now
            )
            return f"{decision.get_stage_display()}: {decision.get_outcome_display().lower()}, signed."
        if action == "assign":
            _require(request, "kyc.manage_dossier")
            services.assign_case(case=case, assignee=_valid(AssignForm(data))["assignee"], actor=actor, now=now)
            return "Case assigned."
        _require(request, "kyc.manage_dossier")
        if action == "upload":
            form = _valid(UploadForm(data, request.FILES, case=case))
            services.add_document(
                case=case,
                document_type=form["document_type"],
                upload=form["file"],
                named_person=form["named_person"],
                actor=actor,
                now=now,
            )
            return "Document added."
        if action == "data":
            form = _valid(DataForm(data))
            services.update_dossier(case=case, data={form["name"].strip(): form["value"]}, actor=actor, now=now)
            return "Dossier updated."
        if action == "check":
            form = _valid(CheckForm(data, case=case))
            services.record_check(case=case, check=form["check"], note=form["note"], actor=actor, now=now)
            return "Check recorded."
        raise DomainError("Unknown action.")


def _require(request, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise DomainError(f"You need the permission {permission!r} for this.")


def _valid(form: forms.Form) -> dict:
    if not form.is_valid():
        problems = "; ".join(f"{field}: {' '.join(errs)}" for field, errs in form.errors.items())
        raise DomainError(f"Please correct: {problems}")
    return form.cleaned_data


@admin.register(ScreeningHit)
class ScreeningHitAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer", "screened_name", "matched_name", "score", "status", "created_at", "decided_by")
    list_filter = ("status", "entry__source")
    search_fields = ("customer__external_id", "customer__name", "matched_name", "entry__ent_num")
    list_select_related = ("customer", "entry")
    ordering = ("-score", "-created_at")
    change_form_template = "admin/kyc/screeninghit_change.html"
    fields = (
        "customer",
        "screened_name",
        "matched_name",
        "score",
        "name_score",
        "status",
        "created_at",
        "decided_at",
        "decided_by",
        "decision_reason",
    )
    readonly_fields = fields

    def changelist_view(self, request, extra_context=None):
        # The queue opens on what needs a decision; the filter shows the rest.
        if not request.GET:
            return redirect(reverse("admin:kyc_screeninghit_changelist") + "?status__exact=OPEN")
        return super().changelist_view(request, extra_context)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        hit = get_object_or_404(ScreeningHit.objects.select_related("customer", "entry"), pk=object_id)
        if request.method == "POST":
            return self._decide(request, hit)
        extra_context = {
            **(extra_context or {}),
            "hit": hit,
            "entry": hit.entry,
            "form": HitDecisionForm(),
            "entry_addresses": hit.entry.addresses.filter(removed_at__isnull=True),
            "can_decide": hit.status == ScreeningHit.Status.OPEN and request.user.has_perm("kyc.decide_screening_hit"),
        }
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _decide(self, request, hit: ScreeningHit):
        try:
            form = _valid(HitDecisionForm(request.POST))
            services.decide_hit(
                hit=hit,
                true_match=form["verdict"] == "true",
                reason=form["reason"],
                actor=actor_from_request(request),
                now=timezone.now(),
            )
        except DomainError as exc:
            messages.error(request, str(exc))
            return redirect("admin:kyc_screeninghit_change", hit.pk)
        messages.success(request, "Decision recorded.")
        return redirect(reverse("admin:kyc_screeninghit_changelist") + "?status__exact=OPEN")


@admin.register(ListEntry)
class ListEntryAdmin(ReadOnlyAdmin):
    list_display = ("ent_num", "source", "name", "kind", "birth_dates", "countries", "removed_at")
    list_filter = ("source", "kind", ("removed_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "ent_num")
    show_full_result_count = False


@admin.register(SanctionsList)
class SanctionsListAdmin(ReadOnlyAdmin):
    list_display = ("source", "version", "files", "loaded_at", "loaded_by", "entries", "added", "changed", "removed")
    list_filter = ("source",)
    ordering = ("-loaded_at",)


class HighRiskAddressForm(forms.Form):
    network = forms.CharField(help_text="e.g. ETH, BSC, TRX, BTC, LTC")
    address = forms.CharField(max_length=128)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text="e.g. reported scam wallet")


@admin.register(SanctionedAddress)
class SanctionedAddressAdmin(ReadOnlyAdmin):
    list_display = ("chain", "address", "network", "origin", "source", "entry", "added_by", "added_at", "removed_at")
    list_filter = ("origin", "chain", "source", ("removed_at", admin.EmptyFieldListFilter))
    search_fields = ("address", "reason", "entry__name")
    list_select_related = ("entry",)
    actions = ["remove"]

    def has_add_permission(self, request):
        return request.user.has_perm("kyc.manage_high_risk_address")

    def has_manage_permission(self, request):
        return self.has_add_permission(request)

    def add_view(self, request, form_url="", extra_context=None):
        form = HighRiskAddressForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                if not self.has_add_permission(request):
                    raise DomainError("You need the permission 'kyc.manage_high_risk_address' for this.")
                services.add_high_risk_address(
                    actor=actor_from_request(request), now=timezone.now(), **form.cleaned_data
                )
            except DomainError as exc:
                form_errors(form, exc)
            else:
                messages.success(request, "Address added to the high-risk list.")
                return redirect("admin:kyc_sanctionedaddress_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "Add a high-risk address",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/kyc/simple_form.html", context)

    @admin.action(description="Remove the selected staff-added addresses", permissions=["manage"])
    def remove(self, request, queryset):
        try:
            for row in queryset:
                services.remove_high_risk_address(
                    row=row, reason="removed in the admin", actor=actor_from_request(request), now=timezone.now()
                )
        except DomainError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Removed.")


class RequirementForm(forms.Form):
    track = forms.ChoiceField(choices=Track.choices)
    level = forms.TypedChoiceField(choices=[(1, "1"), (2, "2"), (3, "3")], coerce=int)
    kind = forms.ChoiceField(choices=Requirement.Kind.choices)
    code = forms.CharField(max_length=60, help_text="document type (e.g. PROOF_OF_ADDRESS), field name or check name")
    label = forms.CharField(max_length=200)
    active = forms.BooleanField(required=False, initial=True)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


@admin.register(Requirement)
class RequirementAdmin(ReadOnlyAdmin):
    """The KYC constructor: what each level of each track requires. Changes go through maker-checker."""

    list_display = ("track", "level", "kind", "code", "label", "active", "updated_at", "propose_link")
    list_filter = ("track", "level", "kind", "active")

    def has_add_permission(self, request):
        return request.user.has_perm("kyc.change_requirement")

    @admin.display(description="")
    def propose_link(self, requirement):
        url = reverse("admin:kyc_requirement_propose", args=[requirement.pk])
        return format_html('<a href="{}">propose a change</a>', url)

    def get_urls(self):
        return [
            path("<int:pk>/propose/", self.admin_site.admin_view(self.propose_view), name="kyc_requirement_propose")
        ] + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        return self.propose_view(request, None)

    def propose_view(self, request, pk):
        requirement = get_object_or_404(Requirement, pk=pk) if pk else None
        initial = (
            {f: getattr(requirement, f) for f in ("track", "level", "kind", "code", "label", "active")}
            if requirement
            else {"active": True}
        )
        form = RequirementForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            data = dict(form.cleaned_data)
            reason = data.pop("reason")
            try:
                change = services.propose_requirement(
                    payload={"requirement_id": pk, **data},
                    reason=reason,
                    actor=actor_from_request(request),
                    now=timezone.now(),
                )
            except DomainError as exc:
                form_errors(form, exc)
            else:
                messages.success(
                    request, f"Change #{change.pk} requested; it applies when another officer approves it."
                )
                return redirect("admin:backoffice_changerequest_change", change.pk)
        title = f"Propose a change to {requirement}" if requirement else "Propose a new KYC requirement"
        context = {**self.admin_site.each_context(request), "title": title, "form": form, "opts": self.model._meta}
        return TemplateResponse(request, "admin/kyc/simple_form.html", context)


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ("id", "case", "stage", "outcome", "decided_by", "decided_at", "dossier_hash", "signature_ok")
    list_filter = ("stage", "outcome")
    search_fields = ("case__customer__external_id", "dossier_hash")
    list_select_related = ("case", "decided_by")

    @admin.display(boolean=True, description="signature holds")
    def signature_ok(self, decision):
        return services.signature_holds(decision)
