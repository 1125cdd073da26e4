from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import Account, Customer, User
from backoffice.admin import ReadOnlyAdmin


@admin.register(User)
class StaffAdmin(UserAdmin):
    list_display = ("username", "email", "is_staff", "is_active", "second_factor", "login_locked_until", "last_login")
    list_filter = ("is_staff", "is_active", "groups")
    readonly_fields = ("totp_confirmed_at", "failed_login_count", "login_locked_until", "last_login", "date_joined")
    fieldsets = (
        *UserAdmin.fieldsets,
        ("Second factor", {"fields": ("totp_confirmed_at", "failed_login_count", "login_locked_until")}),
    )

    @admin.display(boolean=True, description="TOTP")
    def second_factor(self, user):
        return user.has_second_factor


class AccountInline(admin.TabularInline):
    model = Account
    fields = ("external_id", "kind", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


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
        "created_at",
        "updated_at",
    )
    fields = readonly_fields
    inlines = [AccountInline]
    show_full_result_count = False


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("external_id", "customer", "kind", "created_at")
    list_filter = ("kind",)
    search_fields = ("external_id", "customer__external_id", "customer__name")
    list_select_related = ("customer",)
    readonly_fields = ("external_id", "customer", "kind", "created_at", "updated_at")
    fields = readonly_fields
    show_full_result_count = False
