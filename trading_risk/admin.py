from django.contrib import admin

from backoffice.admin import ReadOnlyAdmin
from trading_risk.models import Alert, AssetPrice, Instrument, InstrumentPrice


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


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("id", "opened_at", "rule", "severity", "status", "customer", "account", "symbol", "summary")
    list_filter = ("status", "rule", "severity")
    search_fields = ("customer__external_id", "customer__name", "summary", "symbol")
    list_select_related = ("customer", "account")
    date_hierarchy = "opened_at"
    show_full_result_count = False
