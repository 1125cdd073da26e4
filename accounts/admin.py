"""Admin for staff, customers and account security.

The customer page shows a customer at a glance — KYC level, what each account may do and why, recent
security events, devices and IPs, notifications, alerts and the operations log — and is where staff
lock, restrict, lift and unlock. Every change goes through a service with request.user as the actor.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from accounts import locks, notifications, restrictions, rules, staff_auth, suspicious
from accounts.models import (
    Account,
    Customer,
    CustomerLock,
    KnownDevice,
    KnownIp,
    Notification,
    NotificationTemplate,
    Restriction,
    SecurityEvent,
    SuspiciousEntry,
    User,
)
from backoffice import audit
from backoffice.admin import ReadOnlyAdmin, form_errors
from backoffice.audit import actor_from_request
from backoffice.errors import DomainError
from backoffice.models import OperationsLogEntry


@admin.register(User)
class StaffAdmin(UserAdmin):
    list_display = ("username", "email", "is_staff", "is_active", "second_factor", "login_locked_until", "last_login")
    list_filter = ("is_staff", "is_active", "groups")
    readonly_fields = ("totp_confirmed_at", "failed_login_count", "login_locked_until", "last_login", "date_joined")
    fieldsets = (
        *UserAdmin.fieldsets,
        ("Second factor", {"fields": ("totp_confirmed_at", "failed_login_count", "login_locked_until")}),
    )
    actions = ["unlock_login", "reset_second_factor"]
    AUDITED = ("username", "email", "is_active", "is_staff", "is_superuser")

    @admin.display(boolean=True, description="TOTP")
    def second_factor(self, user):
        return user.has_second_factor

    def save_model(self, request, obj, form, change):
        before = audit.snapshot(User.objects.get(pk=obj.pk), self.AUDITED) if change else None
        super().save_model(request, obj, form, change)
        audit.record(
            actor=actor_from_request(request),
            action="staff.update" if change else "staff.create",
            target=obj,
            now=timezone.now(),
            before=before,
            after=audit.snapshot(obj, self.AUDITED),
        )

    def save_related(self, request, form, formsets, change):
        before = sorted(form.instance.groups.values_list("name", flat=True)) if change else []
        super().save_related(request, form, formsets, change)
        after = sorted(form.instance.groups.values_list("name", flat=True))
        if before != after:
            audit.record(
                actor=actor_from_request(request),
                action="staff.roles",
                target=form.instance,
                now=timezone.now(),
                before={"roles": before},
                after={"roles": after},
            )

    @admin.action(description="Lift the login lockout of the selected staff", permissions=["change"])
    def unlock_login(self, request, queryset):
        for user in queryset:
            staff_auth.unlock_staff_login(user=user, actor=actor_from_request(request), now=timezone.now())
        messages.success(request, f"Lifted the lockout of {queryset.count()} staff member(s).")

    @admin.action(
        description="Reset the authenticator of the selected staff (they enrol again)", permissions=["change"]
    )
    def reset_second_factor(self, request, queryset):
        for user in queryset:
            staff_auth.reset_second_factor(
                user=user, actor=actor_from_request(request), now=timezone.now(), reason="reset in the admin"
            )
        messages.success(request, f"Reset the authenticator of {queryset.count()} staff member(s).")


class AccountInline(admin.TabularInline):
    model = Account
    fields = ("external_id", "kind", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class LockForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


class RestrictForm(forms.Form):
    code = forms.ChoiceField(choices=[(c, c) for c in rules.STAFF_CODES])
    account = forms.ChoiceField(required=False, help_text="blank: every account of the customer")
    until = forms.DateTimeField(required=False, help_text="UTC, e.g. 2026-12-01 18:00; blank: until lifted")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].choices = [("", "all accounts")] + [
            (a.pk, str(a.external_id)) for a in customer.accounts.all()
        ]


class LiftForm(forms.Form):
    restriction = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField()


class VerificationForm(forms.Form):
    kind = forms.ChoiceField(choices=[(k, k) for k in locks.VERIFICATIONS])
    note = forms.CharField(required=False, help_text="how it was verified, e.g. SMS code confirmed by phone")


class RequestUnlockForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdmin):
    list_display = ("external_id", "name", "type", "country", "kyc_level", "kyc_level_source", "created_at")
    list_filter = ("type", "kyc_level", "kyc_level_source", "country")
    search_fields = ("external_id", "name", "email", "phone")
    readonly_fields = (
        "external_id",
        "type",
        "name",
        "country",
        "email",
        "phone",
        "date_of_birth",
        "kyc_level",
        "kyc_level_source",
        "password_changed_at",
        "must_change_password",
        "created_at",
        "updated_at",
    )
    fields = readonly_fields
    inlines = [AccountInline]
    show_full_result_count = False
    change_form_template = "admin/accounts/customer_change.html"

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if object_id and request.method == "POST" and "action" in request.POST:
            return self._act(request, get_object_or_404(Customer, pk=object_id))
        if object_id:
            extra_context = {
                **(extra_context or {}),
                **self._glance(request, get_object_or_404(Customer, pk=object_id)),
            }
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _glance(self, request, customer: Customer) -> dict:
        now = timezone.now()
        open_lock = CustomerLock.objects.filter(customer=customer, unlocked_at__isnull=True).first()
        return {
            "now": now,
            "account_states": [(a, restrictions.account_state(a, now=now)) for a in customer.accounts.all()],
            "standing": Restriction.objects.filter(restrictions.in_force(now), customer=customer)
            .select_related("account")
            .order_by("-starts_at"),
            "open_lock": open_lock,
            "required_verifications": locks.required_verifications(customer, now=now) if open_lock else (),
            "events": SecurityEvent.objects.filter(customer=customer).order_by("-at")[:30],
            "known_ips": KnownIp.objects.filter(customer=customer).order_by("-last_seen_at")[:20],
            "known_devices": KnownDevice.objects.filter(customer=customer).order_by("-last_seen_at")[:20],
            "customer_notifications": Notification.objects.filter(customer=customer).order_by("-created_at")[:20],
            "alerts": customer.alerts.order_by("-opened_at")[:20],
            "log": _customer_log(customer)[:30],
            "lock_form": LockForm(),
            "restrict_form": RestrictForm(customer=customer),
            "verification_form": VerificationForm(),
            "unlock_form": RequestUnlockForm(),
            "can_restrict": request.user.has_perm("accounts.manage_restriction"),
            "can_unlock": request.user.has_perm("accounts.unlock_customer"),
        }

    def _act(self, request, customer: Customer):
        action = request.POST["action"]
        permission = (
            "accounts.unlock_customer" if action in ("verify", "request_unlock") else "accounts.manage_restriction"
        )
        try:
            if not request.user.has_perm(permission):
                raise DomainError(f"You need the permission {permission!r} for this.")
            message = self._run(action, request, customer)
        except DomainError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, message)
        return redirect("admin:accounts_customer_change", customer.pk)

    def _run(self, action: str, request, customer: Customer) -> str:
        actor, now, data = actor_from_request(request), timezone.now(), request.POST
        if action == "lock":
            form = _valid(LockForm(data))
            locks.lock_customer(customer=customer, rule="staff", reason=form["reason"], actor=actor, now=now)
            return "Customer locked."
        if action == "restrict":
            form = _valid(RestrictForm(data, customer=customer))
            account = customer.accounts.get(pk=form["account"]) if form["account"] else None
            restrictions.add_restriction(
                customer=customer,
                account=account,
                code=form["code"],
                rule="staff",
                reason=form["reason"],
                until=form["until"],
                actor=actor,
                now=now,
            )
            return "Restriction added."
        if action == "lift":
            form = _valid(LiftForm(data))
            restriction = get_object_or_404(Restriction, pk=form["restriction"], customer=customer)
            restrictions.lift_restriction(restriction=restriction, actor=actor, reason=form["reason"], now=now)
            return "Restriction lifted."
        open_lock = CustomerLock.objects.filter(customer=customer, unlocked_at__isnull=True).first()
        if open_lock is None:
            raise locks.NotLocked()
        if action == "verify":
            form = _valid(VerificationForm(data))
            locks.record_unlock_verification(lock=open_lock, kind=form["kind"], note=form["note"], actor=actor, now=now)
            return f"{form['kind']} verification recorded."
        if action == "request_unlock":
            change = locks.request_unlock(
                lock=open_lock, actor=actor, reason=_valid(RequestUnlockForm(data))["reason"], now=now
            )
            return f"Unlock requested as change #{change.pk}; another officer must approve it."
        raise DomainError("Unknown action.")


def _customer_log(customer: Customer):
    restriction_ids = [str(pk) for pk in customer.restrictions.values_list("pk", flat=True)]
    return OperationsLogEntry.objects.filter(
        Q(target_type="accounts.customer", target_id=str(customer.pk))
        | Q(target_type="accounts.restriction", target_id__in=restriction_ids)
    ).order_by("-id")


def _valid(form: forms.Form) -> dict:
    if not form.is_valid():
        problems = "; ".join(f"{field}: {' '.join(errs)}" for field, errs in form.errors.items())
        raise DomainError(f"Please correct: {problems}")
    return form.cleaned_data


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("external_id", "customer", "kind", "created_at")
    list_filter = ("kind",)
    search_fields = ("external_id", "customer__external_id", "customer__name")
    list_select_related = ("customer",)
    readonly_fields = ("external_id", "customer", "kind", "created_at", "updated_at")
    fields = readonly_fields
    show_full_result_count = False


@admin.register(Restriction)
class RestrictionAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer", "account", "symbol", "code", "rule", "starts_at", "until", "lifted_at")
    list_filter = ("code", "rule", ("lifted_at", admin.EmptyFieldListFilter))
    search_fields = ("customer__external_id", "customer__name", "account__external_id", "symbol", "reason")
    list_select_related = ("customer", "account")
    show_full_result_count = False


@admin.register(CustomerLock)
class CustomerLockAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer", "rule", "locked_at", "locked_by", "unlocked_at")
    list_filter = ("rule", ("unlocked_at", admin.EmptyFieldListFilter))
    search_fields = ("customer__external_id", "customer__name", "reason")
    list_select_related = ("customer",)


@admin.register(SecurityEvent)
class SecurityEventAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "type", "customer", "ip", "device_id", "at", "actions", "retry_after")
    list_filter = ("type",)
    search_fields = ("event_id", "customer__external_id", "ip", "device_id", "cookie_id")
    list_select_related = ("customer",)
    date_hierarchy = "at"
    show_full_result_count = False


class SuspiciousForm(forms.Form):
    kind = forms.ChoiceField(choices=SuspiciousEntry.Kind.choices)
    value = forms.CharField(max_length=128)
    status = forms.ChoiceField(choices=SuspiciousEntry.Status.choices)
    expires_at = forms.DateTimeField(required=False, help_text="UTC; blank: until removed")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


@admin.register(SuspiciousEntry)
class SuspiciousEntryAdmin(ReadOnlyAdmin):
    list_display = ("kind", "value", "status", "reason", "created_by", "created_at", "expires_at", "removed_at")
    list_filter = ("kind", "status", ("removed_at", admin.EmptyFieldListFilter))
    search_fields = ("value", "reason")
    actions = ["remove"]
    change_list_template = "admin/accounts/suspiciousentry_change_list.html"

    def has_add_permission(self, request):
        return request.user.has_perm("accounts.manage_suspicious")

    def get_urls(self):
        return [
            path("mark/", self.admin_site.admin_view(self.mark_view), name="accounts_suspiciousentry_mark"),
            path("export.csv", self.admin_site.admin_view(self.export_view), name="accounts_suspiciousentry_export"),
        ] + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        return redirect("admin:accounts_suspiciousentry_mark")

    def mark_view(self, request):
        form = SuspiciousForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                if not self.has_add_permission(request):
                    raise DomainError("You need the permission 'accounts.manage_suspicious' for this.")
                suspicious.mark_suspicious(actor=actor_from_request(request), now=timezone.now(), **form.cleaned_data)
            except DomainError as exc:
                form_errors(form, exc)
            else:
                messages.success(request, "Entry saved.")
                return redirect("admin:accounts_suspiciousentry_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "Flag, limit or ban an IP or device",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/accounts/simple_form.html", context)

    def export_view(self, request):
        response = HttpResponse(suspicious.export_csv(now=timezone.now()), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="suspicious-{timezone.now():%Y-%m-%d}.csv"'
        return response

    @admin.action(description="Remove the selected entries from the list", permissions=["manage"])
    def remove(self, request, queryset):
        for entry in queryset:
            suspicious.remove_suspicious(
                entry=entry, actor=actor_from_request(request), reason="removed in the admin", now=timezone.now()
            )
        messages.success(request, f"Removed {queryset.count()} entr(ies).")

    def has_manage_permission(self, request):
        return request.user.has_perm("accounts.manage_suspicious")


class TemplateForm(forms.ModelForm):
    class Meta:
        model = NotificationTemplate
        fields = ("subject", "body")


@admin.register(NotificationTemplate)
class NotificationTemplateAdmin(admin.ModelAdmin):
    list_display = ("code", "channel", "subject", "updated_at")
    list_filter = ("channel",)
    search_fields = ("code", "subject", "body")
    form = TemplateForm

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        notifications.update_template(
            template=obj,
            subject=form.cleaned_data["subject"],
            body=form.cleaned_data["body"],
            actor=actor_from_request(request),
            now=timezone.now(),
        )


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "customer", "channel", "template_code", "recipient", "status", "sent_at", "related")
    list_filter = ("channel", "status", "template_code")
    search_fields = ("customer__external_id", "recipient", "body", "related")
    list_select_related = ("customer",)
    date_hierarchy = "created_at"
    show_full_result_count = False
